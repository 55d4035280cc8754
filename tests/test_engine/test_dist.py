"""The CPU launcher functions of wavevit_mm.engine.dist and the device adaptation of wavevit_mm.engine.launch,
in-process with a 1-process gloo group (the multi-process runs are in test_launch_dist/slurm/mim.py)."""
import os

import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import Config

from wavevit_mm.testing import launch as H
from wavevit_mm.engine import dist as wdist
from wavevit_mm.engine.launch import adapt_to_device

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU patches apply only without CUDA')

DIST_ENV = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')


@pytest.fixture
def clean_env(monkeypatch):
    """Start without the torch.distributed variables; monkeypatch restores whatever the functions set."""
    for key in DIST_ENV:
        monkeypatch.setenv(key, '')  # records the old value (or its absence) for the restore
        monkeypatch.delenv(key)
    yield monkeypatch
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def _check_group(port: int) -> None:
    assert torch_dist.is_initialized()
    assert torch_dist.get_backend() == 'gloo'
    assert (torch_dist.get_rank(), torch_dist.get_world_size()) == (0, 1)
    t = torch.ones(3)
    torch_dist.all_reduce(t)
    assert torch.equal(t, torch.ones(3))
    assert os.environ['MASTER_PORT'] == str(port) and os.environ['LOCAL_RANK'] == '0'


def test_patch_replaces_mmengine_launchers(monkeypatch):
    from mmengine.dist import utils as dist_utils
    for name in ('_init_dist_pytorch', '_init_dist_slurm', '_init_dist_mpi'):
        monkeypatch.setattr(dist_utils, name, getattr(dist_utils, name))  # restored after the test
    assert wdist.patch_mmengine_dist_for_cpu() is True
    assert dist_utils._init_dist_pytorch is wdist._init_dist_pytorch_cpu
    assert dist_utils._init_dist_slurm is wdist._init_dist_slurm_cpu
    assert dist_utils._init_dist_mpi is wdist._init_dist_mpi_cpu


def test_slurm_env_to_gloo_group(clean_env):
    port = H.free_port()
    for key, value in dict(SLURM_PROCID='0', SLURM_NTASKS='1', SLURM_LOCALID='0', SLURM_NODELIST='localhost',
                           MASTER_ADDR='127.0.0.1').items():
        clean_env.setenv(key, value)
    wdist._init_dist_slurm_cpu('nccl', port=port)  # the configs' nccl becomes gloo
    _check_group(port)


def test_mpi_env_to_gloo_group(clean_env):
    port = H.free_port()
    for key, value in dict(OMPI_COMM_WORLD_RANK='0', OMPI_COMM_WORLD_SIZE='1', OMPI_COMM_WORLD_LOCAL_RANK='0',
                           MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port)).items():
        clean_env.setenv(key, value)
    wdist._init_dist_mpi_cpu('nccl')
    _check_group(port)


def test_pytorch_launcher_errors_are_clear(clean_env):
    with pytest.raises(KeyError, match='torchrun'):
        wdist._init_dist_pytorch_cpu('gloo')
    with pytest.raises(ValueError, match='needs a GPU'):
        wdist._init_dist_pytorch_cpu('gloo', init_backend='deepspeed')


def _cfg(**kwargs) -> Config:
    return Config(dict(model=dict(type='ImageClassifier', backbone=dict(type='WaveViT', norm_cfg=dict(type='SyncBN'))),
                       env_cfg=dict(dist_cfg=dict(backend='nccl')), **kwargs))


def test_adapt_to_device_cpu():
    cfg = adapt_to_device(_cfg(launcher='pytorch'))
    assert cfg.model.backbone.norm_cfg.type == 'BN'
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.device_ids is None
    assert any(h.type == 'SafeCheckpointHook' for h in cfg.custom_hooks)
    # a config's own DDP wrapper settings are kept; only the CUDA device ids go
    cfg = adapt_to_device(_cfg(launcher='slurm', model_wrapper_cfg=dict(type='MMDistributedDataParallel',
                                                                         find_unused_parameters=True)))
    assert cfg.model_wrapper_cfg.device_ids is None and cfg.model_wrapper_cfg.find_unused_parameters is True
    assert 'model_wrapper_cfg' not in adapt_to_device(_cfg(launcher='none'))
