import subprocess
import sys
import textwrap

import pytest
from wavevit_mm.utils.paths import PROJECT_ROOT as REPO_ROOT
from wavevit_mm.testing import TINY_ARCH

import wavevit_mm  # noqa: F401  (registers WaveViT)


@pytest.mark.parametrize('registry', ['mmpretrain.registry', 'mmdet.registry', 'mmseg.registry'])
def test_build_from_each_library(registry):
    import importlib
    from mmengine.registry import DefaultScope
    MODELS = importlib.import_module(registry).MODELS
    scope = registry.split('.')[0]
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(dict(type='WaveViT', arch=TINY_ARCH, out_indices=(1, 2)))
    assert type(model).__name__ == 'WaveViT' and model.out_indices == (1, 2)


def _run(code):
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)


def test_custom_imports_in_a_fresh_process():
    """A downstream config names the package; nothing imports it beforehand."""
    result = _run("""
        from mmengine.config import Config
        from mmengine.utils import import_modules_from_strings
        cfg = Config(dict(custom_imports=dict(imports=['wavevit_mm'], allow_failed_imports=False),
                          model=dict(type='WaveViT', arch='s', out_indices=(3,))))
        import_modules_from_strings(**cfg['custom_imports'])
        from mmdet.registry import MODELS as DET
        from mmseg.registry import MODELS as SEG
        from mmpretrain.registry import MODELS as CLS
        for reg in (DET, SEG, CLS):
            print(type(reg.build(cfg.model)).__name__)
        from mmpretrain.models import ImageClassifier  # the head is in mmpretrain's registry
        print(CLS.get('WaveViTClsHead').__name__)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['WaveViT'] * 3 + ['WaveViTClsHead']


def test_without_mmpretrain_installed():
    """mmdet / mmseg users need not install mmpretrain."""
    result = _run("""
        import sys
        import importlib.util
        real_find_spec = importlib.util.find_spec
        importlib.util.find_spec = lambda name, *a: None if name.split('.')[0] == 'mmpretrain' \
            else real_find_spec(name, *a)
        sys.modules['mmpretrain'] = None  # any import of it fails
        import wavevit_mm
        from mmdet.registry import MODELS
        from mmengine.registry import DefaultScope
        with DefaultScope.overwrite_default_scope('mmdet'):
            print(type(MODELS.build(dict(type='WaveViT', arch='b'))).__name__)
        print('WaveViTClsHead' in wavevit_mm.models.__all__)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['WaveViT', 'False']


def test_mim_finds_the_package_without_pythonpath(tmp_path):
    """tools/setup_env.sh installs the package so that mim finds wavevit_mm/.mim from any directory."""
    import os
    mim = os.path.join(os.path.dirname(sys.executable), 'mim')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    result = subprocess.run([mim, 'search', 'wavevit_mm', '--field', 'config'], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for config in ('wavevit-s_8xb128_in1k', 'mask-rcnn_wavevit-s_fpn_1x_coco',
                   'upernet_wavevit-b_8xb2-160k_ade20k-512x512'):
        assert f'config id: {config}' in result.stdout
