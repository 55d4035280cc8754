"""End to end on a tiny ADE20K-layout dataset: tools/train.py, tools/test.py (IoUMetric), the multi-scale +
flip test setting, and mmseg's inference APIs with our config and checkpoint.

The model is our Wave-ViT-S config with the tiny arch and narrow heads (wavevit_mm/testing/seg_data.py); everything
else (dataset type, pipelines incl. the label check, optimizer settings, schedule, hooks) is the config's.
"""
import os.path as osp
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from wavevit_mm.utils.paths import PROJECT_ROOT as REPO_ROOT
from wavevit_mm.testing.seg_data import VAL_IMAGES, draw_label, make_ade20k_fixture, stored_to_loaded, tiny_train_config

ITERS = 4


def _run_tool(tool, *args, cwd):
    proc = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', tool), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{tool} failed:\n{out[-4000:]}'
    return out


def _expected_miou_all_wall(images=None):
    """mIoU (in %) of a model that predicts class 0 (wall) everywhere on the validation fixture (or the
    images with these 1-based numbers), computed
    here from the drawn label maps: IoU(wall) = wall pixels / valid pixels, 0 for the other classes that
    occur, classes that neither occur nor are predicted do not count (IoUMetric's nanmean)."""
    wall = valid = 0
    present = set()
    for i, (_, h, w) in enumerate(VAL_IMAGES, start=1):
        if images is not None and i not in images:
            continue
        loaded = stored_to_loaded(draw_label(h, w, seed=i))
        mask = loaded != 255
        wall += int((loaded[mask] == 0).sum())
        valid += int(mask.sum())
        present |= set(np.unique(loaded[mask]).tolist())
    return 100 * (wall / valid) / len(present)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Train ITERS iterations with tools/train.py; also write an 'all wall' copy of the checkpoint."""
    tmp = tmp_path_factory.mktemp('seg_e2e')
    root = make_ade20k_fixture(str(tmp / 'ADEChallengeData2016'))
    work_dir = str(tmp / 'work')
    cfg = tiny_train_config('s', root, work_dir, iters=ITERS)
    cfg_path = str(tmp / 'upernet_wavevit-tiny_ade20k.py')
    cfg.dump(cfg_path)
    log = _run_tool('train.py', cfg_path, cwd=str(tmp))
    ckpt = osp.join(work_dir, f'iter_{ITERS}.pth')

    # the same checkpoint with the decode head's classifier replaced by "always class 0 (wall)"
    state = torch.load(ckpt, map_location='cpu', weights_only=True)
    sd = state['state_dict']
    sd['decode_head.conv_seg.weight'].zero_()
    sd['decode_head.conv_seg.bias'].zero_()
    sd['decode_head.conv_seg.bias'][0] = 10.
    wall_ckpt = str(tmp / 'all_wall.pth')
    torch.save(state, wall_ckpt)
    return dict(tmp=tmp, root=root, cfg_path=cfg_path, ckpt=ckpt, wall_ckpt=wall_ckpt, log=log)


def test_train_runs_validates_and_checkpoints(trained):
    log = trained['log']
    assert f'Iter(train) [{ITERS}/{ITERS}]' in log
    losses = [float(x) for x in re.findall(r'decode\.loss_ce: ([0-9.]+)', log)]
    assert len(losses) == ITERS and all(np.isfinite(losses))
    assert re.search(r'aux\.loss_ce: [0-9.]+', log)
    assert re.search(r'Iter\(val\) \[2/2\].*mIoU: [0-9.]+', log)  # validation at the end, IoUMetric
    assert osp.isfile(trained['ckpt'])
    # written by SafeCheckpointHook: loads weights-only, meta has the ADE20K classes
    state = torch.load(trained['ckpt'], map_location='cpu', weights_only=True)
    assert len(state['meta']['dataset_meta']['classes']) == 150
    assert state['meta']['iter'] == ITERS


def test_tools_test_prints_miou(trained):
    log = _run_tool('test.py', trained['cfg_path'], trained['wall_ckpt'], '--work-dir',
                    str(trained['tmp'] / 'test_ss'), cwd=str(trained['tmp']))
    m = re.search(r'Iter\(test\) \[2/2\].*?mIoU: ([0-9.]+)', log)
    assert m, log[-3000:]
    assert float(m.group(1)) == pytest.approx(_expected_miou_all_wall(), abs=0.01)
    assert re.search(r'\|\s+wall\s+\|', log)  # the per-class table


def test_multiscale_flip_test_setting(trained):
    """tools/test.py --tta: the config's tta_pipeline (scales x flips) and SegTTAModel."""
    log = _run_tool('test.py', trained['cfg_path'], trained['wall_ckpt'], '--tta', '--work-dir',
                    str(trained['tmp'] / 'test_tta'), '--cfg-options', 'test_dataloader.dataset.indices=[1]',
                    cwd=str(trained['tmp']))  # the second validation image only: 12 passes per image
    assert 'SegTTAModel' in log
    m = re.search(r'Iter\(test\) \[1/1\].*?mIoU: ([0-9.]+)', log)
    assert m, log[-3000:]
    assert float(m.group(1)) == pytest.approx(_expected_miou_all_wall(images={2}), abs=0.01)


@pytest.fixture(scope='module')
def odd_image(trained):
    """A 75 x 101 photo (neither side a multiple of 32 or 16)."""
    from skimage import data as skdata
    img = cv2.resize(skdata.rocket(), (101, 75), interpolation=cv2.INTER_AREA)
    path = str(trained['tmp'] / 'rocket_75x101.jpg')
    cv2.imwrite(path, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return path


def test_mmseg_inferencer(trained, odd_image):
    from mmseg.apis import MMSegInferencer
    inferencer = MMSegInferencer(model=trained['cfg_path'], weights=trained['ckpt'], device='cpu')
    assert len(inferencer.model.dataset_meta['classes']) == 150
    result = inferencer(odd_image, return_datasamples=True)
    pred = result.pred_sem_seg.data
    assert pred.shape == (1, 75, 101)
    assert 0 <= int(pred.min()) and int(pred.max()) < 150
    # the weights are really ours: the "all wall" checkpoint predicts class 0 everywhere
    wall = MMSegInferencer(model=trained['cfg_path'], weights=trained['wall_ckpt'], device='cpu')
    out = wall(odd_image, return_datasamples=True)
    assert out.pred_sem_seg.data.shape == (1, 75, 101) and int(out.pred_sem_seg.data.max()) == 0


def test_init_model_inference_model(trained, odd_image):
    from mmseg.apis import inference_model, init_model
    model = init_model(trained['cfg_path'], trained['wall_ckpt'], device='cpu')
    result = inference_model(model, odd_image)
    assert result.pred_sem_seg.data.shape == (1, 75, 101)
    assert int(result.pred_sem_seg.data.max()) == 0
    assert result.seg_logits.data.shape == (150, 75, 101)
