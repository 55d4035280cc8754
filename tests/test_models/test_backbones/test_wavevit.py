import math

import pytest
import torch
from wavevit_mm.testing import ReferenceWaveViT, TINY_ARCH, TINY_REF, randomize_norm_stats

from wavevit_mm import WaveViT

SPEC_BACKBONE_PARAMS = {'s': 19_377_904, 'b': 29_337_744, 'l': 53_296_120}


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def expected_shapes(arch, H, W):
    dims = WaveViT.arch_zoo[arch]['embed_dims'] if isinstance(arch, str) else arch['embed_dims']
    return [(dims[i], math.ceil(H / 2**(i + 2)), math.ceil(W / 2**(i + 2))) for i in range(4)]


@pytest.mark.parametrize('arch', ['s', 'b', 'l'])
def test_param_count_and_shapes_224(arch):
    model = WaveViT(arch).eval()
    assert n_params(model) == SPEC_BACKBONE_PARAMS[arch]
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 224, 224))
    assert [tuple(o.shape[1:]) for o in outs] == expected_shapes(arch, 224, 224)
    assert [tuple(o.shape[2:]) for o in outs] == [(56, 56), (28, 28), (14, 14), (7, 7)]


@pytest.mark.parametrize('size', [(256, 309), (32, 32), (33, 47), (97, 65), (50, 200)])
def test_any_input_size(size):
    model = WaveViT('s').eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, *size))
    assert [tuple(o.shape[1:]) for o in outs] == expected_shapes('s', *size)
    assert all(torch.isfinite(o).all() for o in outs)


def test_arch_aliases_and_custom_dict():
    assert WaveViT('small').arch_settings == WaveViT('S').arch_settings
    model = WaveViT(TINY_ARCH)
    assert model.embed_dims == TINY_ARCH['embed_dims']


def _assert_matches_reference(ref_arch, arch, sizes, batch=2):
    """Official-layout weights (official keys, fp16 Haar buffers and classifier keys included) give the
    reference's four maps."""
    ref = randomize_norm_stats(ReferenceWaveViT(ref_arch, num_classes=10)).eval()
    model = WaveViT(arch).eval()
    model.load_state_dict(ref.state_dict())
    for size in sizes:
        x = torch.randn(batch, 3, *size)
        with torch.no_grad():
            expected, _ = ref.stages(x)
            outs = model(x)
        for o, e in zip(outs, expected):
            torch.testing.assert_close(o, e, rtol=1e-4, atol=1e-4)


def test_matches_reference_on_official_sizes():
    """Even sizes need no padding, so none is done: the same maps as the reference."""
    _assert_matches_reference(TINY_REF, TINY_ARCH, [(64, 64), (96, 160), (224, 224)])


def test_matches_reference_wavevit_s_224():
    _assert_matches_reference('s', 's', [(224, 224)], batch=1)


def test_out_indices_and_final_norm():
    model = WaveViT(TINY_ARCH, out_indices=(-1, 1)).eval()
    assert model.out_indices == (1, 3)
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [32, 64]
    assert hasattr(model, 'norm4')
    assert not hasattr(WaveViT(TINY_ARCH, out_indices=(0, 1)), 'norm4')
    cls_backbone = WaveViT(TINY_ARCH, out_indices=(3, ), final_norm=False)
    assert not hasattr(cls_backbone, 'norm4') and hasattr(cls_backbone, 'norm3')


def test_init_weights_official_scheme():
    model = WaveViT(TINY_ARCH)
    model.init_weights()
    lin = model.block3[0].attn.q
    assert lin.bias.abs().sum() == 0 and 0.01 < lin.weight.std() < 0.03
    conv = model.block1[0].attn.filter[0]
    assert conv.bias.abs().sum() == 0
    fan_out = 9 * conv.out_channels
    assert abs(conv.weight.std().item() - math.sqrt(2 / fan_out)) < 0.2 * math.sqrt(2 / fan_out)


@pytest.mark.parametrize('frozen', [0, 1, 2, 4])
def test_frozen_stages(frozen):
    model = WaveViT(TINY_ARCH, frozen_stages=frozen)
    model.train()
    assert not any(p.requires_grad for p in model.patch_embed1.parameters())
    assert not model.patch_embed1.training
    for i in range(1, 5):
        frozen_stage = i <= frozen
        for name in (f'block{i}', f'norm{i}') + ((f'patch_embed{i}', ) if i > 1 else ()):
            module = getattr(model, name)
            assert all(p.requires_grad != frozen_stage for p in module.parameters()), name
            assert module.training != frozen_stage, name


def test_frozen_stage_weights_do_not_change():
    model = WaveViT(TINY_ARCH, frozen_stages=1)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    sum((o * torch.randn_like(o)).sum() for o in model(torch.randn(2, 3, 64, 64))).backward()
    opt.step()
    after = model.state_dict()
    for k in before:  # BN running stats of the frozen stem stay too (eval mode)
        if k.startswith(('patch_embed1.', 'block1.', 'norm1.')):
            assert torch.equal(before[k], after[k]), k
    assert not torch.equal(before['block2.0.attn.q.weight'], after['block2.0.attn.q.weight'])


def test_norm_eval():
    model = WaveViT(TINY_ARCH, norm_eval=True)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    assert model.block1[0].attn.q.training


def test_with_cp_identical_outputs_gradients_and_stats():
    torch.manual_seed(0)
    plain = WaveViT(TINY_ARCH, drop_path_rate=0.)
    plain.init_weights()
    ckpt = WaveViT(TINY_ARCH, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    plain.train()
    ckpt.train()
    x = torch.randn(2, 3, 64, 80)
    outs = []
    for model in (plain, ckpt):
        y = model(x.clone().requires_grad_())
        sum((o * torch.linspace(0, 1, o.numel()).view_as(o)).sum() for o in y).backward()
        outs.append(y)
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    grads = {n: p.grad for n, p in plain.named_parameters()}
    for n, p in ckpt.named_parameters():
        torch.testing.assert_close(p.grad, grads[n], rtol=1e-6, atol=1e-7, msg=n)
    # BN running statistics are updated once, not again when a block is recomputed
    for (n, a), b in zip(plain.named_buffers(), ckpt.buffers()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=n)


def test_bf16_autocast_forward():
    model = WaveViT(TINY_ARCH).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            outs = model(x)
    for o, r in zip(outs, ref):
        assert o.dtype == torch.bfloat16 and torch.isfinite(o).all()
        assert torch.nn.functional.cosine_similarity(o.float().flatten(), r.flatten(), dim=0) > 0.99


def test_float64_forward():
    model = WaveViT(TINY_ARCH).double().eval()
    assert model(torch.randn(1, 3, 40, 40, dtype=torch.float64))[0].dtype == torch.float64


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"unknown Wave-ViT arch 'tiny'.*'b', 'base', 'l', 'large', 's'"):
        WaveViT('tiny')
    bad = dict(TINY_ARCH)
    del bad['depths'], bad['sr_ratios']
    with pytest.raises(ValueError, match=r"missing the keys \['depths', 'sr_ratios'\]"):
        WaveViT(bad)
    with pytest.raises(ValueError, match='not divisible by num_heads'):
        WaveViT(dict(TINY_ARCH, num_heads=[3, 2, 3, 4]))
    with pytest.raises(ValueError, match='one value per stage'):
        WaveViT(dict(TINY_ARCH, depths=[1, 1, 1]))
    with pytest.raises(ValueError, match='out_indices 4 is out of range'):
        WaveViT(TINY_ARCH, out_indices=(0, 4))
    with pytest.raises(ValueError, match='out_indices -5 is out of range'):
        WaveViT(TINY_ARCH, out_indices=-5)
    with pytest.raises(ValueError, match=r'frozen_stages must be an int in \[-1, 4\]'):
        WaveViT(TINY_ARCH, frozen_stages=5)


@pytest.mark.parametrize('kwargs, error, message', [
    # issue 11 item 8: each names the argument, what is wrong and what is allowed
    (dict(out_indices=(0.5, )), TypeError, r'out_indices must hold stage indices \(ints\), got 0.5'),
    (dict(out_indices=(True, )), TypeError, r'out_indices must hold stage indices \(ints\), got True'),
    (dict(out_indices=[]), TypeError, 'out_indices must be an int or a non-empty sequence'),
    (dict(arch=dict(TINY_ARCH, num_heads=[0, 2, 3, 4])), ValueError,
     r"arch\['num_heads'\]\[0\] \(stage 1\) must be an int >= 1, got 0"),
    (dict(arch=dict(TINY_ARCH, depths=[1, -1, 2, 1])), ValueError,
     r"arch\['depths'\]\[1\] \(stage 2\) must be an int >= 0, got -1"),
    (dict(arch=dict(TINY_ARCH, depths=[1, 1.0, 2, 1])), ValueError, r"arch\['depths'\]\[1\] .* got 1.0"),
    (dict(arch=dict(TINY_ARCH, sr_ratios=[4, 2, 0, 1])), ValueError,
     r"arch\['sr_ratios'\]\[2\] \(stage 3\) must be an int >= 1, got 0"),
    (dict(arch=dict(TINY_ARCH, sr_ratios=[0, 2, 1, 1])), ValueError, r"arch\['sr_ratios'\]\[0\]"),
    (dict(arch=dict(TINY_ARCH, mlp_ratios=[8, 8, 0, 4])), ValueError,
     r"arch\['mlp_ratios'\]\[2\] \(stage 3\) must be a positive number"),
    (dict(arch=dict(TINY_ARCH, embed_dims=[16, -32, 48, 64])), ValueError, r"arch\['embed_dims'\]\[1\]"),
    (dict(arch=dict(TINY_ARCH, stem_channels=0)), ValueError, r"arch\['stem_channels'\] must be an int >= 1"),
    (dict(arch=dict(TINY_ARCH, depths=3)), ValueError, r"arch\['depths'\] needs one value per stage \(4\)"),
    (dict(in_channels=0), ValueError, 'in_channels must be an int >= 1, got 0'),
    (dict(drop_path_rate=1.0), ValueError, r'drop_path_rate must be a number in \[0, 1\), got 1.0'),
    (dict(frozen_stages=1.5), ValueError, 'frozen_stages must be an int'),
])
def test_bad_argument_values(kwargs, error, message):
    with pytest.raises(error, match=message):
        WaveViT(**{'arch': TINY_ARCH, **kwargs})


def test_stage_without_blocks():
    model = WaveViT(dict(TINY_ARCH, depths=[1, 0, 2, 1])).eval()
    assert len(model.block2) == 0
    assert [tuple(o.shape[1:]) for o in model(torch.randn(1, 3, 64, 64))] == \
        expected_shapes(dict(TINY_ARCH), 64, 64)


def test_min_input_size_follows_sr_ratios():
    model = WaveViT(dict(TINY_ARCH, sr_ratios=[8, 2, 1, 1])).eval()
    assert model.min_input_size == 57  # stage 1's sub-band grid ceil(57 / 8) = 8 covers one 8 x 8 kv patch
    assert model(torch.randn(1, 3, 57, 64))[0].shape[-2:] == (15, 16)
    with pytest.raises(ValueError, match='at least 57 x 57 pixels.*got 56 x 64'):
        model(torch.randn(1, 3, 56, 64))


def test_empty_batch():
    model = WaveViT(TINY_ARCH).eval()
    outs = model(torch.randn(0, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(0, c, h, w) for c, h, w in expected_shapes(TINY_ARCH, 64, 96)]
    model.train()
    with pytest.raises(ValueError, match='batch of 0 images in training mode.*NaN running statistics'):
        model(torch.randn(0, 3, 64, 64))
    assert all(torch.isfinite(b).all() for b in model.buffers())
    model = WaveViT(TINY_ARCH, norm_eval=True).train()  # no BatchNorm in training mode: empty maps again
    assert model(torch.randn(0, 3, 64, 64))[3].shape == (0, 64, 2, 2)


def test_later_stages_skipped_when_not_output():
    model = WaveViT(TINY_ARCH, out_indices=(1, )).eval()
    called = []
    model.block3.register_forward_pre_hook(lambda *args: called.append(3))
    assert model(torch.randn(1, 3, 64, 64))[0].shape == (1, 32, 8, 8) and not called


def test_mlp_hooks_fire_and_inplace_gelu():
    """Plain modules all the way: hooks on ``mlp.dwconv`` / ``mlp.act`` fire in every mode; the GELU works in
    place only when no gradient is recorded (its input is the convolution's fresh output)."""
    model = WaveViT(TINY_ARCH)
    mlp = model.block1[0].mlp
    seen = []
    mlp.dwconv.register_forward_hook(lambda m, i, o: seen.append(('dwconv', o.clone())))
    mlp.act.register_forward_hook(lambda m, i, o: seen.append(('act', i[0] is o, o)))
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        model(x)
    (_, conv_out), (_, inplace, act_out) = seen
    assert inplace
    torch.testing.assert_close(act_out, torch.nn.functional.gelu(conv_out), rtol=0, atol=0)
    seen.clear()
    model.train()
    model(x)
    assert [s[0] for s in seen] == ['dwconv', 'act'] and not seen[1][1]  # out of place under autograd


def test_bad_inputs():
    model = WaveViT(TINY_ARCH)
    with pytest.raises(ValueError, match='B x 3 x H x W'):
        model(torch.randn(3, 64, 64))
    with pytest.raises(ValueError, match='B x 3 x H x W'):
        model(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match='at least 32 x 32 pixels.*got 31 x 64'):
        model(torch.randn(1, 3, 31, 64))


def test_norm_cfg_syncbn_and_revert():
    from mmengine.model import revert_sync_batchnorm
    model = WaveViT(TINY_ARCH, norm_cfg=dict(type='SyncBN'))
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns and all(isinstance(m, torch.nn.SyncBatchNorm) for m in bns)
    reverted = revert_sync_batchnorm(model).eval()  # what a CPU run without a process group does
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in reverted.modules())
    assert reverted(torch.randn(1, 3, 64, 64))[0].shape == (1, 16, 16, 16)


@pytest.mark.parametrize('batch', [1, 2])
def test_convolutions_run_channels_last(batch):
    """Token maps are channels-last views for every batch size, so convolutions keep that layout (no copies to
    and from NCHW); a batch of one used to get an odd batch stride, which made every convolution copy."""
    model = WaveViT(TINY_ARCH).eval()
    layouts = []
    for conv in (model.block1[0].mlp.dwconv.dwconv, model.block1[0].attn.reduce[0], model.patch_embed2.proj):
        conv.register_forward_hook(lambda m, i, o: layouts.append(
            (i[0].stride(1) == 1, o.stride(1) == 1)))  # channels are the innermost dimension
    with torch.no_grad():
        outs = model(torch.randn(batch, 3, 64, 64))
    assert layouts and all(a and b for a, b in layouts), layouts
    # the output maps too: the necks' convolutions (FPN, UPerHead) run channels-last on them
    assert all(torch.nn.functional.conv2d(o, torch.randn(4, o.shape[1], 1, 1)).stride(1) == 1 for o in outs)
