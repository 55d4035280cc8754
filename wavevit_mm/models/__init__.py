from importlib.util import find_spec

from .backbones import WaveViT

__all__ = ['WaveViT']

# The classification head subclasses mmpretrain's ClsHead and lives in mmpretrain's registry; the backbone
# (in mmengine's root registry, seen by mmpretrain, mmdet and mmseg) works without mmpretrain installed.
if find_spec('mmpretrain') is not None:
    from .heads import WaveViTClsHead  # noqa: F401
    __all__.append('WaveViTClsHead')
    from .classifiers import TokenLabelImageClassifier  # noqa: F401
    from .losses import TokenLabelCrossEntropy  # noqa: F401
    __all__ += ['TokenLabelImageClassifier', 'TokenLabelCrossEntropy']
