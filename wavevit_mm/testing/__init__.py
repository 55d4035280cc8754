"""Helpers for testing and benchmarking wavevit_mm (as ``mmengine.testing`` / ``mmdet.testing`` are for theirs).

- :mod:`.reference`: an independent, literal coding of Wave-ViT in the official checkpoint layout: the oracle of
  the fidelity tests and the plain baseline of ``benchmarks/bench_backbone.py``;
- :data:`TINY_ARCH` / :data:`TINY_REF`: a small arch for fast tests, in both notations; :data:`TINY_CLS_CONFIG`:
  a stand-alone config of a classifier with it;
- :func:`randomize_norm_stats`: non-trivial norm statistics for eval-mode comparisons; :func:`build_classifier`:
  an mmpretrain classifier in the official layout; :func:`assert_checkpoint_hooks`: what every shipped config lists;
- :mod:`.det_data`, :mod:`.seg_data`, :mod:`.launch`: tiny COCO / ADE20K / ImageNet-folder data sets made from
  images that ship with scikit-image and scikit-learn, and the launch-test helpers (with ``configs/tiny_cls.py``);
  :mod:`.hooks`: hooks that config imports; :mod:`.faults`: a code payload, a local HTTP server, kill-during-save
  hooks and the fork server of the kill / resume tests; :mod:`.metafiles`: the published numbers as the tests read
  them; :mod:`.figures`: checks of the PNGs the tools write.

Only this module is imported eagerly; the data helpers need the test requirements (scikit-image, mmdet, mmseg).
"""
import torch
from torch import nn

from .reference import ReferenceWaveViT

#: a small arch for fast tests: every code path of the real ones (wavelet stages with sr 4 and 2, plain
#: attention stages) at a fraction of the cost
TINY_ARCH = dict(stem_channels=8, embed_dims=[16, 32, 48, 64], num_heads=[1, 2, 3, 4], depths=[1, 1, 2, 1],
                 mlp_ratios=[8, 8, 4, 4], sr_ratios=[4, 2, 1, 1])
#: the same arch in the reference's notation
TINY_REF = dict(stem=8, dims=[16, 32, 48, 64], heads=[1, 2, 3, 4], depths=[1, 1, 2, 1])

#: the text of a stand-alone mmpretrain config of a TINY_ARCH classifier in the ImageNet configs' layout (the
#: head applies the final norm; token-labeling aux head; 10 classes), for the analysis / visualisation tools
TINY_CLS_CONFIG = f"""
default_scope = 'mmpretrain'
custom_imports = dict(imports=['wavevit_mm'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    backbone=dict(type='WaveViT', arch={TINY_ARCH!r}, out_indices=(3, ), final_norm=False),
    head=dict(type='WaveViTClsHead', num_classes=10, in_channels=64, num_heads=4, aux_head=True),
    data_preprocessor=dict(num_classes=10, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           to_rgb=True))
"""


def randomize_norm_stats(model: nn.Module, seed: int = 1) -> nn.Module:
    """Give BatchNorm layers non-trivial running statistics and affine parameters, and LayerNorms non-trivial
    affine parameters (so eval-mode comparisons exercise them); returns the model."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            elif isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.normalized_shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.normalized_shape, generator=g) * 0.1)
    return model


def build_classifier(arch, aux_head: bool, num_classes: int = 1000, in_channels: int = None,
                     num_heads: int = None) -> nn.Module:
    """An mmpretrain ``ImageClassifier`` with a Wave-ViT backbone and ``WaveViTClsHead`` (the official layout).

    ``arch`` is ``'s'``/``'b'``/``'l'`` or a custom arch dict; the head's ``in_channels`` and ``num_heads`` default
    to the last stage's.
    """
    from mmpretrain.registry import MODELS

    import wavevit_mm  # noqa: F401  (registers the backbone and the head)
    from wavevit_mm.models.backbones.wavevit import WaveViT
    settings = WaveViT.arch_zoo[arch] if isinstance(arch, str) else arch
    return MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='WaveViT', arch=arch, out_indices=(3, ), final_norm=False),
        head=dict(type='WaveViTClsHead', num_classes=num_classes,
                  in_channels=in_channels or settings['embed_dims'][-1],
                  num_heads=num_heads or settings['num_heads'][-1], aux_head=aux_head)))


__all__ = ['ReferenceWaveViT', 'TINY_ARCH', 'TINY_CLS_CONFIG', 'TINY_REF', 'assert_checkpoint_hooks',
           'build_classifier', 'randomize_norm_stats']


def assert_checkpoint_hooks(cfg) -> None:
    """A shipped config saves kill-safely and lists every checkpoint hook (docs/checkpoints.md), so that also
    the libraries' own tools (``mim train mmdet``, ...) write safe checkpoints and resume exactly."""
    from wavevit_mm.engine.resume import CHECKPOINT_HOOK, SAFETY_HOOKS
    assert cfg.default_hooks.checkpoint.type == CHECKPOINT_HOOK, cfg.default_hooks.checkpoint
    assert [h['type'] for h in cfg.custom_hooks] == list(SAFETY_HOOKS), cfg.custom_hooks
