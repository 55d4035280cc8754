"""The project's model index: names for mmpretrain's model hub, ``wavevit-mm://`` addresses for the weights.

Every model of ``model-index.yml`` (the metafiles under ``configs/``) has a name, a config and a ``Weights``
address ``wavevit-mm://FILE``: the file ``FILE`` in the local checkpoint folder, ``$WAVEVIT_MM_CHECKPOINTS``
(default ``<project>/checkpoints``, where the configs and the docs put converted weights). No weights are
hosted: the official ImageNet-1k checkpoints are downloaded by hand and converted into that folder
(``tools/model_converters/wavevit2mm.py``); detection / segmentation weights are the ones you train.

:func:`register_all` (run by ``import wavevit_mm``):

- registers the ``wavevit-mm://`` scheme with mmengine's ``CheckpointLoader``, so ``load_checkpoint``, a
  config's ``load_from``, an ``init_cfg`` checkpoint and the libraries' Inferencers read such addresses
  (weights-only); a missing file is a ``FileNotFoundError`` that names the official download location and the
  converter command (or, for a model without published weights, how to make them);
- adds the classification models to mmpretrain's ``ModelHub``, so ``mmpretrain.get_model(name)``,
  ``mmpretrain.list_models('*wave*')`` and ``ImageClassificationInferencer(name)`` resolve ``wavevit-*`` names,
  with weights when ``pretrained=True`` (the Inferencers' default).

mmdet's ``DetInferencer`` and mmseg's ``MMSegInferencer`` look names up only in their own package's model index;
:func:`get_model_info` gives them the config and weights of a name of ours::

    info = get_model_info('mask-rcnn_wavevit-s_fpn_1x_coco')
    DetInferencer(model=info.config, weights='work_dirs/.../epoch_12.pth')
"""
import difflib
import fnmatch
import os
import os.path as osp
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, List, Optional

import yaml

from ..utils.paths import CONFIG_DIR, PROJECT_ROOT, TOOLS_DIR, metafile_paths

#: the address scheme of the metafiles' ``Weights``
WEIGHTS_SCHEME = 'wavevit-mm://'
#: environment variable naming the local checkpoint folder
CHECKPOINTS_ENV = 'WAVEVIT_MM_CHECKPOINTS'
#: where the official release publishes its ImageNet-1k checkpoints (all variants, Google Drive and Baidu links)
OFFICIAL_RELEASE = 'https://github.com/YehLi/ImageNetModel/tree/main/classification#wave-vit'
_TASK_DIRS = {'classification': 'Image Classification', 'detection': 'Object Detection',
              'segmentation': 'Semantic Segmentation'}


@dataclass(frozen=True)
class ModelInfo:
    """One model of the index.

    Attributes:
        name: the model name (lower case), e.g. ``'wavevit-s_8xb128_in1k-tokenlabel'``.
        task: ``'Image Classification'``, ``'Object Detection'`` or ``'Semantic Segmentation'``.
        config: absolute path of its config file.
        weights: its ``wavevit-mm://`` address.
        official_weights: download page of the official checkpoint it is converted from, or None when none
            is published.
    """
    name: str
    task: str
    config: str
    weights: str
    official_weights: Optional[str] = None

    @property
    def weights_path(self) -> str:
        """The local file behind :attr:`weights`."""
        return local_weights_path(self.weights)


def checkpoint_dir() -> str:
    """The local checkpoint folder: ``$WAVEVIT_MM_CHECKPOINTS``, else ``<project>/checkpoints``."""
    return osp.abspath(osp.expanduser(os.environ.get(CHECKPOINTS_ENV) or osp.join(PROJECT_ROOT, 'checkpoints')))


def local_weights_path(address: str) -> str:
    """The file behind a ``wavevit-mm://FILE`` address (other strings are returned unchanged)."""
    if not address.startswith(WEIGHTS_SCHEME):
        return address
    return osp.join(checkpoint_dir(), address[len(WEIGHTS_SCHEME):])


@lru_cache(maxsize=None)
def _index() -> Dict[str, ModelInfo]:
    models = {}
    for metafile in metafile_paths():
        with open(metafile) as f:
            for m in yaml.safe_load(f)['Models']:
                task = _TASK_DIRS[osp.basename(osp.dirname(m['Config']))]
                models[m['Name'].lower()] = ModelInfo(
                    m['Name'].lower(), task, osp.join(PROJECT_ROOT, m['Config']), m['Weights'],
                    (m.get('Converted From') or {}).get('Weights'))
    return models


def list_models(pattern: str = '*', task: Optional[str] = None) -> List[str]:
    """Names of the project's models (all three tasks) matching a wildcard ``pattern``, sorted."""
    return sorted(name for name, info in _index().items()
                  if fnmatch.fnmatch(name, pattern.lower()) and task in (None, info.task))


def get_model_info(name: str) -> ModelInfo:
    """The index entry of a model name (case-insensitive).

    Raises:
        ValueError: unknown name; the message lists the closest names.
    """
    info = _index().get(name.lower())
    if info is None:
        close = difflib.get_close_matches(name.lower(), list(_index()), n=5, cutoff=0.5)
        raise ValueError(f'no Wave-ViT model named {name!r} in {osp.join(PROJECT_ROOT, "model-index.yml")}'
                         + (f'; closest: {close}' if close else '')
                         + ' (wavevit_mm.apis.list_models() lists them all)')
    return info


def missing_weights_message(address: str) -> str:
    """What to do when the file behind ``address`` is not there: where to get it and how to convert it."""
    path = local_weights_path(address)
    users = [info for info in _index().values() if info.weights == address]
    where = f'the folder is ${CHECKPOINTS_ENV}, default {osp.join(PROJECT_ROOT, "checkpoints")}'
    if not users:
        return f'{address}: no such file {path} ({where})'
    names = ', '.join(info.name for info in users)
    official = next((info.official_weights for info in users if info.official_weights), None)
    if official:
        return (f'{address} ({names}): no converted checkpoint at {path}. No converted weights are hosted: '
                f'download the official checkpoint from {official} (all variants and a Baidu mirror: '
                f'{OFFICIAL_RELEASE}; docs/converting_weights.md) and convert it:\n'
                f'    python {osp.join(TOOLS_DIR, "model_converters", "wavevit2mm.py")} DOWNLOADED.pth.tar {path}\n'
                f'({where})')
    info = users[0]
    return (f'{address} ({names}): no checkpoint at {path}. No weights of this model are published (the '
            'official release has ImageNet-1k classifiers only): train it with '
            f'python {osp.join(TOOLS_DIR, "train.py")} {info.config} and copy its last checkpoint to {path} '
            f'({where})')


def resolve_config(model: str) -> str:
    """The config file of ``model``: a config path (``*.py``) or a model name of the index.

    Raises:
        FileNotFoundError: no such config file.
        ValueError: unknown model name (the closest names are listed).
    """
    path = model if model.endswith('.py') else get_model_info(model).config
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    return path


def check_weights(checkpoint: str) -> None:
    """Fail early, saying what to do, when a local checkpoint (a file or a ``wavevit-mm://`` address) is not
    there; other URLs (``https://``, ``s3://``, ...) are left to their loaders.

    Raises:
        FileNotFoundError: the file is missing (for an address: :func:`missing_weights_message`).
    """
    if '://' in checkpoint and not checkpoint.startswith(WEIGHTS_SCHEME):
        return
    if not osp.isfile(local_weights_path(checkpoint)):
        raise FileNotFoundError(missing_weights_message(checkpoint) if checkpoint.startswith(WEIGHTS_SCHEME)
                                else f'checkpoint file not found: {checkpoint}')


def load_from_wavevit_mm(filename: str, map_location=None) -> dict:
    """mmengine ``CheckpointLoader`` backend of ``wavevit-mm://FILE``: the local file, read weights-only.

    Raises:
        FileNotFoundError: no such file; the message says how to get it (:func:`missing_weights_message`).
    """
    from ..utils import load_checkpoint_file
    check_weights(filename)
    return load_checkpoint_file(local_weights_path(filename), map_location=map_location)


def register_all() -> None:
    """Register the ``wavevit-mm://`` checkpoint scheme and, when mmpretrain is installed, the classification
    models in its ``ModelHub`` (idempotent)."""
    from mmengine.runner import CheckpointLoader
    CheckpointLoader.register_scheme(WEIGHTS_SCHEME, load_from_wavevit_mm, force=True)
    try:
        from mmpretrain.apis import ModelHub
    except ImportError:  # a detection / segmentation-only installation
        return
    metafile = osp.join(CONFIG_DIR, 'classification', 'metafile.yml')
    if osp.isfile(metafile) and not all(ModelHub.has(name) for name in list_models(task='Image Classification')):
        ModelHub.register_model_index(metafile, config_prefix=PROJECT_ROOT)
