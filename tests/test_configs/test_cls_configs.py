"""The ImageNet classification configs: they build, carry the official recipe, and their models' tensor output is
the Wave-ViT head's computation on the backbone's last stage."""
import glob
import os.path as osp

import pytest
import torch
from wavevit_mm.utils.paths import PROJECT_ROOT as REPO_ROOT

import wavevit_mm  # noqa: F401
from wavevit_mm.testing import assert_checkpoint_hooks

CFG_DIR = osp.join(REPO_ROOT, 'configs', 'classification')
IN1K = {  # config -> (arch, last-stage channels, heads, drop path, token labeling, input size, grad clip)
    'wavevit-s_8xb128_in1k.py': ('s', 448, 14, 0.1, False, 224, False),
    'wavevit-b_8xb128_in1k.py': ('b', 512, 16, 0.1, False, 224, False),
    'wavevit-l_8xb128_in1k.py': ('l', 512, 16, 0.3, False, 224, True),
    'wavevit-s_8xb128_in1k-tokenlabel.py': ('s', 448, 14, 0.1, True, 224, False),
    'wavevit-b_8xb128_in1k-tokenlabel.py': ('b', 512, 16, 0.1, True, 224, False),
    'wavevit-l_8xb128_in1k-tokenlabel.py': ('l', 512, 16, 0.3, True, 224, True),
    'wavevit-s_8xb32_in1k-384px-tokenlabel.py': ('s', 448, 14, 0.1, True, 384, False),
    'wavevit-b_8xb32_in1k-384px-tokenlabel.py': ('b', 512, 16, 0.1, True, 384, False),
    'wavevit-l_8xb32_in1k-384px-tokenlabel.py': ('l', 512, 16, 0.3, True, 384, True),
}


pytestmark = pytest.mark.usefixtures('one_torch_thread', 'mmpretrain_scope')


def load(name):
    from mmengine.config import Config
    return Config.fromfile(osp.join(CFG_DIR, name))


def test_every_config_is_listed():
    found = {osp.basename(p) for p in glob.glob(osp.join(CFG_DIR, '*.py'))}
    assert found == set(IN1K) | {'wavevit-tiny_digits.py'}


def head_reference(head, last_map):
    """WaveViTClsHead semantics, written out: class token = mean of the last-stage tokens, one class-attention
    block, norm, fc; with the aux head + aux_weight * max over tokens of aux_fc(norm(tokens))."""
    tokens = last_map.flatten(2).transpose(1, 2)
    x = torch.cat([tokens.mean(1, keepdim=True), tokens], 1)
    blk = head.cls_block
    y = blk.norm1(x)
    B, N, C = y.shape
    h = blk.attn.num_heads
    q = blk.attn.q(y[:, :1]).reshape(B, 1, h, C // h).transpose(1, 2)
    k, v = blk.attn.kv(y).reshape(B, N, 2, h, C // h).permute(2, 0, 3, 1, 4)
    attn = (q @ k.transpose(-2, -1) * (C // h) ** -0.5).softmax(-1)
    cls = x[:, :1] + blk.attn.proj((attn @ v).transpose(1, 2).reshape(B, 1, C))
    cls = cls + blk.mlp.fc2(torch.nn.functional.gelu(blk.mlp.fc1(blk.norm2(cls))))
    out = head.fc(head.norm(cls[:, 0]))
    if head.aux_fc is not None:
        out = out + head.aux_weight * head.aux_fc(head.norm(tokens)).max(1)[0]
    return out


@pytest.mark.parametrize('name', sorted(IN1K))
def test_config_builds_and_tensor_mode_is_the_head(name):
    from mmpretrain.registry import MODELS
    arch, channels, heads, dpr, token_label, size, clip = IN1K[name]
    cfg = load(name)
    assert cfg.custom_imports == dict(imports=['wavevit_mm'], allow_failed_imports=False)
    assert_checkpoint_hooks(cfg)
    bb, head = cfg.model.backbone, cfg.model.head
    assert (bb.type, bb.arch, tuple(bb.out_indices), bb.final_norm, bb.drop_path_rate) == \
        ('WaveViT', arch, (3, ), False, dpr)
    assert (head.type, head.num_classes, head.in_channels, head.num_heads) == ('WaveViTClsHead', 1000, channels,
                                                                               heads)
    assert cfg.model.type == ('TokenLabelImageClassifier' if token_label else 'ImageClassifier')
    assert bool(head.get('aux_head', False)) == token_label
    assert (cfg.optim_wrapper.get('clip_grad') is not None) == clip
    if clip:
        assert cfg.optim_wrapper.clip_grad.max_norm == 1.0
    # crop ratio 0.96, bicubic
    resize, crop = cfg.test_dataloader.dataset.pipeline[1:3]
    assert (resize.type, resize.scale, resize.interpolation, crop.crop_size) == \
        ('ResizeEdge', int(size / 0.96), 'bicubic', size)
    train_crop = [t for t in cfg.train_dataloader.dataset.pipeline if 'RandomResizedCrop' in t.type][0]
    assert (train_crop.scale, train_crop.interpolation) == (size, 'bicubic')

    model = MODELS.build(cfg.model).eval()
    assert type(model).__name__ == cfg.model.type
    x = torch.randn(2, 3, 32, 32)  # a small input keeps even L cheap; the head does not depend on the size
    with torch.no_grad():
        out = model(x, mode='tensor')
        feats = model.backbone(x)
        assert len(feats) == 1 and feats[0].shape == (2, channels, 1, 1)
        torch.testing.assert_close(out, head_reference(model.head, feats[0]), rtol=1e-4, atol=1e-5)
    assert out.shape == (2, 1000)


def test_official_recipe_values():
    cfg = load('wavevit-s_8xb128_in1k.py')
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.train_dataloader.batch_size == 128 and cfg.auto_scale_lr.base_batch_size == 1024
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay, opt.eps) == ('AdamW', 1e-3, 0.05, 1e-8)
    pw = cfg.optim_wrapper.paramwise_cfg
    assert pw.norm_decay_mult == 0 and pw.bias_decay_mult == 0 and pw.flat_decay_mult == 0
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.end, warmup.start_factor * opt.lr) == ('LinearLR', 5, pytest.approx(1e-6))
    assert (cosine.type, cosine.begin, cosine.end, cosine.eta_min) == ('CosineAnnealingLR', 5, 310, 1e-5)
    assert cfg.train_cfg.max_epochs == 310
    types = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    ra, re = types['RandAugment'], types['RandomErasing']
    assert (ra.policies, ra.magnitude_level, ra.magnitude_std, ra.num_policies) == ('timm_increasing', 9, 0.5, 2)
    assert re.erase_prob == 0.25 and types['RandomFlip'].prob == 0.5
    assert cfg.model.head.loss == dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')
    tl = load('wavevit-s_8xb128_in1k-tokenlabel.py')
    assert tl.model.token_label_loss == dict(type='TokenLabelCrossEntropy', cls_weight=1.0, dense_weight=0.5)
    assert tl.model.mix_token and tl.model.mix_beta == 1.0 and tl.model.head.aux_weight == 0.5
    assert [t.type for t in tl.train_dataloader.dataset.pipeline][:4] == [
        'LoadImageFromFile', 'LoadTokenLabel', 'TokenLabelRandomResizedCrop', 'TokenLabelRandomFlip']
    ft = load('wavevit-s_8xb32_in1k-384px-tokenlabel.py')
    assert ft.model.init_cfg == dict(type='Pretrained', checkpoint='checkpoints/wavevit-s_in1k.pth')
    assert ft.optim_wrapper.optimizer.lr == 5e-6 and ft.train_cfg.max_epochs == 30


def test_no_weight_decay_on_norms_and_biases():
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.registry import MODELS
    cfg = load('wavevit-s_8xb128_in1k.py')
    model_cfg = cfg.model
    model_cfg.backbone.arch = dict(stem_channels=8, embed_dims=[16, 32, 48, 64], num_heads=[1, 2, 3, 4],
                                   depths=[1, 1, 1, 1], mlp_ratios=[4, 4, 4, 4], sr_ratios=[4, 2, 1, 1])
    model_cfg.head.update(in_channels=64, num_heads=4)
    model = MODELS.build(model_cfg)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    checked = 0
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            name = names[id(p)]
            expect = 0. if (p.ndim == 1 or name.endswith('.bias')) else 0.05
            assert group['weight_decay'] == pytest.approx(expect), name
            checked += 1
    assert checked == len(names)
