"""demo/image_demo.py on the shipped demo image for the three tasks (the shipped configs with the tiny arch, in
process), and tools/model_converters/verify_wavevit.py on converted-layout checkpoints: every PNG is looked at
(size, not blank, painted), every printed claim checked."""
import importlib.util
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch

from wavevit_mm.testing import TINY_ARCH
from wavevit_mm.utils.paths import CONFIG_DIR, PROJECT_ROOT

DEMO_IMAGE = osp.join(PROJECT_ROOT, 'demo', 'demo.jpg')
TINY = dict(_delete_=True, **TINY_ARCH)
DIMS = TINY_ARCH['embed_dims']
TINY_CONFIGS = {
    'classification': ('classification/wavevit-s_8xb128_in1k-tokenlabel.py',
                       f'model = dict(backbone=dict(arch={TINY!r}), head=dict(in_channels={DIMS[3]}, num_heads=4))'),
    # no test-time score threshold (random weights score about 1/81), at most 20 detections, images resized to
    # 480 x 320 (not 1333 x 800)
    'detection': ('detection/mask-rcnn_wavevit-s_fpn_1x_coco.py',
                  f'model = dict(backbone=dict(arch={TINY!r}), neck=dict(in_channels={DIMS!r}),\n'
                  '             test_cfg=dict(rcnn=dict(score_thr=0., max_per_img=20)))\n'
                  "test_dataloader = dict(dataset=dict(pipeline=[dict(type='LoadImageFromFile'), "
                  "dict(type='Resize', scale=(480, 320), keep_ratio=True), dict(type='PackDetInputs')]))"),
    'segmentation': ('segmentation/upernet_wavevit-s_8xb2-160k_ade20k-512x512.py',
                     f'model = dict(backbone=dict(arch={TINY!r}), decode_head=dict(in_channels={DIMS!r}, channels=32),\n'
                     f'             auxiliary_head=dict(in_channels={DIMS[2]}, channels=16))'),
}

pytestmark = pytest.mark.usefixtures('one_torch_thread')


def load_script(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, osp.join(PROJECT_ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def demo():
    return load_script('demo/image_demo.py', '_wavevit_image_demo')


@pytest.fixture(scope='module')
def verify():
    return load_script('tools/model_converters/verify_wavevit.py', '_wavevit_verify')


def tiny_config(tmp_path, task: str) -> str:
    base, override = TINY_CONFIGS[task]
    path = tmp_path / f'tiny_{task}.py'
    path.write_text(f'_base_ = {osp.join(CONFIG_DIR, base)!r}\n{override}\n')
    return str(path)


def tiny_classifier_checkpoint(tmp_path, favoured_class: int, meta: dict) -> str:
    """A tiny-arch classifier in the converted layout whose classifier bias makes ``favoured_class`` win."""
    from mmpretrain import get_model
    model = get_model(tiny_config(tmp_path, 'classification'))
    state = model.state_dict()
    state['head.fc.bias'][favoured_class] = 30.
    path = str(tmp_path / 'tiny_in1k.pth')
    torch.save({'meta': meta, 'state_dict': state}, path)
    return path


def check_png(path, photo: np.ndarray) -> np.ndarray:
    """The PNG has the photo's size, is no flat picture, and is painted (differs from the photo)."""
    assert osp.isfile(path)
    image = mmcv.imread(path)
    assert image.shape == photo.shape
    assert image.std() > 20
    changed = (np.abs(image.astype(int) - photo.astype(int)).max(axis=2) > 40).mean()
    assert changed > 0.02, f'only {changed:.1%} of the pixels are painted'
    return image


@pytest.mark.parametrize('task', ['classification', 'detection', 'segmentation'])
def test_demo_random_weights_writes_labelled_png(demo, task, tmp_path, capsys):
    out = tmp_path / f'{task}.png'
    extra = ['--score-thr', '0'] if task == 'detection' else []
    assert demo.main([DEMO_IMAGE, tiny_config(tmp_path, task), '--out-file', str(out), '--device', 'cpu', *extra]) == 0
    printed = capsys.readouterr().out
    assert f'{task}: ' in printed and 'with random weights' in printed
    assert 'RANDOM WEIGHTS (no --checkpoint): the predictions are meaningless' in printed
    assert f'wrote {out} (451 x 300)' in printed
    photo = mmcv.imread(DEMO_IMAGE)
    image = check_png(out, photo)
    # the label is painted across the bottom left: red text on white
    strip = image[-16:, :200].reshape(-1, 3)
    assert ((strip[:, 2] > 200) & (strip[:, 1] < 80)).sum() > 50 and (strip.min(axis=1) > 220).sum() > 200
    if task == 'classification':
        from mmpretrain.datasets.categories import IMAGENET_CATEGORIES
        rows = printed.split('top-5 classes:\n')[1].splitlines()[:5]
        for rank, row in enumerate(rows, 1):
            index = int(row.split()[1])
            assert row.strip().startswith(f'{rank}.') and IMAGENET_CATEGORIES[index] in row and row.endswith('%')
    elif task == 'detection':
        assert '20 boxes and masks with score >= 0.0 (of 20 detections): ' in printed
    else:
        assert 'classes in the 451 x 300 map; largest: ' in printed


def test_demo_with_checkpoint_predicts_with_it(demo, tmp_path, capsys):
    ckpt = tiny_classifier_checkpoint(tmp_path, 281, meta={})
    out = tmp_path / 'cls.png'
    assert demo.main([DEMO_IMAGE, tiny_config(tmp_path, 'classification'), '--checkpoint', ckpt,
                      '--out-file', str(out), '--topk', '3', '--device', 'cpu']) == 0
    printed = capsys.readouterr().out
    assert 'RANDOM' not in printed and f'with {ckpt} on' in printed
    assert '  1.  281 tabby, tabby cat' in printed and '  3. ' in printed and '  4. ' not in printed
    check_png(out, mmcv.imread(DEMO_IMAGE))


def test_demo_errors_are_one_clear_line(demo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('WAVEVIT_MM_CHECKPOINTS', str(tmp_path))
    assert demo.main([DEMO_IMAGE, 'wavevit-b_8xb128_in1k-tokenlabel', '--checkpoint',
                      'wavevit-mm://wavevit-b_in1k.pth']) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: wavevit-mm://wavevit-b_in1k.pth (wavevit-b_8xb128_in1k-tokenlabel): no converted')
    assert 'drive.google.com' in err and 'wavevit2mm.py DOWNLOADED.pth.tar' in err and 'Traceback' not in err
    assert demo.main([DEMO_IMAGE, 'mask-rcnn_wavevit-s_fpn']) == 1
    assert "closest: ['mask-rcnn_wavevit-s_fpn_1x_coco'" in capsys.readouterr().err
    assert demo.main([str(tmp_path / 'none.jpg'), 'mask-rcnn_wavevit-s_fpn_1x_coco']) == 1
    assert 'image not found' in capsys.readouterr().err


@pytest.mark.parametrize('favoured, status', [(281, 0), (0, 1)])
def test_verify_prints_imagenet_top5_and_checks_the_cat(verify, tmp_path, capsys, favoured, status):
    ckpt = tiny_classifier_checkpoint(tmp_path, favoured, meta={'arch': 'custom', 'aux_head': True})
    assert verify.main([ckpt, '--config', tiny_config(tmp_path, 'classification')]) == status
    captured = capsys.readouterr()
    n = len(torch.load(ckpt, weights_only=True)['state_dict'])
    assert f'tiny_classification.py: all {n} tensors loaded (strict)' in captured.out
    rows = captured.out.split(f'top-5 classes for {DEMO_IMAGE}:\n')[1].splitlines()[:5]
    assert rows[0].startswith(f'  1. {favoured:4d} ' + ('tabby, tabby cat' if favoured == 281 else 'tench, Tinca tinca'))
    if status == 0:
        assert 'ok: a domestic-cat class is in the top 5' in captured.out
    else:
        assert 'no domestic-cat class (281-285) in the top 5' in captured.err


def test_verify_refuses_what_it_cannot_check(verify, tmp_path, capsys):
    ckpt = tiny_classifier_checkpoint(tmp_path, 281, meta={'arch': 'custom', 'aux_head': True})
    assert verify.main([ckpt]) == 1  # a custom arch has no default config
    assert "its meta names no S / B / L variant (arch 'custom'); pass --config" in capsys.readouterr().err
    # the tiny weights do not fit the real S classifier: refused with the reason
    assert verify.main([ckpt, '--config', osp.join(CONFIG_DIR, 'classification', 'wavevit-s_8xb128_in1k-tokenlabel.py')]) == 1
    err = capsys.readouterr().err
    assert 'the checkpoint does not fit' in err and 'size mismatch for backbone.' in err
    state = torch.load(ckpt, weights_only=True)['state_dict']
    official = str(tmp_path / 'official.pth')
    torch.save({'model': {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}}, official)
    assert verify.main([official]) == 1
    assert 'is an official checkpoint, not a converted one: convert it first' in capsys.readouterr().err
