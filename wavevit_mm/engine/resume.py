"""What ``tools/train.py`` sets up so that no checkpoint is lost to a kill and a resumed run continues exactly.

- :func:`use_safe_checkpointing`: mmengine's ``CheckpointHook`` becomes :class:`AtomicCheckpointHook` (same
  arguments), and ``SafeCheckpointHook`` (weights-only-loadable files), :class:`RandomStateHook` (random states in
  each checkpoint) and :class:`CheckpointFitHook` (``load_from`` / resume checks) are added when missing;
- :func:`set_resume`: ``--resume [PATH]``; a config that fixes no ``randomness.seed`` takes the checkpoint's, so
  the sampler and the data workers are seeded as in the original run.
"""
import os.path as osp
from typing import Optional

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

#: the hooks (type names) every training config should run with, besides its checkpoint hook
SAFETY_HOOKS = ('SafeCheckpointHook', 'RandomStateHook', 'CheckpointFitHook')
CHECKPOINT_HOOK = 'AtomicCheckpointHook'


def _type_name(hook_cfg) -> str:
    t = hook_cfg.get('type') if isinstance(hook_cfg, dict) else type(hook_cfg).__name__
    return (t if isinstance(t, str) else getattr(t, '__name__', str(t))).split('.')[-1]


def use_safe_checkpointing(cfg: Config) -> None:
    """Swap in :class:`AtomicCheckpointHook` and add the missing :data:`SAFETY_HOOKS` (see the module docstring).

    A checkpoint hook of another type (a user's own subclass) is kept, with a warning that its saves are not
    kill-safe unless it derives from :class:`AtomicCheckpointHook`.
    """
    from .hooks import AtomicCheckpointHook
    default_hooks = cfg.get('default_hooks') or ConfigDict()
    ckpt = default_hooks.get('checkpoint', ConfigDict(type='CheckpointHook', interval=1))  # mmengine's default
    if ckpt is not None:
        name = _type_name(ckpt)
        if name == 'CheckpointHook':
            ckpt = ConfigDict(ckpt) if isinstance(ckpt, dict) else ckpt
            ckpt['type'] = CHECKPOINT_HOOK
        elif isinstance(ckpt, dict) and name != CHECKPOINT_HOOK:
            from mmengine.registry import HOOKS
            hook_cls = HOOKS.get(ckpt['type']) if isinstance(ckpt['type'], str) else ckpt['type']
            if not (isinstance(hook_cls, type) and issubclass(hook_cls, AtomicCheckpointHook)):
                print_log(f'default_hooks.checkpoint is {name}, not {CHECKPOINT_HOOK}: a kill while it saves can '
                          'lose checkpoints', logger='current', level=30)
        default_hooks['checkpoint'] = ckpt
    cfg.default_hooks = default_hooks
    add_missing_hooks(cfg, SAFETY_HOOKS)


def set_custom_hook(cfg: Config, hook: dict) -> None:
    """Put ``hook`` in ``cfg.custom_hooks`` in place of any hook of its type (``'wavevit_mm.X'`` counts as
    ``'X'``), or at the end."""
    name = _type_name(hook)
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks') or [] if _type_name(h) != name] + [hook]


def add_missing_hooks(cfg: Config, types) -> None:
    """Append ``dict(type=t)`` to ``cfg.custom_hooks`` for each hook type ``t`` the config does not list yet
    (``'wavevit_mm.X'`` counts as ``'X'``)."""
    custom_hooks = list(cfg.get('custom_hooks') or [])
    present = {_type_name(h) for h in custom_hooks}
    cfg.custom_hooks = custom_hooks + [dict(type=t) for t in types if t not in present]


def set_resume(cfg: Config, resume: Optional[str]) -> None:
    """Apply ``--resume`` (``'auto'``: the work dir's latest checkpoint; a path: that file; ``None``: no resume).

    When resuming and the config sets no ``randomness.seed``, the seed the checkpoint's run used is taken (read
    from its ``meta`` with the tensors memory-mapped, not loaded), so that the resumed run draws the same data
    order and worker seeds.
    """
    if resume is None:
        return
    cfg.resume, cfg.load_from = True, (None if resume == 'auto' else resume)
    randomness = cfg.get('randomness') or ConfigDict()
    if randomness.get('seed') is not None:
        return
    path = cfg.load_from
    if path is None:
        from mmengine.runner import find_latest_checkpoint
        path = find_latest_checkpoint(cfg.work_dir) if osp.isdir(cfg.work_dir) else None
    if path is None or '://' in path:
        return
    from ..utils import load_checkpoint_file
    try:
        checkpoint = load_checkpoint_file(path, mmap=True)
    except FileNotFoundError as exc:
        if resume != 'auto':
            raise
        raise FileNotFoundError(f'{exc} (named by {osp.join(cfg.work_dir, "last_checkpoint")}); give the checkpoint '
                                'to resume from: --resume PATH') from None
    seed = checkpoint.get('meta', {}).get('seed') if isinstance(checkpoint, dict) else None
    if seed is not None:
        randomness['seed'] = int(seed)
        cfg.randomness = randomness
        print_log(f'randomness.seed is not set: resuming with the seed of {path}, {seed}', logger='current')
