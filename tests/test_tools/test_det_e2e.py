"""End to end through the real command-line tools, on a tiny COCO-format data set made from real photos.

1. ``tools/train.py`` trains the shipped Mask R-CNN Wave-ViT-S 1x config (data and image size overridden,
   backbone initialised from a "converted ImageNet checkpoint" through the config's own ``init_cfg``) for
   one epoch and writes a checkpoint; ``tools/test.py`` evaluates it with mmdet's ``CocoMetric``
   (pycocotools) for boxes and masks and prints the AP tables.
2. A downstream project uses the backbone from a config outside this repository that inherits mmdet's own
   Mask R-CNN R-50 config and changes only the backbone (and the FPN input widths), and trains it with the
   ``tools/train.py`` that ships inside the mmdet package.
"""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from wavevit_mm.testing import TINY_ARCH
from wavevit_mm.testing.det_data import DET_CONFIG_DIR, REPO_ROOT, make_coco_fixture, small_data_config

PYTHON = sys.executable
#: mmengine's AmpOptimWrapper (fp16, as the configs train on GPUs) needs CUDA: on CPU the same optimizer runs
#: in fp32 through a plain OptimWrapper
FP32_OPTIM = ("optim_wrapper = dict(_delete_=True, type='OptimWrapper', "
              "optimizer={{_base_.optim_wrapper.optimizer}}, paramwise_cfg={{_base_.optim_wrapper.paramwise_cfg}})\n")


def _run(cmd, cwd, timeout=600):
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')  # see conftest.one_torch_thread
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{" ".join(cmd)} failed ({proc.returncode}):\n{out[-6000:]}'
    return out


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    return make_coco_fixture(str(tmp_path_factory.mktemp('coco')))


def test_train_and_test_tools(tmp_path, coco_root):
    import wavevit_mm  # noqa: F401
    from wavevit_mm import WaveViT
    # stands in for `tools/model_converters/wavevit2mm.py wavevit_s.pth.tar ...` (same layout: backbone.*)
    backbone = WaveViT(arch='s')
    backbone.init_weights()
    pretrained = tmp_path / 'wavevit-s_in1k.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in backbone.state_dict().items()}}, pretrained)

    cfg = tmp_path / 'mask-rcnn_wavevit-s_fpn_1x_coco_tiny.py'
    cfg.write_text(
        f"_base_ = {osp.join(DET_CONFIG_DIR, 'mask-rcnn_wavevit-s_fpn_1x_coco.py')!r}\n"
        # the pretrained file's path; CPU-test size: 128 RoIs per image for the box and mask heads (not 512);
        # at test time no score threshold (a 2-iteration model rarely scores 0.05, and CocoMetric prints no
        # table for an empty result), at most 20 detections per image
        f"model = dict(backbone=dict(init_cfg=dict(checkpoint={str(pretrained)!r})),\n"
        "             train_cfg=dict(rcnn=dict(sampler=dict(num=128))),\n"
        "             test_cfg=dict(rcnn=dict(score_thr=0., max_per_img=20)))\n"
        "train_cfg = dict(max_epochs=1)\n"
        + FP32_OPTIM
        + small_data_config(coco_root)
        # model weights only: the AdamW state would triple a 170 MB file
        + "default_hooks = dict(logger=dict(interval=1), checkpoint=dict(save_optimizer=False))\n")
    work = tmp_path / 'work'
    out = _run([PYTHON, osp.join(REPO_ROOT, 'tools', 'train.py'), str(cfg), '--work-dir', str(work),
                '--no-validate'], cwd=str(tmp_path))
    assert f'loaded all {len(backbone.state_dict())} backbone tensors from {pretrained}' in out
    assert re.search(r'Epoch\(train\) +\[1\]\[2/2\]', out) and 'loss_mask' in out
    ckpt = work / 'epoch_1.pth'
    assert ckpt.is_file()
    state = torch.load(ckpt, map_location='cpu', weights_only=True)['state_dict']
    assert state['backbone.patch_embed1.proj.weight'].shape == backbone.patch_embed1.proj.weight.shape
    # training moved the backbone away from the pretrained weights
    assert not torch.equal(state['backbone.block4.2.mlp.fc2.weight'], backbone.block4[2].mlp.fc2.weight)

    out = _run([PYTHON, osp.join(REPO_ROOT, 'tools', 'test.py'), str(cfg), str(ckpt),
                '--work-dir', str(tmp_path / 'test')], cwd=str(tmp_path))
    for iou_type in ('bbox', 'segm'):
        assert f'Evaluate annotation type *{iou_type}*' in out
        assert f'{iou_type}_mAP_copypaste' in out
        for key in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l'):
            assert f'coco/{iou_type}_{key}: ' in out
    assert out.count('Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]') == 2
    assert re.search(r'Epoch\(test\) +\[3/3\]', out)


def test_downstream_project_with_mmdet_train_tool(tmp_path, coco_root):
    """A config outside the repo: mmdet's Mask R-CNN R-50, with only its backbone swapped for WaveViT."""
    import mmdet
    mmdet_train = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
    assert osp.isfile(mmdet_train), mmdet_train
    project = tmp_path / 'my_project'
    project.mkdir()
    cfg = project / 'mask-rcnn_wavevit-tiny_fpn_1x_coco.py'
    cfg.write_text(
        "_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'\n"
        "custom_imports = dict(imports=['wavevit_mm'], allow_failed_imports=False)\n"
        "model = dict(\n"
        f"    backbone=dict(_delete_=True, type='WaveViT', arch={TINY_ARCH!r}, out_indices=(0, 1, 2, 3)),\n"
        f"    neck=dict(in_channels={TINY_ARCH['embed_dims']!r}))\n"
        "train_cfg = dict(max_epochs=1, val_interval=1)\n"
        + small_data_config(coco_root))
    work = project / 'work_dirs'
    out = _run([PYTHON, mmdet_train, str(cfg), '--work-dir', str(work)], cwd=str(project))
    assert re.search(r'Epoch\(train\) +\[1\]\[2/2\]', out) and 'loss_mask' in out
    # mmdet's validation loop ran too (CocoMetric; the 2-iteration model detects nothing above 0.05 yet)
    assert re.search(r'Epoch\(val\) +\[1\]\[3/3\]', out) and 'Evaluating bbox...' in out
    assert (work / 'epoch_1.pth').is_file()
