"""Distributed launch on machines without a GPU.

mmengine 0.10's ``init_dist`` calls ``torch.cuda.set_device`` for the ``pytorch`` and ``slurm`` launchers and
its Runner wraps models in DDP with ``device_ids=[LOCAL_RANK]``; both fail without CUDA. When (and only when)
CUDA is unavailable, :func:`patch_mmengine_dist_for_cpu` swaps in launcher functions that set up the same
environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``PORT`` from torchrun or Slurm) and initialise a
``gloo`` process group without touching CUDA. GPU machines run mmengine's code unchanged.
"""
import os
import subprocess

import torch
import torch.distributed as torch_dist


def _init_dist_pytorch_cpu(backend: str = 'gloo', init_backend: str = 'torch', **kwargs) -> None:
    if init_backend != 'torch':
        raise ValueError(f'init_backend {init_backend!r} needs a GPU; on CPU only "torch" works')
    torch_dist.init_process_group(backend='gloo' if backend == 'nccl' else backend, **kwargs)


def _init_dist_slurm_cpu(backend: str = 'gloo', port=None, init_backend: str = 'torch', **kwargs) -> None:
    """The environment mmengine's ``_init_dist_slurm`` derives from Slurm's, without ``cuda.set_device``."""
    proc_id = int(os.environ['SLURM_PROCID'])
    ntasks = int(os.environ['SLURM_NTASKS'])
    node_list = os.environ['SLURM_NODELIST']
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        os.environ['MASTER_ADDR'] = subprocess.getoutput(f'scontrol show hostname {node_list} | head -n1')
    os.environ['WORLD_SIZE'] = str(ntasks)
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    os.environ['RANK'] = str(proc_id)
    _init_dist_pytorch_cpu(backend, init_backend, **kwargs)


def patch_mmengine_dist_for_cpu() -> bool:
    """Use the CPU launchers above when there is no CUDA device. Returns whether it patched."""
    if torch.cuda.is_available():
        return False
    from mmengine.dist import utils as dist_utils
    dist_utils._init_dist_pytorch = _init_dist_pytorch_cpu
    dist_utils._init_dist_slurm = _init_dist_slurm_cpu
    return True


def cpu_ddp_wrapper_cfg(find_unused_parameters: bool = False) -> dict:
    """``model_wrapper_cfg`` for DDP over CPU modules (``device_ids`` must be None there)."""
    return dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                find_unused_parameters=find_unused_parameters)
