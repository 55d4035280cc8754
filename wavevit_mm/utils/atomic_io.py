"""Kill-safe file replacement: write to a temporary name in the same folder, flush it to disk, rename it into place.

``os.replace`` within one file system is atomic: a reader (or a run resumed after a crash) sees the old file or the
complete new one, never a partial one. A process killed before the rename leaves only its temporary file,
``.<name>.tmp-<host>-<pid>``, which :func:`remove_stale_temp_files` deletes once that process is gone.
"""
import os
import os.path as osp
import re
import socket
from typing import Callable, IO, List

_TEMP_RE = re.compile(r'^\.(?P<name>.+)\.tmp-(?P<host>.+)-(?P<pid>\d+)$')


def temp_name(filename: str) -> str:
    """The temporary name (a hidden file in the same folder) under which ``filename`` is written."""
    return f'.{osp.basename(filename)}.tmp-{socket.gethostname()}-{os.getpid()}'


def fsync_path(path: str) -> None:
    """Flush a file's (or a folder's) data and metadata to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(tmp_path: str, path: str) -> None:
    """Make the complete file ``tmp_path`` appear as ``path`` atomically (fsync, rename, fsync the folder)."""
    fsync_path(tmp_path)
    os.replace(tmp_path, path)
    fsync_path(osp.dirname(osp.abspath(path)))


def atomic_write(path: str, write: Callable[[IO], None], mode: str = 'wb') -> None:
    """Write ``path`` through ``write(file)`` kill-safely: readers see the old content or the new, nothing else."""
    tmp = osp.join(osp.dirname(osp.abspath(path)), temp_name(path))
    try:
        with open(tmp, mode) as f:
            write(f)
            f.flush()
        commit(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(path: str, text: str) -> None:
    """:func:`atomic_write` for a text file."""
    atomic_write(path, lambda f: f.write(text), mode='w')


def remove_stale_temp_files(folder: str) -> List[str]:
    """Delete the temporary files that killed writers on this host left in ``folder``; returns their paths.

    A file is stale when its process no longer exists; files of live processes and of other hosts (a shared
    file system) are left alone.
    """
    removed = []
    host = socket.gethostname()
    for entry in os.listdir(folder) if osp.isdir(folder) else []:
        m = _TEMP_RE.match(entry)
        if m is None or m['host'] != host or _alive(int(m['pid'])):
            continue
        path = osp.join(folder, entry)
        try:
            os.remove(path)
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
