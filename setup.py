"""Install wavevit_mm. ``pip install -e .`` links ``configs/`` and ``tools/`` into ``wavevit_mm/.mim`` the way
the OpenMMLab libraries do, so ``mim train wavevit_mm CONFIG`` / ``mim test`` find them."""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools', 'demo', 'model-index.yml')


def get_version() -> str:
    scope = {}
    with open(osp.join(HERE, 'wavevit_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def add_mim_extension() -> None:
    """Symlink (editable install) or copy (wheel build) the mim files into ``wavevit_mm/.mim``."""
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif any(cmd in sys.argv for cmd in ('sdist', 'bdist_wheel', 'build', 'install')):
        mode = 'copy'
    else:
        return
    mim_path = osp.join(HERE, 'wavevit_mm', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(HERE, name)
        if mode == 'copy' and not osp.exists(src):
            continue
        dst = osp.join(mim_path, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_path), dst, target_is_directory=not name.endswith('.yml'))
        elif osp.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)


def read_requirements(name: str):
    with open(osp.join(HERE, 'requirements', name)) as f:
        return [line.split('#')[0].strip() for line in f if line.split('#')[0].strip()]


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='wavevit_mm',
        version=get_version(),
        description='Wave-ViT backbone, configs and tools for mmpretrain, mmdet and mmseg',
        long_description=open(osp.join(HERE, 'README.md')).read() if osp.exists(osp.join(HERE, 'README.md'))
        else '',
        long_description_content_type='text/markdown',
        license='Apache License 2.0',
        python_requires='>=3.9',
        packages=find_packages(exclude=('configs', 'tools', 'tests', 'benchmarks', 'docs')),
        include_package_data=True,
        package_data={'wavevit_mm': ['.mim/model-index.yml', '.mim/configs/**/*', '.mim/tools/**/*',
                                   '.mim/demo/*', 'testing/configs/*.py']},
        # What the code needs (torchvision: imported by mmpretrain, whose build must match torch's); tools/setup_env.sh installs the tested stack within these ranges (torch 2.14.1,
        # torchvision 0.29.1, numpy 2.3.5, mmcv 2.1.0 built with CPU ops, and requirements/runtime.txt's pins).
        # torch >= 2.5: torch.serialization.safe_globals (weights-only checkpoints), torch.is_autocast_enabled(
        # device), SDPA's enable_gqa (get_flops); mmcv < 2.2: what mmdet 3.3 and mmseg 1.2 accept.
        install_requires=['torch>=2.5', 'torchvision', 'numpy', 'pyyaml', 'mmengine>=0.10.0,<1.0',
                          'mmcv>=2.0.0,<2.2.0'],
        extras_require={
            'cls': ['mmpretrain>=1.2.0,<2.0'],
            'det': ['mmdet>=3.3.0,<4.0'],
            'seg': ['mmsegmentation>=1.2.2,<2.0', 'ftfy', 'regex'],
            'all': read_requirements('runtime.txt'),
            'tests': read_requirements('tests.txt'),
        },
        zip_safe=False)
