from .wavevit_head import WaveViTClsHead

__all__ = ['WaveViTClsHead']
