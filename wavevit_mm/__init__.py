"""wavevit_mm: Wave-ViT for mmpretrain, mmdet and mmseg.

``import wavevit_mm`` (or ``custom_imports=dict(imports=['wavevit_mm'])`` in a config) registers the
``WaveViT`` backbone in mmengine's root ``MODELS`` registry, where mmpretrain, mmdet and mmseg all find it,
and, when mmpretrain is installed, the ``WaveViTClsHead`` classification head; and the
``SafeCheckpointHook`` that keeps Runner checkpoints loadable with ``weights_only=True``.
It also makes the project's model names and ``wavevit-mm://`` weight addresses known (:mod:`wavevit_mm.apis`).
"""
from .engine import *  # noqa: F401,F403
from .models import *  # noqa: F401,F403
from . import datasets  # noqa: F401  (token-labeling transforms; registered only when mmpretrain is installed)
from . import apis  # noqa: F401  (model names for mmpretrain's hub, wavevit-mm:// checkpoint addresses)
from .version import __version__

__all__ = ['__version__']
