"""The COCO detection configs: the official recipes, and every config builds, trains a step and predicts on CPU.

Each model is built exactly as its config says (the real S / B backbone), except that the backbone is not
initialised from the ImageNet checkpoint, SyncBN becomes BN (no CUDA here), the R-CNN samplers take fewer
RoIs and the images are small: CPU-test sizes, nothing the configs choose.
"""
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.model import revert_sync_batchnorm

from wavevit_mm.testing.metafiles import published
from wavevit_mm.utils.model_utils import iter_dicts
from wavevit_mm.testing.det_data import (DET_CONFIG_DIR, box_sizes_ok, det_config_names, make_coco_fixture,  # noqa: F401
                          synthetic_batch)

import wavevit_mm  # noqa: F401  (registers WaveViT)
from wavevit_mm.testing import assert_checkpoint_hooks
from wavevit_mm.models.backbones.wavevit import WaveViT

pytestmark = pytest.mark.usefixtures('one_torch_thread', 'mmdet_scope')

#: config -> (model type, variant, the COCO metrics it publishes: their values are in the metafile)
CONFIGS = {
    'retinanet_wavevit-s_fpn_1x_coco.py': ('RetinaNet', 's', ['box AP']),
    'retinanet_wavevit-b_fpn_1x_coco.py': ('RetinaNet', 'b', ['box AP']),
    'mask-rcnn_wavevit-s_fpn_1x_coco.py': ('MaskRCNN', 's', ['box AP', 'mask AP']),
    'mask-rcnn_wavevit-b_fpn_1x_coco.py': ('MaskRCNN', 'b', ['box AP', 'mask AP']),
    'mask-rcnn_wavevit-s_fpn_ms-3x_coco.py': ('MaskRCNN', 's', ['box AP', 'mask AP']),
    'mask-rcnn_wavevit-b_fpn_ms-3x_coco.py': ('MaskRCNN', 'b', ['box AP', 'mask AP']),
    'cascade-mask-rcnn_wavevit-s_fpn_ms-3x_coco.py': ('CascadeRCNN', 's', ['box AP']),
    'atss_wavevit-s_fpn_ms-3x_coco.py': ('ATSS', 's', ['box AP']),
    'gfl_wavevit-s_fpn_ms-3x_coco.py': ('GFL', 's', ['box AP']),
    'sparse-rcnn_wavevit-s_fpn_300-proposals_ms-3x_coco.py': ('SparseRCNN', 's', ['box AP']),
}
MASK_MODELS = ('MaskRCNN', 'CascadeRCNN')
DIMS = {v: WaveViT.arch_zoo[v]['embed_dims'] for v in ('s', 'b')}


def _load(name: str) -> Config:
    return Config.fromfile(osp.join(DET_CONFIG_DIR, name))


def _for_cpu_test(cfg: Config) -> ConfigDict:
    """The model config at CPU-test size: no pretrained file, fewer proposals and sampled RoIs, at most 20
    detections per image, and no score threshold (so that a randomly initialised model predicts something)."""
    model = cfg.model
    model.backbone.init_cfg = None
    if model.type == 'SparseRCNN':
        model.rpn_head.num_proposals = 20

    for node in iter_dicts([model.train_cfg, model.test_cfg]):
        if node.get('type') == 'RandomSampler':
            node['num'] = 64
        if 'score_thr' in node:
            node['score_thr'] = 0.
        for key, limit in (('nms_pre', 200), ('max_per_img', 20)):
            if key in node:
                node[key] = min(node[key], limit)
    return model


def test_every_config_is_covered():
    assert det_config_names() == sorted(CONFIGS)


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_recipe(name):
    """What each config promises: mmdet base, backbone, FPN widths, schedule, optimizer, and a published result
    (in the metafile, which the header points at without repeating the numbers)."""
    model_type, variant, metrics = CONFIGS[name]
    text = open(osp.join(DET_CONFIG_DIR, name)).read()
    assert re.search(r"^_base_ = .*'mmdet::|^    'mmdet::|^_base_ = './", text, re.M), 'inherits mmdet configs'
    results = published(osp.splitext(name)[0])
    assert list(results) == ['COCO'] and sorted(results['COCO']) == metrics
    assert 'Reproduces' in text and 'metafile.yml' in text
    for metric, value in results['COCO'].items():
        assert f'{metric} {value}' not in text and f'{value} {metric}' not in text, f'{name} repeats a number'
    cfg = _load(name)
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports == dict(imports=['wavevit_mm'], allow_failed_imports=False)
    m = cfg.model
    assert m.type == model_type
    bb = m.backbone
    assert (bb.type, bb.arch, tuple(bb.out_indices), bb.final_norm, bb.drop_path_rate) == \
        ('WaveViT', variant, (0, 1, 2, 3), True, 0.1)
    assert bb.norm_cfg == dict(type='BN', requires_grad=False)
    # backbone and checkpoint path are defined once, in configs/_base_/wavevit_dense_backbones.py
    assert bb.init_cfg == dict(type='Pretrained', checkpoint=cfg[f'wavevit_{variant}_in1k'], prefix='backbone.')
    assert cfg[f'wavevit_{variant}_in1k'] == f'checkpoints/wavevit-{variant}_in1k.pth'
    assert bb == cfg[f'wavevit_{variant}_backbone']
    assert_checkpoint_hooks(cfg)
    neck = m.neck
    assert (neck.type, list(neck.in_channels), neck.out_channels) == ('FPN', DIMS[variant], 256)
    if model_type in ('RetinaNet', 'ATSS', 'GFL'):
        extra = 'on_input' if model_type == 'RetinaNet' else 'on_output'
        assert (neck.start_level, neck.add_extra_convs, neck.num_outs) == (1, extra, 5)
    elif model_type == 'SparseRCNN':
        assert (neck.start_level, neck.add_extra_convs, neck.num_outs) == (0, 'on_input', 4)
        assert m.rpn_head.num_proposals == 300 and m.test_cfg.rcnn.max_per_img == 300
    else:
        assert neck.get('start_level', 0) == 0 and neck.num_outs == 5
    if model_type == 'CascadeRCNN':
        for stage in m.roi_head.bbox_head:
            assert (stage.type, stage.num_shared_convs, stage.num_shared_fcs, stage.fc_out_channels) == \
                ('ConvFCBBoxHead', 4, 1, 1024)
            assert stage.norm_cfg.type == 'SyncBN' and stage.loss_bbox == dict(type='GIoULoss', loss_weight=10.)
            assert stage.reg_decoded_bbox and not stage.reg_class_agnostic

    ow = cfg.optim_wrapper
    assert ow.type == 'AmpOptimWrapper' and 'constructor' not in ow
    # the official runs' fp16: apex (dynamic scale) for RetinaNet-S and Mask R-CNN-B 1x, else static 512
    dynamic = name in ('retinanet_wavevit-s_fpn_1x_coco.py', 'mask-rcnn_wavevit-b_fpn_1x_coco.py')
    assert ow.loss_scale == ('dynamic' if dynamic else 512.)
    assert ow.paramwise_cfg == dict(custom_keys={'norm': dict(decay_mult=0.)})
    opt = ow.optimizer
    assert opt.type == 'AdamW' and tuple(opt.betas) == (0.9, 0.999)
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.end, warmup.start_factor, warmup.by_epoch) == ('LinearLR', 500, 0.001, False)
    epochs = cfg.train_cfg.max_epochs
    if '_1x_' in name:
        assert epochs == 12 and list(steps.milestones) == [8, 11]
        assert (opt.lr, opt.weight_decay) == ((1e-4 if model_type == 'RetinaNet' else 2e-4), 1e-4)
    else:
        assert epochs == 36 and list(steps.milestones) == [27, 33] and steps.end == 36
        if model_type == 'SparseRCNN':
            assert (opt.lr, opt.weight_decay) == (2e-5, 1e-4)
            assert ow.clip_grad == dict(max_norm=1, norm_type=2)
        else:
            assert (opt.lr, opt.weight_decay) == (1e-4, 0.05)
    batch = cfg.train_dataloader.batch_size
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=8 * batch)
    assert batch == (1 if model_type == 'SparseRCNN' else 2)


def _transforms(pipeline):
    """Every transform dict of a pipeline, RandomChoice branches included."""
    for t in pipeline:
        yield t
        for branch in t.get('transforms', []):
            yield from _transforms(branch if isinstance(branch, list) else [branch])


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    return make_coco_fixture(str(tmp_path_factory.mktemp('coco')))


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_pipelines_on_photos(name, coco_root):
    """The shipped train and test pipelines run on real photos and never round image sizes (the backbone
    takes any size: the official code resized to multiples of 16)."""
    from mmdet.registry import DATASETS
    model_type = CONFIGS[name][0]
    cfg = _load(name)
    train = cfg.train_dataloader.dataset
    types = [t['type'] for t in _transforms(train.pipeline)]
    assert not any('size_divisor' in t for t in _transforms(train.pipeline))
    if '_ms-3x_' in name:
        assert 'RandomChoice' in types and 'RandomCrop' in types
        choice = next(t for t in train.pipeline if t['type'] == 'RandomChoice')
        plain, crop = choice.transforms
        long_side = 1200 if model_type == 'GFL' else 1333
        assert [tuple(s) for s in plain[0]['scales']] == [(s, long_side) for s in range(480, 801, 32)]
        assert [t['type'] for t in crop] == ['RandomChoiceResize', 'RandomCrop', 'RandomChoiceResize']
        assert tuple(crop[1]['crop_size']) == (384, 600) and crop[1]['crop_type'] == 'absolute_range'
    else:
        assert 'RandomChoice' not in types
    with_mask = model_type in MASK_MODELS
    assert next(t for t in train.pipeline if t['type'] == 'LoadAnnotations').get('with_mask', False) == with_mask
    sides = []
    for loader, split in ((cfg.train_dataloader, 'train2017'), (cfg.test_dataloader, 'val2017')):
        ds_cfg = loader.dataset.copy()
        ds_cfg.update(data_root=coco_root, ann_file=f'annotations/instances_{split}.json',
                      data_prefix=dict(img=f'{split}/'))
        dataset = DATASETS.build(ds_cfg)
        assert len(dataset) == 3
        for i in range(len(dataset)):
            item = dataset[i]
            h, w = item['data_samples'].img_shape
            assert tuple(item['inputs'].shape) == (3, h, w)
            sides += [h, w]
            if loader is cfg.test_dataloader:  # 1333 x 800: the short side is 800 unless the long one caps it
                assert min(h, w) == 800 or max(h, w) == 1333
            if with_mask and loader is cfg.train_dataloader:
                assert item['data_samples'].gt_instances.masks.height == h
    assert any(side % 16 for side in sides), f'image sides rounded to multiples of 16: {sides}'


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_loss_and_predict(name):
    """The model of each config, built as configured (real S/B backbone), runs one training step (loss under the
    CPU form of its mixed-precision wrapper, and backward) and one prediction on a small synthetic batch (64 x 96
    images)."""
    from mmdet.registry import MODELS
    model_type, variant, _ = CONFIGS[name]
    cfg = _load(name)
    model = MODELS.build(_for_cpu_test(cfg))
    had_sync_bn = any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    assert had_sync_bn == (model_type == 'CascadeRCNN')  # the official 4conv1fc heads use SyncBN
    model = revert_sync_batchnorm(model)
    model.init_weights()
    with_mask = model_type in MASK_MODELS
    batch = synthetic_batch(64, 96, batch=2, with_mask=with_mask)

    model.train()
    data = model.data_preprocessor(batch, True)
    assert tuple(data['inputs'].shape) == (2, 3, 64, 96)
    # the loss under the optimizer wrapper tools/train.py makes of the config's fp16 AmpOptimWrapper on this CPU:
    # bfloat16 autocast, or float32 for the detectors whose heads train through mmcv's float32-only CPU ops
    from mmengine.optim import build_optim_wrapper
    from wavevit_mm.engine.launch import adapt_to_device
    optim_cfg = adapt_to_device(Config(dict(model=cfg.model, optim_wrapper=cfg.optim_wrapper))).optim_wrapper
    two_stage = model_type in ('MaskRCNN', 'CascadeRCNN', 'SparseRCNN')
    assert optim_cfg.type == ('OptimWrapper' if two_stage else 'AutocastOptimWrapper')
    with build_optim_wrapper(model, optim_cfg).optim_context(model):
        losses = model.loss(data['inputs'], data['data_samples'])
    total = 0.
    for key, value in losses.items():
        if 'loss' not in key:
            continue
        for v in (value if isinstance(value, (list, tuple)) else [value]):
            assert torch.isfinite(v).all(), f'{key} is not finite'
            total = total + v.sum()
    if with_mask:
        assert any('loss_mask' in k for k in losses)
    total.backward()
    bb = model.backbone
    assert bb.patch_embed1.proj.weight.grad is not None and bb.patch_embed1.proj.weight.grad.abs().sum() > 0
    assert bb.block4[-1].mlp.fc2.weight.grad.abs().sum() > 0
    # the stem BatchNorm keeps its (ImageNet) affine parameters, as in the official detection backbone
    assert not bb.patch_embed1.conv[1].weight.requires_grad and bb.patch_embed1.conv[1].weight.grad is None

    model.eval()
    data = model.data_preprocessor(synthetic_batch(64, 96, batch=2, with_mask=with_mask, seed=1), False)
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    assert len(results) == 2
    for res in results:
        pred = res.pred_instances
        n = len(pred)
        assert n > 0
        assert pred.bboxes.shape == (n, 4) and torch.isfinite(pred.bboxes).all()
        if model_type != 'SparseRCNN':  # (its box coder does not clip to the image, as in mmdet's own config)
            assert box_sizes_ok(pred.bboxes, 64, 96)
        assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
        assert ((pred.labels >= 0) & (pred.labels < 80)).all()
        if with_mask:
            assert tuple(pred.masks.shape) == (n, 64, 96)
