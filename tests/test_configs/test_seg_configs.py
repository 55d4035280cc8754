"""The ADE20K UperNet configs: the official recipe, and both variants build and run on CPU."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from wavevit_mm.testing import assert_checkpoint_hooks
from wavevit_mm.testing.metafiles import published
from wavevit_mm.testing.seg_data import SEG_CONFIGS, seg_batch, shrink_pipelines

ARCH = {'s': dict(arch='s', drop_path_rate=0.1, dims=[64, 128, 320, 448]),
        'b': dict(arch='b', drop_path_rate=0.3, dims=[64, 128, 320, 512])}


@pytest.fixture(scope='module', params=['s', 'b'])
def variant_cfg(request):
    return request.param, Config.fromfile(SEG_CONFIGS[request.param])


def _pipeline_after_load(pipeline):
    types = [t['type'] for t in pipeline]
    return types[types.index('LoadSegAnnotations') + 1]


def test_official_recipe(variant_cfg):
    v, cfg = variant_cfg
    text = open(SEG_CONFIGS[v]).read()
    miou = published(osp.splitext(osp.basename(SEG_CONFIGS[v]))[0])['ADE20K']['mIoU']
    assert 'metafile.yml' in text and str(miou) not in text  # the header points at the number
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports == dict(imports=['wavevit_mm', 'wavevit_mm.datasets.seg_transforms'],
                                      allow_failed_imports=False)
    m = cfg.model
    assert m.type == 'EncoderDecoder' and m.test_cfg.mode == 'whole'
    bb = m.backbone
    assert (bb.type, bb.arch, bb.drop_path_rate) == ('WaveViT', ARCH[v]['arch'], ARCH[v]['drop_path_rate'])
    assert tuple(bb.out_indices) == (0, 1, 2, 3) and bb.final_norm
    assert bb.init_cfg == dict(type='Pretrained', checkpoint=cfg[f'wavevit_{v}_in1k'], prefix='backbone.')
    assert cfg[f'wavevit_{v}_in1k'] == f'checkpoints/wavevit-{v}_in1k.pth'  # configs/_base_/wavevit_dense_backbones.py
    dh, ah = m.decode_head, m.auxiliary_head
    assert (dh.type, list(dh.in_channels), list(dh.in_index), dh.channels, dh.num_classes) == \
        ('UPerHead', ARCH[v]['dims'], [0, 1, 2, 3], 512, 150)
    assert dh.loss_decode.loss_weight == 1.0
    assert (ah.type, ah.in_channels, ah.in_index, ah.num_classes, ah.loss_decode.loss_weight) == \
        ('FCNHead', ARCH[v]['dims'][2], 2, 150, 0.4)
    ow = cfg.optim_wrapper
    assert ow.type == 'AmpOptimWrapper' and ow.loss_scale == 512.
    assert ow.optimizer == dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01)
    assert ow.paramwise_cfg == dict(custom_keys={'norm': dict(decay_mult=0.)})
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.begin, warmup.end, warmup.start_factor, warmup.by_epoch) == \
        ('LinearLR', 0, 1500, 1e-6, False)
    assert (poly.type, poly.begin, poly.end, poly.power, poly.eta_min, poly.by_epoch) == \
        ('PolyLR', 1500, 160000, 1.0, 0.0, False)
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.train_dataloader.batch_size == 2 and cfg.auto_scale_lr.base_batch_size == 16
    assert tuple(m.data_preprocessor.size) == (512, 512)
    train_types = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert 'RandomCrop' in train_types
    crop = cfg.train_dataloader.dataset.pipeline[train_types.index('RandomCrop')]
    assert tuple(crop.crop_size) == (512, 512)
    assert cfg.train_dataloader.dataset.type == 'ADE20KDataset'
    # single-scale test: short side 512; multi-scale + flip: SegTTAModel with 6 ratios x 2 flips
    test_pipe = cfg.test_dataloader.dataset.pipeline
    assert [t for t in test_pipe if t['type'] == 'Resize'][0].scale == (2048, 512)
    assert cfg.tta_model.type == 'SegTTAModel'
    tta = cfg.tta_pipeline[1]
    assert tta.type == 'TestTimeAug'
    assert [t.scale for t in tta.transforms[0]] == [(int(2048 * r), int(512 * r))
                                                    for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)]
    assert all(t.keep_ratio for t in tta.transforms[0])
    assert [t.prob for t in tta.transforms[1]] == [0., 1.]
    # the label check right after every LoadAnnotations
    for pipe in (cfg.train_dataloader.dataset.pipeline, test_pipe, cfg.val_dataloader.dataset.pipeline,
                 cfg.test_pipeline, cfg.train_pipeline):
        assert _pipeline_after_load(pipe) == 'CheckSegLabels'
    tta_types = [steps[0]['type'] for steps in tta.transforms]
    assert tta_types[tta_types.index('LoadSegAnnotations') + 1] == 'CheckSegLabels'
    assert cfg.label_check == dict(type='CheckSegLabels', num_classes=150, ignore_index=255)
    assert_checkpoint_hooks(cfg)


def test_build_loss_step_and_predict(variant_cfg, mmseg_scope):
    """The full-size model (SyncBN -> BN as tools/train.py does without CUDA) computes the losses on a
    32x32 batch under the optimizer wrapper tools/train.py makes of the config's fp16 one on this CPU (bfloat16
    autocast) and their gradients, gets the config's optimizer settings (one AdamW step for S) and predicts
    at the input's size."""
    from mmseg.registry import MODELS
    from wavevit_mm.engine.launch import adapt_to_device
    v, cfg = variant_cfg
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.init_cfg = None
    shrink_pipelines(cfg, crop=(32, 32))
    adapt_to_device(cfg)
    assert cfg.optim_wrapper.type == ('AmpOptimWrapper' if torch.cuda.is_available() else 'AutocastOptimWrapper')
    assert 'SyncBN' not in str(cfg.model)
    model = MODELS.build(cfg.model)
    assert type(model.backbone).__name__ == 'WaveViT'
    assert len(model.backbone.block3) == (6 if v == 's' else 12)
    # the official segmentation backbone keeps its BatchNorm affine parameters frozen
    bn = model.backbone.patch_embed1.conv[1]
    assert isinstance(bn, torch.nn.BatchNorm2d) and not bn.weight.requires_grad

    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in optim_wrapper.optimizer.param_groups:
        for p in group['params']:
            decay[names[id(p)]] = group['weight_decay']
    assert decay['backbone.norm4.weight'] == 0 and decay['backbone.block1.0.norm1.bias'] == 0
    assert decay['backbone.block1.0.attn.q.weight'] == 0.01 and decay['decode_head.conv_seg.weight'] == 0.01

    model.train()
    data = model.data_preprocessor(seg_batch([(32, 32), (32, 32)]), True)
    with optim_wrapper.optim_context(model):
        losses = model(**data, mode='loss')
    assert set(losses) >= {'decode.loss_ce', 'aux.loss_ce'}
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    watched = [model.decode_head.conv_seg.weight, model.auxiliary_head.conv_seg.weight,
               model.backbone.block1[0].attn.q.weight, model.backbone.block4[0].mlp.fc2.weight]
    loss.backward()
    assert all(w.grad is not None and torch.count_nonzero(w.grad) > 0 for w in watched)
    assert bn.weight.grad is None  # frozen affine parameters
    if v == 's':  # one AdamW step with the config's settings (the slow part on 2 cores: done for S only)
        before = [w.detach().clone() for w in watched]
        bn_before = bn.weight.detach().clone()
        optim_wrapper.step()
        for w, b in zip(watched, before):
            assert not torch.equal(w, b)
        assert torch.equal(bn.weight, bn_before)

    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(seg_batch([(40, 56)]), False)
        out = model(**data, mode='predict')
    pred = out[0].pred_sem_seg.data
    assert pred.shape == (1, 40, 56)
    assert int(pred.min()) >= 0 and int(pred.max()) < 150
    assert out[0].seg_logits.data.shape == (150, 40, 56)
