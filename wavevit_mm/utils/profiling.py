"""Peak memory of one step: the one memory method of ``tools/analysis_tools/benchmark.py`` and ``benchmarks/``."""
from typing import Any, Callable, Union

import torch


def peak_memory_bytes(fn: Callable[[], Any], device: Union[str, torch.device] = 'cpu') -> int:
    """Peak tensor memory allocated while ``fn()`` runs, above what was allocated before it (bytes).

    That is the memory a step needs on top of what stays live (parameters, optimizer state, inputs), measured
    for this step alone. On CUDA: the caching allocator's peak (``torch.cuda.max_memory_allocated``) minus what
    was allocated when ``fn`` started. On CPU: ``torch.profiler`` with ``profile_memory=True`` records every
    allocation and free of PyTorch's CPU allocator with its size; the running sum of those, in time order, peaks
    at the result. The process's resident set size is not used: its high-water mark never goes down (the first
    large step masks every later one) and it counts the libraries' code, allocator caches and glibc arenas;
    ``tracemalloc`` sees only Python objects, not tensors.

    Args:
        fn (callable): The step, called once without arguments.
        device (str | torch.device): Where its tensors live (``'cuda'`` or ``'cuda:N'``: the allocator's
            statistics; anything else: the profiler's CPU allocation events).
    """
    device = torch.device(device)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    current = peak = 0
    for _, nbytes in sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                            if e.name() == '[memory]' and e.device_type() == torch.autograd.DeviceType.CPU):
        current += nbytes
        peak = max(peak, current)
    return peak
