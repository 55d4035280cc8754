"""Data transforms for token-labeling training with mmpretrain (registered only when mmpretrain is installed)."""
from importlib.util import find_spec

__all__ = []

if find_spec('mmpretrain') is not None:
    from .transforms import LoadTokenLabel, TokenLabelRandomFlip, TokenLabelRandomResizedCrop  # noqa: F401
    __all__ += ['LoadTokenLabel', 'TokenLabelRandomFlip', 'TokenLabelRandomResizedCrop']
