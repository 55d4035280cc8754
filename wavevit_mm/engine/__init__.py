from .checkpoint_check import CheckpointFitHook
from .hooks import AtomicCheckpointHook, RandomStateHook, SafeCheckpointHook
from .optim_wrapper import AutocastOptimWrapper

__all__ = ['AtomicCheckpointHook', 'AutocastOptimWrapper', 'CheckpointFitHook', 'RandomStateHook',
           'SafeCheckpointHook']
