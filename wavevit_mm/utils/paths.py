"""Where the project's configs, tools and model index are: a checkout (``pip install -e .``) or ``.mim``.

A checkout keeps them beside the package (``<root>/configs``, ``<root>/tools``); a wheel install copies them
into ``wavevit_mm/.mim``, as the OpenMMLab libraries do. Tools, tests and the model hub find them here.
"""
import importlib.util
import os.path as osp
from types import ModuleType
from typing import List

_PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _project_root() -> str:
    checkout = osp.dirname(_PACKAGE_DIR)
    if osp.isdir(osp.join(checkout, 'configs')) and osp.isfile(osp.join(checkout, 'setup.py')):
        return checkout
    return osp.join(_PACKAGE_DIR, '.mim')


#: the directory holding ``configs/``, ``tools/`` and ``model-index.yml``
PROJECT_ROOT = _project_root()
CONFIG_DIR = osp.join(PROJECT_ROOT, 'configs')
TOOLS_DIR = osp.join(PROJECT_ROOT, 'tools')


def config_path(relative: str) -> str:
    """The absolute path of a shipped config, e.g. ``config_path('detection/mask-rcnn_wavevit-s_fpn_1x_coco.py')``.

    Raises:
        FileNotFoundError: no such config (the message names the config directory).
    """
    path = osp.join(CONFIG_DIR, relative)
    if not osp.isfile(path):
        raise FileNotFoundError(f'no config {relative!r} under {CONFIG_DIR}')
    return path


def metafile_paths(root: str = PROJECT_ROOT) -> List[str]:
    """The metafiles ``root/model-index.yml`` imports (one per task folder), as absolute paths."""
    import yaml
    with open(osp.join(root, 'model-index.yml')) as f:
        return [osp.join(root, path) for path in yaml.safe_load(f)['Import']]


def load_script(relative: str) -> ModuleType:
    """Import a script of the project (``'tools/analysis_tools/get_flops.py'``, ``'demo/image_demo.py'``: scripts,
    not a package) as a module, to call its functions in-process."""
    path = osp.join(PROJECT_ROOT, relative)
    spec = importlib.util.spec_from_file_location(f'_wavevit_script_{osp.splitext(osp.basename(path))[0]}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
