"""Fault injection for the kill / resume and weights-only tests: a pickled code payload, a local HTTP server,
a hook that SIGKILLs its own training process at a chosen instant
of a checkpoint save, and a fork server that runs many short ``tools/train.py`` runs without paying the import
time of torch + mmengine + mmpretrain for each (about 6 s of CPU each; a child of the server starts in ~0.1 s).

The server (``python -m wavevit_mm.testing.faults``) imports everything once, then reads one JSON request per line
on stdin, ``{"tool": "train.py", "argv": [...], "env": {...}, "log": PATH}``, forks a child that runs that tool's
``main(argv)`` (``tools/train.py`` or ``tools/test.py``) with the environment updated (a ``null`` value removes a
variable) and its output in ``log``, waits for it and answers one JSON line, ``{"exitcode": N, "seconds": S}``
(``N`` negative: killed by signal ``-N``); ``"nproc": N`` forks the N ranks of one distributed run. :class:`ForkServer` is the client. The children are real, separate
processes: a SIGKILL ends one exactly as it ends a launched run, and an environment variable set for one (e.g.
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``) is read by torch when it loads, as in a launched run.
"""
import functools
import gc
import http.server
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence

from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS

class CodePayload:
    """A pickled object whose unpickling runs ``touch "$EVIL_MARKER"`` (the variable is expanded when it runs): what
    the weights-only tests save into a checkpoint and then check never ran."""

    def __reduce__(self):
        return os.system, ('touch "$EVIL_MARKER"', )


@contextmanager
def serve_folder(folder: str) -> Iterator[str]:
    """Serve ``folder`` over HTTP on localhost while the context lasts; yields the base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()


#: instants of a save at which :class:`KillDuringSaveHook` can kill, in the order a save passes them
INSTANTS = ('before_write', 'open_temp', 'rename_ckpt', 'open_last', 'rename_last', 'remove_old', 'after_save')


def _kill_now() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class KillDuringSaveHook(Hook):
    """SIGKILL this process during the first checkpoint save it makes.

    Args:
        instant (str): Where: one of :data:`INSTANTS`, or ``'delay'``. ``before_write``: when the Runner hands
            over the checkpoint, before any file is touched; ``open_temp`` / ``open_last``: when the checkpoint's
            / ``last_checkpoint``'s temporary file is opened for writing (nothing written yet); ``rename_ckpt`` /
            ``rename_last``: right before it is renamed into place; ``remove_old``: right before an old
            checkpoint is deleted (mmengine's own hook does this before writing the new one); ``after_save``:
            after the whole save, before the next epoch. The file events are caught with a Python audit hook
            (``sys.addaudithook``: the ``open``, ``os.rename`` and ``os.remove`` events). ``delay``: ``delay``
            seconds after the Runner hands over the checkpoint (what is left of the save then is writing it,
            renaming it, ``last_checkpoint`` and the deletion), wherever the save then is, or after the save if
            it is done by then.
        delay (float): Seconds, for ``instant='delay'``.
    """

    priority = 'HIGH'  # after_train_epoch: before the checkpoint hook (VERY_LOW) starts saving

    def __init__(self, instant: str, delay: float = 0.) -> None:
        if instant not in INSTANTS + ('delay', ):
            raise ValueError(f'instant must be one of {INSTANTS + ("delay", )}, got {instant!r}')
        self.instant = instant
        self.delay = delay
        self._armed = False

    def after_train_epoch(self, runner) -> None:
        if self._armed:
            return
        self._armed = True
        if self.instant not in ('before_write', 'after_save', 'delay'):
            sys.addaudithook(self._on_event)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._armed and self.instant == 'before_write':
            _kill_now()
        if self._armed and self.instant == 'delay':
            threading.Thread(target=lambda: (time.sleep(self.delay), _kill_now()), daemon=True).start()

    def before_train_epoch(self, runner) -> None:
        if self._armed:  # 'after_save', or a later instant that did not come: never past one save
            _kill_now()

    def _on_event(self, event: str, args: tuple) -> None:
        if event == 'open' and isinstance(args[0], str) and isinstance(args[1], str) and 'w' in args[1]:
            name = osp.basename(args[0])
            if '.tmp-' in name and ((self.instant == 'open_temp' and '.pth.' in name)
                                    or (self.instant == 'open_last' and 'last_checkpoint' in name)):
                _kill_now()
        elif event == 'os.rename' and isinstance(args[1], str):
            dst = osp.basename(args[1])
            if (self.instant == 'rename_ckpt' and dst.endswith('.pth')) or (
                    self.instant == 'rename_last' and dst == 'last_checkpoint'):
                _kill_now()
        elif event == 'os.remove' and self.instant == 'remove_old' and str(args[0]).endswith('.pth'):
            _kill_now()


@HOOKS.register_module()
class MmengineOrderCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` unchanged (old checkpoint deleted first, new one written in place), under a
    name ``tools/train.py`` does not replace: the contrast case of the kill tests."""


class ForkServer:
    """Client of the fork server (see the module docstring); use as a context manager.

    Args:
        env (dict): The server's environment (the children inherit it; ``OMP_NUM_THREADS`` belongs here).
        log (str): Where the server's own stderr goes.
    """

    def __init__(self, env: Dict[str, str], log: str) -> None:
        self._log = open(log, 'w')
        self.proc = subprocess.Popen([sys.executable, '-m', 'wavevit_mm.testing.faults'], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log)

    def run(self, argv: Sequence[str], log: str, env: Optional[Dict[str, Optional[str]]] = None,
            tool: str = 'train.py', nproc: int = 1) -> Dict:
        """Run ``tools/<tool> argv`` in a forked child; returns ``{"exitcode", "exitcodes", "seconds", "output"}``.

        ``nproc > 1``: that many children, ranks of one group as torchrun starts them (``RANK``, ``WORLD_SIZE``,
        ``MASTER_ADDR`` / ``MASTER_PORT`` set; pass ``--launcher pytorch``); the output is rank 0's, the others'
        logs are ``log.rank<r>``.
        """
        request = dict(tool=tool, argv=list(argv), env=env or {}, log=log, nproc=nproc)
        if nproc > 1:
            import socket
            with socket.socket() as sock:
                sock.bind(('127.0.0.1', 0))
                request['port'] = sock.getsockname()[1]
        self.proc.stdin.write(json.dumps(request) + '\n')
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f'the fork server died (exit code {self.proc.wait()}); see {self._log.name}')
        result = json.loads(line)
        with open(log) as f:
            result['output'] = f.read()
        return result

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        self._log.close()

    def __enter__(self) -> 'ForkServer':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _run_child(main, tool: str, argv: List[str], env: Dict[str, Optional[str]], log: str) -> None:
    """In a forked child: one tool run with ``env`` applied and its output in ``log``; never returns."""
    import traceback
    code = 1
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout.reconfigure(line_buffering=True)  # nothing is lost to a SIGKILL
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        sys.argv = [tool, *argv]
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _serve() -> None:
    import runpy

    from mmpretrain.utils import register_all_modules

    import wavevit_mm  # noqa: F401
    import wavevit_mm.testing.hooks  # noqa: F401
    from wavevit_mm.utils.paths import TOOLS_DIR
    register_all_modules(init_default_scope=False)
    mains = {tool: runpy.run_path(osp.join(TOOLS_DIR, tool), run_name='wavevit_tool')['main']
             for tool in ('train.py', 'test.py')}
    protocol = os.fdopen(os.dup(1), 'w')  # the answers; anything else printed to stdout goes to stderr
    os.dup2(2, 1)
    gc.freeze()  # the children's gc.collect() (mmengine datasets call it) skips the server's million objects
    for line in sys.stdin:
        request = json.loads(line)
        t0 = time.time()
        pids = []
        for rank, (env, log) in enumerate(_per_process(request)):
            pid = os.fork()
            if pid == 0:
                _run_child(mains[request['tool']], osp.join(TOOLS_DIR, request['tool']), request['argv'], env, log)
            pids.append(pid)
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
        protocol.write(json.dumps(dict(exitcode=codes[0], exitcodes=codes, seconds=round(time.time() - t0, 3)))
                       + '\n')
        protocol.flush()


def _per_process(request: Dict) -> List:
    """(environment, log) of each process of a request: one, or ``nproc`` ranks of a torchrun-like group."""
    nproc = request.get('nproc', 1)
    if nproc == 1:
        return [(request['env'], request['log'])]
    return [(dict(request['env'], RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(nproc), LOCAL_WORLD_SIZE=str(nproc),
                  MASTER_ADDR='127.0.0.1', MASTER_PORT=str(request['port'])),
             request['log'] if r == 0 else f"{request['log']}.rank{r}") for r in range(nproc)]


def checkpoint_files(work_dir: str) -> List[str]:
    """The checkpoint and temporary files in a work dir, sorted."""
    return sorted(f for f in os.listdir(work_dir) if f.endswith('.pth') or '.tmp-' in f)


if __name__ == '__main__':
    _serve()
