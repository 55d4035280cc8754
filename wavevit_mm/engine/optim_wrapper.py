"""Mixed precision on CPU.

mmengine's ``AmpOptimWrapper`` refuses to build without a GPU / NPU / MLU. On a CPU-only machine the configs'
``AmpOptimWrapper`` (fp16 with loss scaling, as the official runs) is swapped by ``tools/train.py`` for
``AutocastOptimWrapper``: the forward pass and loss run under ``torch.autocast('cpu', bfloat16)``, the
weights and the optimizer step stay float32. bfloat16 has float32's exponent range, so no loss scaling is
needed.
"""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import nn


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` that runs ``optim_context`` (forward + loss) under ``torch.autocast``.

    Args:
        dtype (str): ``'bfloat16'`` (default) or ``'float16'``.
        device_type (str): The autocast device, ``'cpu'`` by default.
        **kwargs: As for ``OptimWrapper`` (``optimizer``, ``clip_grad``, ``accumulative_counts``).
    """

    def __init__(self, dtype: str = 'bfloat16', device_type: str = 'cpu', **kwargs) -> None:
        super().__init__(**kwargs)
        if dtype not in ('bfloat16', 'float16'):
            raise ValueError(f"AutocastOptimWrapper dtype must be 'bfloat16' or 'float16', got {dtype!r}")
        self.cast_dtype = getattr(torch, dtype)
        self.device_type = device_type

    @contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), torch.autocast(self.device_type, dtype=self.cast_dtype):
            yield
