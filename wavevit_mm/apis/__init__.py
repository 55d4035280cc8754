"""Model names and weights: see :mod:`.model_hub`. Importing this package runs :func:`register_all`."""
from .model_hub import (CHECKPOINTS_ENV, WEIGHTS_SCHEME, ModelInfo, check_weights, checkpoint_dir, get_model_info,
                        list_models, local_weights_path, missing_weights_message, register_all, resolve_config)

register_all()

__all__ = ['CHECKPOINTS_ENV', 'WEIGHTS_SCHEME', 'ModelInfo', 'check_weights', 'checkpoint_dir', 'get_model_info',
           'list_models', 'local_weights_path', 'missing_weights_message', 'register_all', 'resolve_config']
