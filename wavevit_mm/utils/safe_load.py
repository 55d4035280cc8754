"""The one way wavevit_mm reads checkpoint files: ``torch.load(weights_only=True)`` with one allow-list.

- :data:`SAFE_GLOBALS` is the allow-list: beyond torch's own safe set, only ``argparse.Namespace`` (official
  Wave-ViT training checkpoints, timm / DeiT era, store their command line under ``args``).
- :func:`load_checkpoint_file` reads a local file, a URL or any other path mmengine knows, always asking for
  ``weights_only=True`` explicitly, so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` cannot turn it off. A file that is
  not a checkpoint (empty, random bytes, a zip of something else, a truncated write) raises
  :class:`InvalidCheckpointError`; one that needs any other global raises :class:`UnsafeCheckpointError` and is
  never executed. Both messages name the file, what is wrong and the fix.
- Importing this module (``import wavevit_mm`` does) registers weights-only loaders for every scheme of
  mmengine's ``CheckpointLoader`` (local paths, ``http(s)://``, ``torchvision://``, ``open-mmlab://``,
  ``mmcls://``, ``s3://`` / ``petrel://``, ``pavi://``) through its public ``register_scheme(..., force=True)``,
  so the Runner's ``resume`` / ``load_from``, ``init_cfg=dict(type='Pretrained', ...)`` and the inference APIs
  of mmpretrain / mmdet / mmseg read through :func:`load_checkpoint_file` as well.

A checkpoint written by mmengine's own ``CheckpointHook`` without ``SafeCheckpointHook`` (by mmdet's / mmseg's /
mmpretrain's train.py) pickles ``HistoryBuffer`` and numpy objects; it is refused with a message naming
``tools/model_converters/mmengine2safe.py``, which rewrites a file the user trusts into the safe format.
"""
import argparse
import os
import os.path as osp
import pickle
import zipfile
from typing import Any, List

import torch
from mmengine.runner import CheckpointLoader

#: the allow-list: globals a checkpoint we read may need beyond torch's own safe set (plain data holders)
SAFE_GLOBALS = (argparse.Namespace, )

#: the tool that rewrites a trusted mmengine checkpoint into the safe format
REWRITE_TOOL = 'tools/model_converters/mmengine2safe.py'


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used (base class)."""


class InvalidCheckpointError(CheckpointError):
    """The file is not a (complete) PyTorch checkpoint."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint that cannot be read without arbitrary unpickling."""


def load_checkpoint_file(path: str, map_location: Any = 'cpu', mmap: bool = False) -> Any:
    """Load a checkpoint weights-only.

    Args:
        path: a local file, or a URL / other path that mmengine's ``CheckpointLoader`` knows
            (``https://``, ``s3://``, ...; those go through the weights-only loaders registered here).
        map_location: as for ``torch.load``.
        mmap: memory-map the tensors instead of reading them (local zip checkpoints): cheap when only the
            ``meta`` part is wanted.

    Raises:
        FileNotFoundError: no such local file.
        InvalidCheckpointError: the file is not a complete PyTorch checkpoint.
        UnsafeCheckpointError: the file needs a global outside :data:`SAFE_GLOBALS` (named in the message).
    """
    path = os.fspath(path)
    if '://' in path:
        return CheckpointLoader.load_checkpoint(path, map_location=map_location)
    path = osp.expanduser(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    return _load_weights_only(path, path, map_location, mmap)


def _load_weights_only(path: str, name: str, map_location: Any, mmap: bool = False) -> Any:
    """``torch.load(path, weights_only=True)`` with the allow-list; errors say what the file is (``name`` is
    what the user gave: the path, or the URL a cached file came from)."""
    is_zip = _check_container(path, name)
    with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
        try:
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap and is_zip)
        except pickle.UnpicklingError as exc:
            unsafe = _unsafe_globals(path)
            if unsafe:
                raise UnsafeCheckpointError(_unsafe_message(name, unsafe)) from None
            raise InvalidCheckpointError(
                f'{name} could not be read: its pickled data is corrupt or not a checkpoint '
                f'(torch: {_first_line(exc)}). Use an intact copy of the file.') from None
        except (EOFError, RuntimeError, ValueError, OSError) as exc:
            raise InvalidCheckpointError(
                f'{name} is not a readable PyTorch checkpoint: it is truncated or corrupt (an interrupted write or '
                f'download?) (torch: {type(exc).__name__}: {_first_line(exc)}). Use an intact copy of the file.'
            ) from None


def _check_container(path: str, name: str) -> bool:
    """Reject what is not a ``torch.save`` file before unpickling anything, with a message saying what it is;
    returns whether it is in the zip format (torch >= 1.6) rather than the legacy one."""
    size = osp.getsize(path)
    if size == 0:
        raise InvalidCheckpointError(
            f'{name} is empty (0 bytes), not a checkpoint: an interrupted download, copy or save? '
            'Fetch or copy the file again.')
    with open(path, 'rb') as f:
        head = f.read(4)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        if any(n.endswith('/constants.pkl') for n in names) and any('/code/' in n for n in names):
            raise InvalidCheckpointError(
                f'{name} is a TorchScript archive (torch.jit.save), not a checkpoint of weights: load it with '
                'torch.jit.load, or give the .pth file written by torch.save / the training tools.')
        if not any(n == 'data.pkl' or n.endswith('/data.pkl') for n in names):
            shown = ', '.join(names[:5]) + (' ...' if len(names) > 5 else '')
            raise InvalidCheckpointError(
                f'{name} is a zip archive but not a PyTorch checkpoint (no data.pkl; it holds: {shown or "nothing"}). '
                'Give the .pth file written by torch.save / the training tools (unpack it first if it is inside).')
        return True
    if head.startswith(b'PK'):
        raise InvalidCheckpointError(
            f'{name} starts like a zip archive (the torch.save format) but is truncated or corrupt ({size} bytes: '
            'the end of the archive is missing; an interrupted write or download?). Use an intact copy.')
    if not head.startswith(b'\x80'):  # torch's legacy (< 1.6) format is a sequence of pickles (protocol >= 2)
        raise InvalidCheckpointError(
            f'{name} is not a PyTorch checkpoint: neither the zip format of torch.save nor a legacy pickle '
            f'(it starts with bytes {head!r}). Check the path; give the .pth file written by torch.save.')
    return False


def _unsafe_globals(path: str) -> List[str]:
    """Globals of a zip checkpoint outside torch's safe set and :data:`SAFE_GLOBALS` (read statically)."""
    try:
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # a legacy (non-zip) file: torch cannot list them without unpickling
        return []


def _unsafe_message(name: str, unsafe: List[str]) -> str:
    shown = ', '.join(unsafe[:8]) + (' ...' if len(unsafe) > 8 else '')
    # what mmengine's Runner pickles: HistoryBuffer objects, numpy arrays and scalars (numpy 2 adds getattr)
    mmengine_like = any(g.startswith('mmengine.') for g in unsafe) and all(
        g.startswith(('mmengine.', 'numpy.')) or g == 'builtins.getattr' for g in unsafe)
    if mmengine_like:
        return (f'refusing to load {name}: it was written by mmengine\'s CheckpointHook without wavevit_mm\'s '
                f'SafeCheckpointHook (e.g. by mmdet\'s, mmseg\'s or mmpretrain\'s own train.py) and pickles objects '
                f'({shown}) that a weights-only load does not read. If you trust where the file comes from, '
                f'rewrite it once into the safe format: python {REWRITE_TOOL} {name} SAFE.pth --trust-source '
                '(then use SAFE.pth); tools/train.py writes safe checkpoints itself.')
    return (f'refusing to load {name}: it cannot be read with weights_only=True, because unpickling it needs '
            f'globals that can run code ({shown}). It is not loaded. Checkpoints of weights need none of these, '
            'and neither do the files of tools/train.py or of mmengine\'s Runner: treat the file as untrusted, and '
            'get the checkpoint from its original source.')


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


# --- mmengine's CheckpointLoader schemes, all weights-only -------------------------------------------------
# The function names follow mmengine's (CheckpointLoader logs ``name[10:]`` as the backend: "local", "http").


def load_from_local(filename: str, map_location: Any = None) -> Any:
    """Weights-only replacement of mmengine's loader for local paths (scheme ``''``)."""
    return load_checkpoint_file(filename, map_location=map_location)


def load_from_http(filename: str, map_location: Any = None, model_dir: str = None, progress: bool = None) -> Any:
    """Weights-only replacement of mmengine's ``http(s)://`` loader.

    Downloads into torch hub's cache (``<hub dir>/checkpoints``, where mmengine and torch keep them), local rank
    0 first in a distributed run, then reads the cached file with :func:`load_checkpoint_file`'s checks.
    """
    import torch.distributed as dist
    from mmengine.dist import get_dist_info
    from urllib.parse import urlparse
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    cached = osp.join(model_dir, osp.basename(urlparse(filename).path))
    progress = os.isatty(0) if progress is None else progress
    rank, world_size = get_dist_info()

    def download() -> None:
        if not osp.exists(cached):
            os.makedirs(model_dir, exist_ok=True)
            torch.hub.download_url_to_file(filename, cached, progress=progress)

    if rank == 0:
        download()
    if world_size > 1:
        dist.barrier()
        if rank > 0:
            download()
    return _load_weights_only(cached, f'{filename} (cached as {cached})', map_location)


def load_from_torchvision(filename: str, map_location: Any = None) -> Any:
    """``torchvision://NAME`` (and the deprecated ``modelzoo://NAME``), weights-only."""
    from mmengine.runner.checkpoint import get_torchvision_models
    name = filename.split('://', 1)[1]
    return load_from_http(get_torchvision_models()[name], map_location=map_location)


def load_from_openmmlab(filename: str, map_location: Any = None) -> Any:
    """``open-mmlab://NAME`` / ``openmmlab://NAME``, weights-only (resolved with mmengine's model list)."""
    from mmengine.runner.checkpoint import _get_mmengine_home, get_deprecated_model_names, get_external_models
    name = filename.split('://', 1)[1]
    name = get_deprecated_model_names().get(name, name)
    url = get_external_models()[name]
    if url.startswith(('http://', 'https://')):
        return load_from_http(url, map_location=map_location)
    return load_checkpoint_file(osp.join(_get_mmengine_home(), url), map_location=map_location)


def load_from_mmcls(filename: str, map_location: Any = None) -> Any:
    """``mmcls://NAME``, weights-only; the backbone part, as mmengine's loader returns it."""
    from mmengine.runner.checkpoint import get_mmcls_models
    checkpoint = load_from_http(get_mmcls_models()[filename[len('mmcls://'):]], map_location=map_location)
    state_dict = checkpoint.get('state_dict', checkpoint)
    return dict(state_dict={k[len('backbone.'):]: v for k, v in state_dict.items() if k.startswith('backbone.')})


def load_from_ceph(filename: str, map_location: Any = None, backend: str = 'petrel') -> Any:
    """``s3://`` / ``petrel://`` through mmengine's file backend, weights-only."""
    import tempfile
    from mmengine.fileio import get_file_backend
    data = get_file_backend(filename, backend_args={'backend': backend}).get(filename)
    with tempfile.TemporaryDirectory() as tmp:
        local = osp.join(tmp, osp.basename(filename) or 'checkpoint.pth')
        with open(local, 'wb') as f:
            f.write(data)
        return _load_weights_only(local, filename, map_location)


def load_from_pavi(filename: str, map_location: Any = None) -> Any:
    """``pavi://`` (pavi's model cloud), weights-only."""
    import tempfile
    try:
        from pavi import modelcloud
    except ImportError:
        raise ImportError(f'{filename}: install pavi to load checkpoints from its model cloud') from None
    model = modelcloud.get(filename[len('pavi://'):])
    with tempfile.TemporaryDirectory() as tmp:
        local = osp.join(tmp, model.name)
        model.download(local)
        return _load_weights_only(local, filename, map_location)


def register_weights_only_loaders() -> None:
    """Route every scheme of mmengine's ``CheckpointLoader`` through the weights-only loaders above."""
    for prefixes, loader in (('', load_from_local), (('http://', 'https://'), load_from_http),
                             (('modelzoo://', 'torchvision://'), load_from_torchvision),
                             (('open-mmlab://', 'openmmlab://'), load_from_openmmlab),
                             ('mmcls://', load_from_mmcls),
                             ((r'(\S+\:)?s3://', r'(\S+\:)?petrel://'), load_from_ceph),
                             ('pavi://', load_from_pavi)):
        CheckpointLoader.register_scheme(prefixes, loader, force=True)


register_weights_only_loaders()

__all__ = ['SAFE_GLOBALS', 'CheckpointError', 'InvalidCheckpointError', 'UnsafeCheckpointError',
           'load_checkpoint_file', 'register_weights_only_loaders']
