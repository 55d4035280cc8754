from .hooks import SafeCheckpointHook
from .optim_wrapper import AutocastOptimWrapper

__all__ = ['AutocastOptimWrapper', 'SafeCheckpointHook']
