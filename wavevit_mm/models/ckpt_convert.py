"""The one mapping between official Wave-ViT checkpoints and wavevit_mm models.

The backbone keeps the official key names (``patch_embed{i}``, ``block{i}.{j}``, ``norm{i}``), so only the
classification part is renamed. Everything here is a pure function of a state dict; it is used by
``tools/model_converters/wavevit2mm.py`` (official -> mmpretrain classifier) and by
``WaveViT.init_weights`` / the backbone's load-state-dict hook (official or converted -> backbone).
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor

#: the classifier head's final norm is the official ``norm4``, which the dense backbone applies itself
HEAD_NORM_PREFIX, NORM4_PREFIX = 'head.norm.', 'norm4.'

#: official key prefix -> key prefix in the mmpretrain ``ImageClassifier`` (``WaveViTClsHead``)
HEAD_KEY_MAP: Tuple[Tuple[str, str], ...] = (
    ('post_network.0.', 'head.cls_block.'),
    (NORM4_PREFIX, HEAD_NORM_PREFIX),
    ('aux_head.', 'head.aux_fc.'),
    ('head.', 'head.fc.'),
)

#: float16 Haar filters of the official release: fixed constants, not learned (our transform needs none)
HAAR_BUFFER_RE = re.compile(r'(^|\.)attn\.(dwt\.w_(ll|lh|hl|hh)|idwt\.filters)$')

#: keys of the official classifier that the dense backbone has no use for
CLS_ONLY_PREFIXES = ('post_network.', 'head.', 'aux_head.')

#: top-level names of backbone keys
BACKBONE_KEY_RE = re.compile(r'^(patch_embed[1-4]|block[1-4]|norm[1-4])\.')


def unwrap_state_dict(checkpoint: Mapping) -> Dict[str, Tensor]:
    """Find the state dict in a checkpoint and strip DataParallel's ``module.`` prefix.

    Accepts a bare state dict, ``{'state_dict': ...}`` (mmengine), ``{'model': ...}`` (timm / DeiT-style
    training checkpoints, which also carry ``optimizer``, ``args`` and so on) and ``{'module': ...}``.
    """
    state_dict = checkpoint
    for key in ('state_dict', 'model', 'module'):
        if isinstance(state_dict, Mapping) and isinstance(state_dict.get(key), Mapping):
            state_dict = state_dict[key]
            break
    if not isinstance(state_dict, Mapping) or not all(isinstance(k, str) for k in state_dict):
        raise ValueError('no state dict found in the checkpoint: expected a dict of tensors, or one under '
                         "'state_dict', 'model' or 'module'")
    out = OrderedDict()
    for key, value in state_dict.items():
        out[key[len('module.'):] if key.startswith('module.') else key] = value
    return out


def is_official(state_dict: Mapping[str, Tensor]) -> bool:
    """True for the official layout (backbone keys at top level), False for mmpretrain's."""
    return any(BACKBONE_KEY_RE.match(k) for k in state_dict)


def is_converted(state_dict: Mapping[str, Tensor]) -> bool:
    """True for a checkpoint already in the mmpretrain classifier layout (``backbone.*``, ``head.*``)."""
    return any(k.startswith('backbone.') for k in state_dict) and not is_official(state_dict)


def drop_haar_buffers(state_dict: Mapping[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Remove the official float16 Haar filter buffers (constants our transform does not store)."""
    return OrderedDict((k, v) for k, v in state_dict.items() if not HAAR_BUFFER_RE.search(k))


def official_to_mmpretrain(state_dict: Mapping[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Official Wave-ViT classifier state dict -> mmpretrain ``ImageClassifier`` state dict.

    Backbone keys get the ``backbone.`` prefix; ``post_network.0`` / ``norm4`` / ``head`` / ``aux_head``
    become the head's ``cls_block`` / ``norm`` / ``fc`` / ``aux_fc``. The Haar buffers are dropped.
    Raises ``KeyError`` naming any key that fits neither part.
    """
    out = OrderedDict()
    unknown = []
    for key, value in drop_haar_buffers(state_dict).items():
        for old, new in HEAD_KEY_MAP:
            if key.startswith(old):
                out[new + key[len(old):]] = value
                break
        else:
            if BACKBONE_KEY_RE.match(key):
                out['backbone.' + key] = value
            else:
                unknown.append(key)
    if unknown:
        raise KeyError(f'keys that are not part of an official Wave-ViT checkpoint: {unknown}')
    return out


def to_backbone_state_dict(state_dict: Mapping[str, Tensor],
                           prefix: str = 'backbone.') -> 'OrderedDict[str, Tensor]':
    """State dict for the dense ``WaveViT`` backbone, from an official or a converted checkpoint.

    - official layout: Haar buffers and classification-only keys are dropped, the rest is kept as is
      (``norm4`` included: the official det/seg code uses the classifier's ``norm4``);
    - mmpretrain layout: keys under ``prefix`` are taken with the prefix stripped; ``head.norm`` (the
      classifier's final norm, the official ``norm4``) becomes ``norm4`` when the checkpoint has none.
    """
    if is_official(state_dict):
        return OrderedDict((k, v) for k, v in drop_haar_buffers(state_dict).items()
                           if not k.startswith(CLS_ONLY_PREFIXES))
    out = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items() if k.startswith(prefix))
    if not any(k.startswith(NORM4_PREFIX) for k in out):
        out.update((NORM4_PREFIX + k[len(HEAD_NORM_PREFIX):], v) for k, v in state_dict.items()
                   if k.startswith(HEAD_NORM_PREFIX))
    return out


def format_examples(items: List[str], n: int = 5) -> str:
    """The first ``n`` items, comma-separated, and how many more there are."""
    return ', '.join(items[:n]) + (f' (+{len(items) - n} more)' if len(items) > n else '')


def _dtype_kind(t: Tensor) -> str:
    return ('bool' if t.dtype == torch.bool else 'complex' if t.is_complex() else
            'floating-point' if t.is_floating_point() else 'integer')


def unusable_values(state_dict: Mapping, expected: Optional[Mapping[str, Tensor]] = None) -> List[str]:
    """Describe what in ``state_dict`` is not usable as weights, one line per problem (empty: all usable).

    Values that are not tensors; floating-point tensors with NaN or infinite values; and, given the model's
    tensors ``expected``, tensors whose dtype is of another kind (integer for float, ...; float16 for float32 is
    fine). With ``expected``, only the tensors the model would take (names in ``expected``) are checked for
    values and dtypes.
    """
    def taken(k):
        return expected is None or k in expected

    not_tensors = [f'{k} ({type(v).__name__})' for k, v in state_dict.items() if not isinstance(v, Tensor)]
    wrong_kind = [] if expected is None else [
        f'{k}: {v.dtype} for a {_dtype_kind(expected[k])} {expected[k].dtype} model tensor'
        for k, v in state_dict.items() if k in expected and isinstance(v, Tensor)
        and _dtype_kind(v) != _dtype_kind(expected[k])]
    non_finite = [f'{k} ({int((~torch.isfinite(v)).sum())} of {v.numel()} values)' for k, v in state_dict.items()
                  if taken(k) and isinstance(v, Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    lines = []
    if not_tensors:
        lines.append(f'{len(not_tensors)} values are not tensors: {format_examples(not_tensors)}')
    if wrong_kind:
        lines.append(f'{len(wrong_kind)} tensors have the wrong kind of dtype: {format_examples(wrong_kind, 3)}')
    if non_finite:
        lines.append(f'{len(non_finite)} tensors hold NaN or infinite values (a diverged run or a damaged file): '
                     f'{format_examples(non_finite, 3)}')
    return lines
