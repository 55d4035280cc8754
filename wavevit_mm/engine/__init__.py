from .checkpoint_check import CheckpointFitHook
from .hooks import SafeCheckpointHook
from .optim_wrapper import AutocastOptimWrapper

__all__ = ['AutocastOptimWrapper', 'CheckpointFitHook', 'SafeCheckpointHook']
