"""Distributed runs on machines without a GPU, and a clear error when a rank stalls.

mmengine 0.10's ``init_dist`` calls ``torch.cuda.set_device`` for the ``pytorch``, ``slurm`` and ``mpi``
launchers, which fails without CUDA. Its Runner, however, initialises the process group only when none exists
(``Runner.setup_env`` checks ``is_distributed()``), so on a machine without CUDA :func:`init_cpu_dist` sets up a
``gloo`` group before the Runner is built, from torchrun's, Slurm's or Open MPI's variables exactly as mmengine
derives them. GPU machines keep mmengine's own path. :func:`cpu_ddp_wrapper_cfg` is the matching DDP wrapper
config (``device_ids=None``).

A stopped or hung rank: every collective operation of the CPU group times out after ``env_cfg.dist_cfg.timeout``
seconds (:data:`DEFAULT_TIMEOUT_S` unless the config sets it; gloo's own default is 30 minutes), and
:func:`stalled_rank_report` turns that timeout into an error naming the ranks that did not answer.
"""
import atexit
import datetime
import os
import re
import subprocess
from contextlib import contextmanager
from typing import Iterator, List, Optional, Union

import torch
import torch.distributed as torch_dist
from torch.distributed.rendezvous import rendezvous

#: seconds a collective operation of the CPU process group waits for the other ranks (env_cfg.dist_cfg.timeout)
DEFAULT_TIMEOUT_S = 300
#: at most this long, a rank whose collective timed out waits for the others to report before naming the absent
MAX_REPORT_WAIT_S = 30
_GPU_ONLY_BACKENDS = ('nccl', 'hccl', 'cncl', 'mccl', 'smddp')
#: what gloo's errors say when an operation timed out (first the operation, then every later one on the pair)
_TIMEOUT_ERROR = re.compile(r'Timed out waiting \d+ ?ms|Application timeout caused pair closure')
#: the store and timeout of the group :func:`init_cpu_dist` made (None: mmengine's own or no group)
_report_store: Optional[torch_dist.Store] = None
_timeout = datetime.timedelta(seconds=DEFAULT_TIMEOUT_S)


def _cpu_backend(backend: str) -> str:
    """``gloo`` for the GPU-only backends (the configs' usual ``nccl``), the given backend otherwise."""
    return 'gloo' if backend in _GPU_ONLY_BACKENDS else backend


def _require(*keys: str, hint: str) -> None:
    missing = [k for k in keys if k not in os.environ]
    if missing:
        raise KeyError(f'the environment variable(s) {missing} are not set ({hint})')


def set_launcher_env(launcher: str, port: Optional[int] = None) -> None:
    """Set ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` as mmengine derives them.

    - ``pytorch``: torchrun has set them all (``LOCAL_RANK`` defaults to 0, as ``tools/train.py`` sets it).
    - ``slurm``: from ``SLURM_PROCID`` / ``SLURM_NTASKS`` / ``SLURM_LOCALID``; ``MASTER_ADDR`` (unless set) is the
      first host of ``SLURM_NODELIST``; ``MASTER_PORT`` is ``port``, else the environment's, else 29500.
    - ``mpi``: from Open MPI's ``OMPI_COMM_WORLD_*``; ``MASTER_ADDR`` must be set, ``MASTER_PORT`` defaults to
      29500.
    """
    if launcher == 'pytorch':
        _require('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT',
                 hint='launcher "pytorch": start the processes with torchrun, e.g. tools/dist_train.sh')
        os.environ.setdefault('LOCAL_RANK', '0')
    elif launcher == 'slurm':
        _require('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST', hint='launcher "slurm": start with srun')
        if port is not None:
            os.environ['MASTER_PORT'] = str(port)
        os.environ.setdefault('MASTER_PORT', '29500')
        if 'MASTER_ADDR' not in os.environ:
            node_list = os.environ['SLURM_NODELIST']
            hosts = subprocess.run(['scontrol', 'show', 'hostnames', node_list], capture_output=True, text=True,
                                   check=True).stdout.split()
            if not hosts:
                raise RuntimeError(f'scontrol show hostnames {node_list!r} returned no host')
            os.environ['MASTER_ADDR'] = hosts[0]
        os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
        # SLURM_LOCALID is always set inside srun tasks; without it, one process per node is the only safe guess
        os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
        os.environ['RANK'] = os.environ['SLURM_PROCID']
    elif launcher == 'mpi':
        _require('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE', 'OMPI_COMM_WORLD_LOCAL_RANK', 'MASTER_ADDR',
                 hint='launcher "mpi": start with Open MPI\'s mpirun and set MASTER_ADDR')
        os.environ.setdefault('MASTER_PORT', '29500')
        os.environ['WORLD_SIZE'] = os.environ['OMPI_COMM_WORLD_SIZE']
        os.environ['RANK'] = os.environ['OMPI_COMM_WORLD_RANK']
        os.environ['LOCAL_RANK'] = os.environ['OMPI_COMM_WORLD_LOCAL_RANK']
    else:
        raise ValueError(f'launcher must be "pytorch", "slurm" or "mpi", got {launcher!r}')


def init_cpu_dist(launcher: str, backend: str = 'gloo', init_backend: str = 'torch',
                  timeout: Union[None, float, datetime.timedelta] = None, port: Optional[int] = None,
                  **kwargs) -> None:
    """Initialise the default process group without CUDA: the arguments of ``env_cfg.dist_cfg``.

    Args:
        launcher (str): ``'pytorch'`` (torchrun), ``'slurm'`` (srun) or ``'mpi'`` (Open MPI).
        backend (str): The configured backend; GPU-only ones (the configs' ``nccl``) become ``gloo``.
        init_backend (str): Only ``'torch'`` works on CPU (deepspeed / colossalai need GPUs).
        timeout (float | timedelta, optional): Seconds a collective operation (and the rendezvous) waits for
            the other ranks. Defaults to :data:`DEFAULT_TIMEOUT_S`.
        port (int, optional): ``MASTER_PORT`` for Slurm (mmengine's ``dist_cfg.port``).
        **kwargs: Passed to ``torch.distributed.init_process_group``.
    """
    global _report_store, _timeout
    if init_backend != 'torch':
        raise ValueError(f'init_backend {init_backend!r} needs a GPU; on a machine without CUDA only "torch" works')
    if not isinstance(timeout, datetime.timedelta):
        try:
            timeout = datetime.timedelta(seconds=DEFAULT_TIMEOUT_S if timeout is None else timeout)
        except TypeError as e:
            raise TypeError(f'env_cfg.dist_cfg.timeout must be a number of seconds, got {timeout!r}') from e
    set_launcher_env(launcher, port)
    # the rendezvous init_process_group('env://') does, keeping the store for stalled_rank_report
    store, rank, world_size = next(rendezvous('env://', timeout=timeout))
    store.set_timeout(timeout)
    torch_dist.init_process_group(backend=_cpu_backend(backend), store=torch_dist.PrefixStore('default_pg', store),
                                  rank=rank, world_size=world_size, timeout=timeout, **kwargs)
    _report_store, _timeout = torch_dist.PrefixStore('wavevit_mm/stalled_rank_report', store), timeout
    atexit.register(_destroy_cpu_dist)


def _destroy_cpu_dist() -> None:
    """Tear the group and its store down before the interpreter finalises (their C++ threads must not outlive
    the objects that own them: a rank could otherwise abort at exit with "terminate called without an active
    exception" after a successful run)."""
    global _report_store
    _report_store = None
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def setup_dist(cfg) -> bool:
    """Initialise the process group of a config's ``launcher`` on a machine without CUDA, before its Runner is
    built (the Runner then uses it). Returns whether it did: not for ``launcher='none'``, with CUDA (mmengine's
    ``init_dist`` runs) or when a group exists already."""
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available() or torch_dist.is_initialized():
        return False
    init_cpu_dist(launcher, **((cfg.get('env_cfg') or {}).get('dist_cfg') or {}))
    return True


def _absent_ranks(rank: int, world_size: int, wait: datetime.timedelta) -> List[int]:
    """Ranks that do not report within ``wait`` after this one did (every live rank reports: its collective
    operations time out too)."""
    assert _report_store is not None
    _report_store.set_timeout(wait)
    _report_store.set(str(rank), 'timed out')
    keys = [str(r) for r in range(world_size)]
    try:
        _report_store.wait(keys)
    except RuntimeError:  # (DistStoreError) someone is missing
        pass
    return [r for r in range(world_size) if not _report_store.check([str(r)])]


@contextmanager
def stalled_rank_report() -> Iterator[None]:
    """Name the ranks that stopped answering when a collective operation of the CPU group times out.

    Wraps ``runner.train()`` / ``runner.test()`` in the tools. A timed-out operation raises on every live rank
    (gloo gives ``Timed out waiting Nms for recv operation``, naming no rank); each such rank then reports
    through the rendezvous store and waits up to ``min(timeout, 30 s)`` for the others: the ranks that never
    report are the stalled ones. Other errors, and runs on mmengine's own (GPU) process group, pass unchanged.
    """
    try:
        yield
    except RuntimeError as error:
        if _report_store is None or not torch_dist.is_initialized() or not _TIMEOUT_ERROR.search(str(error)):
            raise
        rank, world_size = torch_dist.get_rank(), torch_dist.get_world_size()
        wait = min(_timeout, datetime.timedelta(seconds=MAX_REPORT_WAIT_S))
        seconds = f'{_timeout.total_seconds():g} s'
        try:
            absent = _absent_ranks(rank, world_size, wait)
            who = (f'rank(s) {", ".join(map(str, absent))} of {world_size} did not answer: stopped (SIGSTOP, a '
                   f'debugger), hung, or busy alone for longer than that' if absent else
                   f'every rank of {world_size} timed out: one was busy alone for longer than that')
        except RuntimeError:  # the store's host does not answer either
            who = (f'the rendezvous store at {os.environ.get("MASTER_ADDR")}:{os.environ.get("MASTER_PORT")} does '
                   'not answer either: it lives in rank 0 (unless torchrun hosts it), so rank 0 is probably the '
                   'stalled one')
        raise RuntimeError(
            f'rank {rank}: a collective operation got no answer within {seconds} (env_cfg.dist_cfg.timeout); '
            f'{who}. Look at that process (e.g. py-spy dump --pid PID; kill -CONT PID if it was stopped), or '
            'raise the timeout if a rank legitimately works alone that long (e.g. a long evaluation on rank 0): '
            '--cfg-options env_cfg.dist_cfg.timeout=SECONDS') from error


def cpu_ddp_wrapper_cfg(find_unused_parameters: bool = False) -> dict:
    """``model_wrapper_cfg`` for DDP over CPU modules (``device_ids`` must be None there).

    ``broadcast_buffers=False`` as in mmengine's default wrapper.
    """
    return dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                find_unused_parameters=find_unused_parameters)
