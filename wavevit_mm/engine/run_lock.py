"""One training run per work dir: ``tools/train.py`` holds an exclusive lock on ``<work_dir>/train.lock``.

Two runs writing to one work dir interleave their logs and overwrite each other's checkpoints and
``last_checkpoint``. The lock is a POSIX record lock (``fcntl.lockf``) on the open file: the operating system
releases it when the process ends in any way, SIGKILL included, so a killed run never blocks the next one. Unlike
an ``flock``, it is not inherited by forked children: data-loader workers that outlive a killed run by a few
seconds do not hold it (and it works on NFS). The file records who holds the lock (host, pid, start time,
command) for the message a second run gets. Only the process of global rank 0 takes it (the other ranks of the
same run share the work dir).
"""
import fcntl
import json
import os
import os.path as osp
import socket
import sys
import time
from typing import IO, Optional

LOCK_NAME = 'train.lock'
#: the tools/train.py flag that skips the lock
OVERRIDE_FLAG = '--no-work-dir-lock'


class WorkDirLockedError(RuntimeError):
    """Another process holds the work dir's lock."""


class WorkDirLock:
    """An exclusive, non-blocking ``lockf`` on ``<work_dir>/train.lock``, held until :meth:`release` or exit.

    The lock belongs to the process: taking it twice in one process succeeds.
    """

    def __init__(self, work_dir: str) -> None:
        self.work_dir = work_dir
        self.path = osp.join(work_dir, LOCK_NAME)
        self._file: Optional[IO] = None

    def acquire(self) -> 'WorkDirLock':
        """Take the lock, or raise :class:`WorkDirLockedError` naming the holder and the ways out."""
        os.makedirs(self.work_dir, exist_ok=True)
        f = open(self.path, 'a+')
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # EAGAIN or EACCES: held by another process
            f.seek(0)
            holder = _describe(f.read())
            f.close()
            raise WorkDirLockedError(
                f'another training run is using the work dir {self.work_dir} ({holder}; lock file {self.path}). '
                f'Wait for it to end, or pass another --work-dir. Two runs in one work dir mix their logs and '
                f'checkpoints; {OVERRIDE_FLAG} allows it anyway.') from None
        f.seek(0)
        f.truncate()
        json.dump(dict(host=socket.gethostname(), pid=os.getpid(), started=time.strftime('%Y-%m-%d %H:%M:%S'),
                       command=' '.join(sys.argv)), f)
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.lockf(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _describe(text: str) -> str:
    try:
        info = json.loads(text)
        return f"pid {info['pid']} on {info['host']}, started {info['started']}: {info['command']}"
    except (ValueError, KeyError, TypeError):
        return 'holder unknown'


def global_rank_from_env() -> int:
    """This process's global rank as the launchers set it (torchrun, Slurm, MPI), before any process group."""
    for var in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK'):
        if os.environ.get(var, '').isdigit():
            return int(os.environ[var])
    return 0


def lock_work_dir(work_dir: str, launcher: str = 'none') -> Optional[WorkDirLock]:
    """What ``tools/train.py`` calls: the lock on the main process (global rank 0), ``None`` on the others."""
    if launcher != 'none' and global_rank_from_env() != 0:
        return None
    return WorkDirLock(work_dir).acquire()
