from .safe_load import (SAFE_GLOBALS, CheckpointError, InvalidCheckpointError, UnsafeCheckpointError,
                        load_checkpoint_file)

__all__ = ['SAFE_GLOBALS', 'CheckpointError', 'InvalidCheckpointError', 'UnsafeCheckpointError',
           'load_checkpoint_file']
