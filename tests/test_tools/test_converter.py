import argparse
import os
import re
import subprocess
import sys

import pytest
import torch
from wavevit_mm import WaveViT
from wavevit_mm.testing import TINY_ARCH, TINY_REF, ReferenceWaveViT, build_classifier, randomize_norm_stats
from wavevit_mm.testing.faults import CodePayload
from wavevit_mm.utils.paths import PROJECT_ROOT as REPO_ROOT
from wavevit_mm.utils import UnsafeCheckpointError, load_checkpoint_file

CONVERTER = os.path.join(REPO_ROOT, 'tools', 'model_converters', 'wavevit2mm.py')


def convert(src, dst):
    return subprocess.run([sys.executable, CONVERTER, str(src), str(dst)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope='module')
def official(tmp_path_factory):
    """An official-layout training checkpoint: 'model' with fp16 Haar buffers, an argparse 'args', etc."""
    torch.manual_seed(0)
    ref = randomize_norm_stats(ReferenceWaveViT(TINY_REF, num_classes=10, token_label=True)).eval()
    assert ref.block1[0].attn.dwt.w_ll.dtype == torch.float16
    path = tmp_path_factory.mktemp('official') / 'wavevit_tiny.pth.tar'
    torch.save({'model': {'module.' + k: v for k, v in ref.state_dict().items()},
                'optimizer': {'state': {}, 'param_groups': [{'lr': 1e-3}]}, 'epoch': 309,
                'args': argparse.Namespace(model='wavevit_s', lr=1e-3, token_label=True)}, path)
    return ref, path


def test_round_trip_strict_and_identical_logits(official, tmp_path):
    ref, src = official
    dst = tmp_path / 'checkpoints' / 'converted.pth'  # the output folder is created
    result = convert(src, dst)
    assert result.returncode == 0, result.stderr
    assert 'token-labeling aux head: True' in result.stdout
    ckpt = torch.load(dst, weights_only=True)
    model = build_classifier(TINY_ARCH, True, num_classes=10, in_channels=64, num_heads=4).eval()
    model.load_state_dict(ckpt['state_dict'], strict=True)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(model(x, mode='tensor'), ref(x), rtol=1e-4, atol=1e-4)

    # the same weights loaded directly (official keys, no conversion) give the same logits
    direct = build_classifier(TINY_ARCH, True, num_classes=10, in_channels=64, num_heads=4).eval()
    direct.backbone.load_pretrained(str(src))
    direct.head.load_state_dict({k[len('head.'):]: v for k, v in ckpt['state_dict'].items()
                                 if k.startswith('head.')})
    with torch.no_grad():
        torch.testing.assert_close(direct(x, mode='tensor'), model(x, mode='tensor'), rtol=0, atol=0)


@pytest.mark.parametrize('use_converted', [True, False])
def test_dense_backbone_from_checkpoint(official, tmp_path, use_converted):
    """init_cfg Pretrained: the converted file's backbone. part, or the official file as it is."""
    ref, src = official
    if use_converted:
        path, prefix = tmp_path / 'converted.pth', 'backbone.'
        assert convert(src, path).returncode == 0
    else:
        path, prefix = src, ''
    model = WaveViT(TINY_ARCH, init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix=prefix))
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected, _ = ref.stages(x)
        for o, e in zip(model(x), expected):  # norm4 included, taken from the classifier's head.norm
            torch.testing.assert_close(o, e, rtol=1e-4, atol=1e-4)


def test_already_converted_is_recognised(official, tmp_path):
    _, src = official
    dst = tmp_path / 'converted.pth'
    assert convert(src, dst).returncode == 0
    again = convert(dst, tmp_path / 'twice.pth')
    assert again.returncode == 1 and 'already an mmpretrain Wave-ViT checkpoint' in again.stderr
    assert not (tmp_path / 'twice.pth').exists()


def test_bare_and_state_dict_layouts(official, tmp_path):
    ref, _ = official
    for i, wrap in enumerate((lambda sd: sd, lambda sd: {'state_dict': sd})):
        src = tmp_path / f'layout{i}.pth'
        torch.save(wrap(ref.state_dict()), src)
        result = convert(src, tmp_path / f'out{i}.pth')
        assert result.returncode == 0, result.stderr


def test_unsafe_file_is_refused_and_never_executed(tmp_path, monkeypatch):
    marker = tmp_path / 'pwned'
    monkeypatch.setenv('EVIL_MARKER', str(marker))
    src = tmp_path / 'evil.pth'
    torch.save({'model': {'x': torch.zeros(1)}, 'payload': CodePayload()}, src)
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError, match='refusing to load'):
        load_checkpoint_file(str(src))
    result = convert(src, tmp_path / 'out.pth')
    assert result.returncode == 1 and 'refusing to load' in result.stderr
    assert not marker.exists()


def test_wrong_variant_and_unfit_checkpoints(tmp_path):
    other = ReferenceWaveViT(dict(TINY_REF, dims=[32, 64, 96, 128], heads=[2, 4, 6, 8]), num_classes=10)
    path = tmp_path / 'other.pth'
    torch.save({'model': other.state_dict()}, path)
    model = WaveViT(TINY_ARCH)
    with pytest.raises(RuntimeError, match='another variant.*shape mismatches: patch_embed1'):
        model.load_pretrained(str(path))
    torch.save({'state_dict': {'backbone.block1.0.norm1.weight': torch.ones(16)}}, path)
    with pytest.raises(RuntimeError, match=r'provides only 1 of the \d+ tensors.*Missing: \['):
        model.load_pretrained(str(path))
    with pytest.raises(FileNotFoundError, match='checkpoint file not found'):
        model.load_pretrained(str(tmp_path / 'nope.pth'))


def test_missing_keys_are_reported(official, tmp_path, monkeypatch):
    ref, _ = official
    sd = ref.state_dict()
    del sd['block2.0.mlp.fc1.weight']
    sd['block9.extra'] = torch.zeros(1)
    path = tmp_path / 'partial.pth'
    torch.save(sd, path)
    messages = []
    monkeypatch.setattr('wavevit_mm.models.backbones.wavevit.print_log', lambda msg, **kw: messages.append(msg))
    WaveViT(TINY_ARCH).load_pretrained(str(path), prefix='')
    assert len(messages) == 1
    assert "missing keys ['block2.0.mlp.fc1.weight']" in messages[0]
    assert "unexpected keys ['block9.extra']" in messages[0]


def _converter_main():
    import runpy
    return runpy.run_path(CONVERTER)['main']


def test_payload_never_runs_with_torch_force_no_weights_only_load(tmp_path, monkeypatch, capsys):
    marker = tmp_path / 'pwned'
    monkeypatch.delenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', raising=False)
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    monkeypatch.setenv('EVIL_MARKER', str(marker))
    src = tmp_path / 'evil.pth'
    torch.save({'model': {'x': torch.zeros(1)}, 'payload': CodePayload()}, src)
    assert _converter_main()([str(src), str(tmp_path / 'out.pth')]) == 1
    assert 'refusing to load' in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / 'out.pth').exists()


@pytest.mark.parametrize('damage, message', [
    ('missing', r'lacks 1 tensors of a Wave-ViT with its settings: backbone.block3.1.mlp.fc1.weight'),
    ('nan', r'1 tensors hold NaN or infinite values \(a diverged run or a damaged file\): block1.0.attn.q.weight'),
    ('no head', r'lacks head.weight, which every Wave-ViT checkpoint holds'),
])
def test_incomplete_or_damaged_checkpoints_are_not_converted(official, tmp_path, capsys, damage, message):
    ref, _ = official
    sd = {k: v.clone() for k, v in ref.state_dict().items()}  # not the shared model's own tensors
    if damage == 'missing':
        del sd['block3.1.mlp.fc1.weight']
    elif damage == 'nan':
        sd['block1.0.attn.q.weight'][0, 0] = float('inf')
    else:
        del sd['head.weight'], sd['head.bias']
    src, dst = tmp_path / 'damaged.pth', tmp_path / 'out.pth'
    torch.save({'model': sd}, src)
    assert _converter_main()([str(src), str(dst)]) == 1
    err = capsys.readouterr().err
    assert f'error: not converted, the checkpoint is incomplete or damaged:\n  {src}' in err
    assert re.search(message, err), err
    assert not dst.exists()


def test_settings_are_read_from_the_shapes(official):
    """The key check builds the classifier the file is for: the tiny arch (a custom one) is recognised, heads
    aside (they change no shape)."""
    import runpy
    ref, _ = official
    converter = runpy.run_path(CONVERTER)
    settings = converter['infer_settings'](ref.state_dict())
    assert settings['arch'] == dict(TINY_ARCH, num_heads=[1] * 4) and settings['num_classes'] == 10
    assert settings['aux_head'] and converter['arch_name'](settings['arch']) == 'custom'


def test_mmengine2safe_rewrites_only_with_the_trust_flag(tmp_path, capsys):
    import runpy

    import numpy as np
    from mmengine.logging import HistoryBuffer
    rewrite = runpy.run_path(os.path.join(REPO_ROOT, 'tools', 'model_converters', 'mmengine2safe.py'))['main']
    src, dst = tmp_path / 'epoch_3.pth', tmp_path / 'safe.pth'
    torch.save({'meta': {'epoch': 3, 'iter': 12, 'seed': np.int64(5)}, 'state_dict': {'w': torch.ones(2)},
                'message_hub': {'log_scalars': {'train/loss': HistoryBuffer([1., 2.], [1, 1])}},
                'optimizer': {'state': {}, 'param_groups': []}}, src)
    assert rewrite([str(src), str(dst)]) == 1 and not dst.exists()
    assert 'pass --trust-source if (and only if) you trust where it comes from' in capsys.readouterr().err
    assert rewrite([str(src), str(dst), '--trust-source']) == 0
    safe = load_checkpoint_file(str(dst))
    assert safe['meta']['seed'] == 5 and safe['meta']['epoch'] == 3
    from wavevit_mm.engine.hooks.safe_checkpoint_hook import from_safe
    assert from_safe(safe['message_hub'])['log_scalars']['train/loss'].mean() == 1.5
    assert rewrite([str(dst), str(tmp_path / 'again.pth')]) == 1  # already safe
    assert 'already reads weights-only; nothing to rewrite' in capsys.readouterr().err
    # objects with no safe form: nothing is written
    torch.save({'state_dict': {'w': torch.ones(1)}, 'odd': argparse.ArgumentParser}, tmp_path / 'odd.pth')
    assert rewrite([str(tmp_path / 'odd.pth'), str(tmp_path / 'odd_safe.pth'), '--trust-source']) == 1
    assert 'have no safe form, so nothing was written' in capsys.readouterr().err
    assert not (tmp_path / 'odd_safe.pth').exists() and os.listdir(tmp_path).count('odd_safe.pth') == 0


def test_pretrained_with_unusable_values_is_refused(official, tmp_path):
    """init_cfg Pretrained: NaN weights or integer tensors would otherwise load without a word."""
    ref, _ = official
    sd = dict(ref.state_dict())
    sd['block1.0.mlp.fc1.bias'] = torch.full_like(sd['block1.0.mlp.fc1.bias'], float('nan'))
    sd['norm1.weight'] = sd['norm1.weight'].long()
    path = tmp_path / 'broken.pth'
    torch.save(sd, path)
    with pytest.raises(ValueError, match=r'broken.pth does not hold usable Wave-ViT weights: 1 tensors have the wrong '
                                         r'kind of dtype: norm1.weight: torch.int64 .*; 1 tensors hold NaN or '
                                         r'infinite values .*block1.0.mlp.fc1.bias \(128 of 128 values\)'):
        WaveViT(TINY_ARCH).load_pretrained(str(path), prefix='')
