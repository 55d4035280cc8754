"""Read checkpoint files with ``torch.load(weights_only=True)`` and nothing unsafe allowed.

Official Wave-ViT training checkpoints (timm / DeiT era) store their command line as an
``argparse.Namespace`` under ``args``; that class is the one global allowed beyond torch's own safe set.
A file that would need any other global (arbitrary code at unpickling time) is refused, never executed.
"""
import argparse
import os
import pickle
from typing import Any, Iterable, Optional

import torch

#: globals that checkpoints we read may need, all plain data holders
SAFE_GLOBALS = (argparse.Namespace, )


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint that cannot be read without arbitrary unpickling."""


def load_checkpoint_file(path: str, map_location: Any = 'cpu', extra_safe_globals: Optional[Iterable] = None):
    """Load a checkpoint file weights-only.

    Args:
        path: a local file, or a URL / other backend path that mmengine's ``CheckpointLoader`` can read.
        map_location: as for ``torch.load``.
        extra_safe_globals: further classes or functions the caller vouches for.

    Raises:
        FileNotFoundError: no such local file.
        UnsafeCheckpointError: the file needs a global outside the allowed set (named in the message).
    """
    path = os.fspath(path)
    allowed = list(SAFE_GLOBALS) + list(extra_safe_globals or ())
    with torch.serialization.safe_globals(allowed):
        if '://' in path:
            from mmengine.runner import CheckpointLoader
            return CheckpointLoader.load_checkpoint(path, map_location=map_location)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'checkpoint file not found: {path}')
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as exc:
            raise UnsafeCheckpointError(
                f'refusing to load {path}: it cannot be read with weights_only=True, and unpickling it '
                f'would run code from the file. torch says: {str(exc).splitlines()[0]} {_unsafe_globals(path)}'
            ) from exc


def _unsafe_globals(path: str) -> str:
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip checkpoint, or an older torch
        return ''
    return f'(globals outside the allowed set: {names})' if names else ''
