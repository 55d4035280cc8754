"""Distributed launch on machines without a GPU.

mmengine 0.10's ``init_dist`` calls ``torch.cuda.set_device`` for the ``pytorch``, ``slurm`` and ``mpi``
launchers, and its Runner wraps models in DDP with ``device_ids=[LOCAL_RANK]``; both fail without CUDA. When
(and only when) CUDA is unavailable, :func:`patch_mmengine_dist_for_cpu` swaps in launcher functions that set
up the same environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``, derived from
torchrun's, Slurm's or Open MPI's variables exactly as mmengine derives them) and initialise a ``gloo``
process group without touching CUDA; :func:`cpu_ddp_wrapper_cfg` is the matching DDP wrapper config
(``device_ids=None``). GPU machines run mmengine's code unchanged.
"""
import os
import subprocess
from typing import Optional

import torch
import torch.distributed as torch_dist

_GPU_ONLY_BACKENDS = ('nccl', 'hccl', 'cncl', 'mccl', 'smddp')


def _cpu_backend(backend: str) -> str:
    """``gloo`` for the GPU-only backends (the configs' usual ``nccl``), the given backend otherwise."""
    return 'gloo' if backend in _GPU_ONLY_BACKENDS else backend


def _init_dist_pytorch_cpu(backend: str = 'gloo', init_backend: str = 'torch', **kwargs) -> None:
    """mmengine's ``_init_dist_pytorch`` without ``torch.cuda.set_device``: torchrun has set ``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR``/``MASTER_PORT``; the process group reads them.

    Args:
        backend (str): The configured backend; GPU-only ones (``nccl``) become ``gloo``.
        init_backend (str): Only ``'torch'`` works on CPU (deepspeed / colossalai need GPUs).
        **kwargs: Passed to ``torch.distributed.init_process_group`` (e.g. ``timeout``).
    """
    if init_backend != 'torch':
        raise ValueError(f'init_backend {init_backend!r} needs a GPU; on a machine without CUDA only "torch" '
                         'works')
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if key not in os.environ:
            raise KeyError(f'launcher "pytorch" needs the environment variable {key} (start the processes with '
                           'torchrun, e.g. tools/dist_train.sh)')
    torch_dist.init_process_group(backend=_cpu_backend(backend), **kwargs)


def _init_dist_slurm_cpu(backend: str = 'gloo', port: Optional[int] = None, init_backend: str = 'torch',
                         **kwargs) -> None:
    """mmengine's ``_init_dist_slurm`` without ``torch.cuda.set_device``.

    ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` come from ``SLURM_PROCID``/``SLURM_NTASKS``/``SLURM_LOCALID``,
    ``MASTER_ADDR`` (unless set) is the first host of ``SLURM_NODELIST``, ``MASTER_PORT`` is ``port``, else the
    environment's, else 29500.
    """
    proc_id = int(os.environ['SLURM_PROCID'])
    ntasks = int(os.environ['SLURM_NTASKS'])
    node_list = os.environ['SLURM_NODELIST']
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        addr = subprocess.run(['scontrol', 'show', 'hostnames', node_list], capture_output=True, text=True,
                              check=True).stdout.split()
        if not addr:
            raise RuntimeError(f'scontrol show hostnames {node_list!r} returned no host')
        os.environ['MASTER_ADDR'] = addr[0]
    os.environ['WORLD_SIZE'] = str(ntasks)
    # SLURM_LOCALID is always set inside srun tasks; without it, one process per node is the only safe guess
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    os.environ['RANK'] = str(proc_id)
    _init_dist_pytorch_cpu(backend, init_backend, **kwargs)


def _init_dist_mpi_cpu(backend: str = 'gloo', **kwargs) -> None:
    """mmengine's ``_init_dist_mpi`` without ``torch.cuda.set_device`` (Open MPI's ``OMPI_COMM_WORLD_*``
    variables; ``MASTER_ADDR`` must be set, ``MASTER_PORT`` defaults to 29500)."""
    if 'MASTER_ADDR' not in os.environ:
        raise KeyError('The environment variable MASTER_ADDR is not set')
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['WORLD_SIZE'] = os.environ['OMPI_COMM_WORLD_SIZE']
    os.environ['RANK'] = os.environ['OMPI_COMM_WORLD_RANK']
    os.environ['LOCAL_RANK'] = os.environ['OMPI_COMM_WORLD_LOCAL_RANK']
    torch_dist.init_process_group(backend=_cpu_backend(backend), **kwargs)


def patch_mmengine_dist_for_cpu() -> bool:
    """Use the CPU launcher functions above in ``mmengine.dist.init_dist`` when there is no CUDA device.

    Returns:
        bool: Whether it patched (False on a machine with CUDA, where mmengine's own functions run).
    """
    if torch.cuda.is_available():
        return False
    from mmengine.dist import utils as dist_utils
    dist_utils._init_dist_pytorch = _init_dist_pytorch_cpu
    dist_utils._init_dist_slurm = _init_dist_slurm_cpu
    dist_utils._init_dist_mpi = _init_dist_mpi_cpu
    return True


def cpu_ddp_wrapper_cfg(find_unused_parameters: bool = False) -> dict:
    """``model_wrapper_cfg`` for DDP over CPU modules (``device_ids`` must be None there).

    ``broadcast_buffers=False`` as in mmengine's default wrapper.
    """
    return dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                find_unused_parameters=find_unused_parameters)
