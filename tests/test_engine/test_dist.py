"""The CPU process group of wavevit_mm.engine.dist and the device adaptation of wavevit_mm.engine.launch:
in-process with a 1-process gloo group, and a stalled rank of a 2-process torchrun run (the multi-process
training runs are in tests/test_tools/test_launch_{dist,slurm,mim}.py)."""
import datetime
import os
import os.path as osp
import signal
import subprocess
import threading
import time
import uuid

import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import Config

from wavevit_mm.engine import dist as wdist
from wavevit_mm.engine.launch import adapt_to_device
from wavevit_mm.testing import launch as H

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU process group is set up only without CUDA')

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


@pytest.fixture
def init_kwargs(monkeypatch):
    """The keyword arguments init_cpu_dist passes to torch.distributed.init_process_group (which still runs)."""
    seen = {}
    init = torch_dist.init_process_group

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return init(*args, **kwargs)
    monkeypatch.setattr(torch_dist, 'init_process_group', spy)
    return seen


def _check_group(port: int) -> None:
    assert torch_dist.is_initialized()
    assert torch_dist.get_backend() == 'gloo'
    assert (torch_dist.get_rank(), torch_dist.get_world_size()) == (0, 1)
    t = torch.ones(3)
    torch_dist.all_reduce(t)
    assert torch.equal(t, torch.ones(3))
    assert os.environ['MASTER_PORT'] == str(port) and os.environ['LOCAL_RANK'] == '0'


def test_slurm_env_to_gloo_group(clean_env, init_kwargs):
    port = H.free_port()
    for key, value in dict(SLURM_PROCID='0', SLURM_NTASKS='1', SLURM_LOCALID='0', SLURM_NODELIST='localhost',
                           MASTER_ADDR='127.0.0.1').items():
        clean_env.setenv(key, value)
    wdist.init_cpu_dist('slurm', backend='nccl', port=port)  # the configs' nccl becomes gloo
    _check_group(port)
    assert init_kwargs['timeout'] == datetime.timedelta(seconds=wdist.DEFAULT_TIMEOUT_S)  # not gloo's 30 min


def test_mpi_env_to_gloo_group(clean_env, init_kwargs):
    port = H.free_port()
    for key, value in dict(OMPI_COMM_WORLD_RANK='0', OMPI_COMM_WORLD_SIZE='1', OMPI_COMM_WORLD_LOCAL_RANK='0',
                           MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port)).items():
        clean_env.setenv(key, value)
    wdist.init_cpu_dist('mpi', backend='nccl', timeout=7)
    _check_group(port)
    assert init_kwargs['timeout'] == datetime.timedelta(seconds=7)


def test_launcher_errors_are_clear(clean_env):
    with pytest.raises(KeyError, match='torchrun'):
        wdist.init_cpu_dist('pytorch', 'gloo')
    with pytest.raises(ValueError, match='needs a GPU'):
        wdist.init_cpu_dist('pytorch', 'gloo', init_backend='deepspeed')
    with pytest.raises(ValueError, match='"pytorch", "slurm" or "mpi"'):
        wdist.init_cpu_dist('ssh')
    with pytest.raises(TypeError, match='number of seconds'):
        wdist.init_cpu_dist('pytorch', timeout='5 minutes')


def _cfg(**kwargs) -> Config:
    model = dict(type='ImageClassifier', backbone=dict(type='WaveViT', norm_cfg=dict(type='SyncBN')))
    return Config(dict(dict(model=model, env_cfg=dict(dist_cfg=dict(backend='nccl'))), **kwargs))


def test_setup_dist_makes_the_group_the_runner_uses(clean_env, init_kwargs):
    """torchrun's variables -> the gloo group before the Runner: Runner.setup_env then skips mmengine's
    init_dist (it checks is_distributed()), whose private launcher functions stay untouched."""
    from mmengine.dist import is_distributed
    from mmengine.dist import utils as dist_utils
    port = H.free_port()
    for key, value in dict(RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port)).items():
        clean_env.setenv(key, value)
    assert wdist.setup_dist(adapt_to_device(_cfg(launcher='none'))) is False and not torch_dist.is_initialized()
    cfg = adapt_to_device(_cfg(launcher='pytorch', env_cfg=dict(dist_cfg=dict(backend='nccl', timeout=9))))
    assert wdist.setup_dist(cfg) is True and is_distributed()
    _check_group(port)
    assert init_kwargs['timeout'] == datetime.timedelta(seconds=9)  # the config's env_cfg.dist_cfg.timeout
    assert wdist.setup_dist(cfg) is False  # a group exists: nothing to do
    for name in ('_init_dist_pytorch', '_init_dist_slurm', '_init_dist_mpi'):
        assert getattr(dist_utils, name).__module__ == 'mmengine.dist.utils'


def test_stalled_rank_report_passes_other_errors_and_counts_ranks(clean_env):
    with pytest.raises(ValueError, match='unrelated'), wdist.stalled_rank_report():
        raise ValueError('unrelated')
    port = H.free_port()
    for key, value in dict(RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port)).items():
        clean_env.setenv(key, value)
    wdist.init_cpu_dist('pytorch', timeout=3)
    with pytest.raises(RuntimeError, match='data loader'), wdist.stalled_rank_report():
        raise RuntimeError('the data loader timed out')  # not a timeout of the process group
    gloo = '[gloo/transport/tcp/unbound_buffer.cc:78] Timed out waiting 3000ms for recv operation to complete'
    with pytest.raises(RuntimeError, match=r'within 3 s \(env_cfg.dist_cfg.timeout\); every rank of 1 timed out') \
            as info, wdist.stalled_rank_report():
        raise RuntimeError(gloo)
    assert str(info.value.__cause__) == gloo


def test_adapt_to_device_cpu():
    cfg = adapt_to_device(_cfg(launcher='pytorch'))
    assert cfg.model.backbone.norm_cfg.type == 'BN'
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.env_cfg.dist_cfg.timeout == wdist.DEFAULT_TIMEOUT_S
    assert cfg.model_wrapper_cfg.device_ids is None
    assert any(h.type == 'SafeCheckpointHook' for h in cfg.custom_hooks)
    # a config's own DDP wrapper settings are kept; only the CUDA device ids go
    cfg = adapt_to_device(_cfg(launcher='slurm', model_wrapper_cfg=dict(type='MMDistributedDataParallel',
                                                                         find_unused_parameters=True)))
    assert cfg.model_wrapper_cfg.device_ids is None and cfg.model_wrapper_cfg.find_unused_parameters is True
    assert 'model_wrapper_cfg' not in adapt_to_device(_cfg(launcher='none'))
    assert adapt_to_device(_cfg(env_cfg=dict(dist_cfg=dict(timeout=60)))).env_cfg.dist_cfg.timeout == 60


def _pid_of_rank(marker: str, rank: int) -> int:
    """The pid of the process whose environment holds ``marker`` and ``RANK=rank`` (a torchrun worker)."""
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/environ', 'rb') as f:
                env = f.read().split(b'\0')
        except OSError:
            continue
        if marker.encode() in env and f'RANK={rank}'.encode() in env:
            return int(pid)
    raise AssertionError(f'no process of rank {rank} found')


def test_stopped_rank_fails_the_run_in_the_timeout_and_is_named(tmp_path_factory, tmp_path):
    """2 CPU processes through tools/dist_train.sh; rank 1 is stopped (SIGSTOP) while they train. With
    env_cfg.dist_cfg.timeout=4, rank 0 fails within seconds (gloo's default would wait 30 minutes) with an
    error naming rank 1."""
    timeout_s = 4
    data = H.tiny_data(H.shared_root(tmp_path_factory))
    marker = f'WAVEVIT_STALL_TEST={uuid.uuid4().hex}'
    env = H.launch_env(data, PORT=str(H.free_port()), **dict([marker.split('=')]))
    cmd = ['bash', osp.join(H.TOOLS, 'dist_train.sh'), H.CONFIG, '2',
           *H.train_args(str(tmp_path / 'work'), H.GLOBAL_BATCH // 2, [
               'train_cfg.max_epochs=10000', 'train_cfg.val_interval=10000', 'default_hooks.checkpoint.interval=10000',
               f'env_cfg.dist_cfg.timeout={timeout_s}'])]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()

    def wait_for(text: str, seconds: float) -> bool:
        deadline = time.time() + seconds
        while time.time() < deadline and proc.poll() is None:
            if any(text in line for line in list(lines)):
                return True
            time.sleep(0.2)
        return any(text in line for line in list(lines))

    rank1 = None
    try:
        assert wait_for('Epoch(train)', 180), 'training did not start:\n' + ''.join(lines[-60:])
        rank0, rank1 = _pid_of_rank(marker, 0), _pid_of_rank(marker, 1)
        os.kill(rank1, signal.SIGSTOP)
        stopped = time.time()
        named = wait_for('did not answer', 120)
        elapsed = time.time() - stopped
        deadline = time.time() + 30
        while osp.exists(f'/proc/{rank0}') and time.time() < deadline:  # rank 0 exits with the error
            time.sleep(0.2)
    finally:
        if rank1 is not None:
            os.kill(rank1, signal.SIGKILL)  # else torchrun waits 30 s for the stopped process to take SIGTERM
        if proc.poll() is None:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        reader.join(timeout=10)
    out = ''.join(lines)
    assert named, 'no error naming the stalled rank:\n' + out[-6000:]
    assert proc.returncode != 0 and 'exitcode  : 1 (pid: ' + str(rank0) in out  # rank 0 failed by itself
    assert f'rank 0: a collective operation got no answer within {timeout_s} s' in out
    assert 'rank(s) 1 of 2 did not answer' in out
    assert elapsed < 2 * timeout_s + 30, f'the error came {elapsed:.0f} s after the stop'
