"""Data transforms for token-labeling training with mmpretrain (registered only when mmpretrain is installed)."""
from importlib.util import find_spec

__all__ = []

if find_spec('mmpretrain') is not None:
    from .transforms import LoadTokenLabel, TokenLabelRandomFlip, TokenLabelRandomResizedCrop  # noqa: F401
    __all__ += ['LoadTokenLabel', 'TokenLabelRandomFlip', 'TokenLabelRandomResizedCrop']

if find_spec('mmseg') is not None:  # the segmentation label check (configs/segmentation/)
    from .seg_transforms import CheckSegLabels  # noqa: F401
    __all__ += ['CheckSegLabels']
