"""Data transforms and checked datasets, each registered when its library is installed: token-labeling transforms
(mmpretrain), label-map loading and checks (mmseg), a COCO dataset that checks its annotation file (mmdet)."""
from importlib.util import find_spec

__all__ = []

if find_spec('mmpretrain') is not None:
    from .transforms import LoadTokenLabel, TokenLabelRandomFlip, TokenLabelRandomResizedCrop  # noqa: F401
    __all__ += ['LoadTokenLabel', 'TokenLabelRandomFlip', 'TokenLabelRandomResizedCrop']

if find_spec('mmseg') is not None:  # the segmentation label checks (configs/segmentation/)
    from .seg_transforms import CheckSegLabels, LoadSegAnnotations  # noqa: F401
    __all__ += ['CheckSegLabels', 'LoadSegAnnotations']

if find_spec('mmdet') is not None:
    from .coco import CheckedCocoDataset  # noqa: F401
    __all__ += ['CheckedCocoDataset']
