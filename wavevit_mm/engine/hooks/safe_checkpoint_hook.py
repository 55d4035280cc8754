"""Make mmengine Runner checkpoints readable with ``torch.load(weights_only=True)``.

A Runner checkpoint stores the message hub's ``HistoryBuffer`` objects (numpy arrays inside) and may hold
numpy scalars in ``meta``; unpickling those needs globals that torch's safe loader rightly refuses. This hook
rewrites them, just before saving, into tensors and plain Python values, and turns the buffers back into
``HistoryBuffer`` objects right after loading, so resume, ``tools/test.py`` and ``mim test`` read our
checkpoints weights-only. Nothing here loads with ``weights_only=False``; a checkpoint written without the hook is
refused by the loader, and ``tools/model_converters/mmengine2safe.py --trust-source`` rewrites a trusted one with
:func:`to_safe` (see docs/checkpoints.md).
"""
from typing import Any

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.registry import HOOKS

_BUFFER_TAG = '__history_buffer__'


def to_safe(value: Any) -> Any:
    """Recursively replace numpy arrays by tensors, numpy scalars by Python numbers and ``HistoryBuffer``
    objects by tagged dicts of tensors."""
    if isinstance(value, HistoryBuffer):
        log, count = value.data
        return {_BUFFER_TAG: True, 'log_history': torch.from_numpy(np.asarray(log, dtype=np.float64)),
                'count_history': torch.from_numpy(np.asarray(count, dtype=np.float64)),
                'max_length': int(value.max_length)}
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy()) if value.dtype != object else [to_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return type(value)((k, to_safe(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)) and not hasattr(value, '_fields'):
        return type(value)(to_safe(v) for v in value)
    return value


def from_safe(value: Any) -> Any:
    """Inverse of :func:`to_safe` for the parts mmengine needs as objects (the ``HistoryBuffer`` s)."""
    if isinstance(value, dict):
        if value.get(_BUFFER_TAG) is True:
            return HistoryBuffer(value['log_history'].tolist(), value['count_history'].tolist(),
                                 value['max_length'])
        return type(value)((k, from_safe(v)) for k, v in value.items())
    return value


def make_safe(checkpoint: dict) -> None:
    """Turn a Runner checkpoint, in place, into what ``torch.load(weights_only=True)`` reads: every part but the
    weights and the optimizer state (tensors already, left untouched) through :func:`to_safe`."""
    for key in list(checkpoint):
        if key not in ('state_dict', 'optimizer'):
            checkpoint[key] = to_safe(checkpoint[key])


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Write checkpoints that ``torch.load(..., weights_only=True)`` reads (see the module docstring)."""

    priority = 'VERY_LOW'  # after every other hook has added its part to the checkpoint

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        make_safe(checkpoint)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = from_safe(checkpoint['message_hub'])
