"""demo/image_demo.py on the shipped demo image for the three tasks (the shipped configs with the tiny arch, in
process), tools/model_converters/verify_wavevit.py on converted-layout checkpoints, and tools/test.py --show-dir
on the tiny data sets of wavevit_mm.testing: every PNG is looked at (size, not blank, painted), every printed
claim checked."""
import os
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch

from wavevit_mm.testing import TINY_ARCH
from wavevit_mm.testing.figures import check_png
from wavevit_mm.utils.paths import CONFIG_DIR, PROJECT_ROOT, load_script

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
                     f'model = dict(backbone=dict(arch={TINY!r}),\n'
                     f'             decode_head=dict(in_channels={DIMS!r}, channels=32),\n'
                     f'             auxiliary_head=dict(in_channels={DIMS[2]}, channels=16))'),
}

pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(scope='module')
def demo():
    return load_script('demo/image_demo.py')


@pytest.fixture(scope='module')
def verify():
    return load_script('tools/model_converters/verify_wavevit.py')


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


def check_painted_png(path, photo: np.ndarray) -> np.ndarray:
    """A PNG of the photo's size, not blank, and painted (differs from the photo)."""
    assert check_png(str(path), min_size=(1, 1)) == (photo.shape[1], photo.shape[0])
    image = mmcv.imread(str(path))
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
    image = check_painted_png(out, photo)
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
    check_painted_png(out, mmcv.imread(DEMO_IMAGE))


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
    name = 'tabby, tabby cat' if favoured == 281 else 'tench, Tinca tinca'
    assert rows[0].startswith(f'  1. {favoured:4d} {name}')
    if status == 0:
        assert 'ok: a domestic-cat class is in the top 5' in captured.out
    else:
        assert 'no domestic-cat class (281-285) in the top 5' in captured.err


def test_verify_refuses_what_it_cannot_check(verify, tmp_path, capsys):
    ckpt = tiny_classifier_checkpoint(tmp_path, 281, meta={'arch': 'custom', 'aux_head': True})
    assert verify.main([ckpt]) == 1  # a custom arch has no default config
    assert "its meta names no S / B / L variant (arch 'custom'); pass --config" in capsys.readouterr().err
    # the tiny weights do not fit the real S classifier: refused with the reason
    assert verify.main([ckpt, '--config', 'wavevit-s_8xb128_in1k-tokenlabel']) == 1  # a model name works too
    err = capsys.readouterr().err
    assert 'the checkpoint does not fit' in err and 'size mismatch for backbone.' in err
    state = torch.load(ckpt, weights_only=True)['state_dict']
    official = str(tmp_path / 'official.pth')
    torch.save({'model': {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}}, official)
    assert verify.main([official]) == 1
    assert 'is an official checkpoint, not a converted one: convert it first' in capsys.readouterr().err


def build_and_save(config: str, scope: str, path) -> str:
    """A checkpoint of the config's model as built (random weights), for tools/test.py."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(Config.fromfile(config).model)
    torch.save({'meta': {}, 'state_dict': model.state_dict()}, path)
    return str(path)


def check_painted_pairs(pngs, originals):
    """mmdet / mmseg paint the ground truth (left) beside the prediction (right); mmseg writes PNGs, mmdet
    writes each picture in its input's format (JPEG here)."""
    assert sorted(pngs) == sorted(originals), (sorted(pngs), sorted(originals))
    for name, path in pngs.items():
        photo = mmcv.imread(originals[name])
        if path.endswith('.png'):
            check_png(path, min_size=(1, 1))
        image = mmcv.imread(path)
        h, w = photo.shape[:2]
        assert image.shape == (h, 2 * w, 3) and image.std() > 20, (name, image.shape)
        for half in (image[:, :w], image[:, w:]):
            assert (np.abs(half.astype(int) - photo.astype(int)).max(axis=2) > 40).mean() > 0.02, name



def run_test_py(config: str, ckpt: str, tmp_path, *options: str) -> str:
    """tools/test.py --show-dir in this process. The visualizer gets a name of its own: mmengine hands a Runner
    the existing visualizer of the same name (save_dir and all), and the visualization hooks the latest one
    created, which earlier tests of the process made."""
    show = str(tmp_path / 'show')
    load_script('tools/test.py').main(
        [config, ckpt, '--work-dir', str(tmp_path / 'work'), '--show-dir', show, '--cfg-options',
         f'visualizer.name=show_dir_{tmp_path.name}', *options])
    return show


def test_show_dir_classification(tmp_path):
    """Three crops of the demo photo as an ImageNet-layout val set (class 281): one painted 224 x 224 input each."""
    from mmpretrain import get_model
    photo = mmcv.imread(DEMO_IMAGE)
    names = [f'crop{i}.jpg' for i in range(3)]
    for i, name in enumerate(names):
        mmcv.imwrite(photo[20 * i:20 * i + 250, 40 * i:40 * i + 350], str(tmp_path / 'imagenet' / 'val' / name))
    os.makedirs(tmp_path / 'imagenet' / 'meta')
    (tmp_path / 'imagenet' / 'meta' / 'val.txt').write_text(''.join(f'{name} 281\n' for name in names))
    config = tiny_config(tmp_path, 'classification')
    ckpt = str(tmp_path / 'cls.pth')
    torch.save({'meta': {}, 'state_dict': get_model(config).state_dict()}, ckpt)
    show = run_test_py(config, ckpt, tmp_path, f'test_dataloader.dataset.data_root={tmp_path / "imagenet"}',
                       'test_dataloader.batch_size=2', 'test_dataloader.num_workers=0')
    assert sorted(os.listdir(show)) == [f'{name}_0.png' for name in names]  # mmpretrain's <image>_<step>.png
    for name in names:
        assert check_png(osp.join(show, f'{name}_0.png'), min_size=(1, 1)) == (224, 224)
        image = mmcv.imread(osp.join(show, f'{name}_0.png'))
        # the prediction is written in white on a dark box at the top left
        assert (image[:40, :200].min(axis=2) > 230).sum() > 30 and (image[:40, :200].max(axis=2) < 60).sum() > 300


def test_show_dir_detection(tmp_path):
    from wavevit_mm.testing.det_data import make_coco_fixture, small_data_config
    root = make_coco_fixture(str(tmp_path / 'coco'))
    config = tmp_path / 'det.py'
    config.write_text(f'_base_ = {tiny_config(tmp_path, "detection")!r}\n' + small_data_config(root))
    ckpt = build_and_save(str(config), 'mmdet', tmp_path / 'det.pth')
    show = run_test_py(str(config), ckpt, tmp_path, 'default_hooks.visualization.score_thr=0')
    val = osp.join(root, 'val2017')
    check_painted_pairs({f: osp.join(show, f) for f in os.listdir(show)},
                        {f: osp.join(val, f) for f in os.listdir(val)})


def test_show_dir_segmentation(tmp_path):
    from wavevit_mm.testing.seg_data import make_ade20k_fixture, tiny_train_config
    root = make_ade20k_fixture(str(tmp_path / 'ade'))
    config = str(tmp_path / 'seg.py')
    tiny_train_config('s', root, str(tmp_path / 'work')).dump(config)
    ckpt = build_and_save(config, 'mmseg', tmp_path / 'seg.pth')
    show = run_test_py(config, ckpt, tmp_path)
    painted = osp.join(show, 'vis_data', 'vis_image')
    val = osp.join(root, 'images', 'validation')
    check_painted_pairs({f[len('test_'):].rsplit('_', 1)[0]: osp.join(painted, f) for f in os.listdir(painted)},
                        {f: osp.join(val, f) for f in os.listdir(val)})
