"""Refuse a checkpoint that does not fit the model before the Runner loads it (mmengine only warns, then trains or
tests with whatever did not load left at random).

:class:`CheckpointFitHook` checks the checkpoint the Runner has just read, before the weights are copied:

- every value of the state dict is a tensor; every floating-point tensor the model takes is finite; the dtypes
  are of the model's kind (a float for a float, an integer for an integer: an integer tensor is not weights);
- ``exact=True`` (``tools/test.py``) and any resume: the tensors are exactly the model's, names and shapes (a
  checkpoint of another variant, e.g. Wave-ViT-S weights with a B config, or of another task is refused, and an
  unconverted official file is told to be converted first);
- ``exact=False`` (``load_from`` in training, which may legitimately skip e.g. a classifier head of another size):
  at least ``min_loaded_fraction`` of the model's tensors are loaded;
- a resume reads a training checkpoint: one holding weights only (a converted or published file) is refused with
  the advice to use ``load_from``.

Each error names the file, what is wrong (with example keys) and the fix. The file is read once.
"""
from typing import Dict, Mapping

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch import nn

from ..models.ckpt_convert import format_examples, is_official, unusable_values, unwrap_state_dict

#: what a resumable (training) checkpoint holds besides its weights
RESUME_KEYS = ('meta', 'message_hub')


class CheckpointMismatchError(ValueError):
    """The checkpoint's tensors do not match the model built from the config."""


def check_state_dict_values(state: Mapping, expected: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise :class:`CheckpointMismatchError` for non-tensor values, non-finite or wrong-kind tensors the model
    would load (see :func:`~wavevit_mm.models.ckpt_convert.unusable_values`)."""
    lines = unusable_values(state, expected)
    if lines:
        raise CheckpointMismatchError('\n  '.join([f'checkpoint {source} does not hold usable weights:', *lines])
                                      + '\nUse an intact checkpoint of this model.')


def check_checkpoint_fits(model: nn.Module, checkpoint: Mapping, source: str, exact: bool = True,
                          min_loaded_fraction: float = 0.5) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``checkpoint`` fits the model (see the module docstring).

    Args:
        model (nn.Module): The model (a wrapper with ``.module``, e.g. DDP or a TTA model, is unwrapped).
        checkpoint (Mapping): The loaded checkpoint (a state dict, or one under ``state_dict`` / ``model``).
        source (str): Where it came from, for the message.
        exact (bool): Whether the names and shapes must be exactly the model's. Defaults to True.
        min_loaded_fraction (float): With ``exact=False``, the least fraction of the model's tensors that must
            load (right name and shape). Defaults to 0.5.
    """
    model = getattr(model, 'module', model)
    try:
        state = unwrap_state_dict(checkpoint)
    except ValueError as exc:
        raise CheckpointMismatchError(f'{source}: {exc}') from None
    expected: Dict[str, torch.Tensor] = model.state_dict()
    if is_official(state) and not any(k in expected for k in state):
        raise CheckpointMismatchError(
            f'{source} is an official Wave-ViT checkpoint; convert it first: '
            f'python tools/model_converters/wavevit2mm.py {source} OUT.pth')
    check_state_dict_values(state, expected, source)
    shape = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}'
             for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    loaded = len(expected) - len(missing) - len(shape)
    if exact and (shape or missing or unexpected):
        head = (f'checkpoint {source} does not fit the model of this config (a checkpoint of another variant, '
                'e.g. Wave-ViT-S weights with a B or L config, or of another model / number of classes?):')
    elif not exact and loaded < min_loaded_fraction * len(expected):
        head = (f'checkpoint {source} would load only {loaded} of the {len(expected)} tensors of this model (less '
                f'than {min_loaded_fraction:.0%}; a checkpoint of another variant or model?). To initialise only a '
                "part of the model, use that part's init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...) "
                'instead of load_from:')
    else:
        return
    lines = [head]
    if shape:
        lines.append(f'  {len(shape)} tensors of different shape: {format_examples(shape, 3)}')
    if missing:
        lines.append(f'  {len(missing)} tensors missing from the checkpoint: {format_examples(missing)}')
    if unexpected:
        lines.append(f'  {len(unexpected)} tensors not in the model: {format_examples(unexpected)}')
    raise CheckpointMismatchError('\n'.join(lines))


def check_resumable(checkpoint: Mapping, source: str) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``checkpoint`` is a training checkpoint a run can resume."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    if (not isinstance(meta, Mapping) or any(k not in checkpoint for k in RESUME_KEYS)
            or any(k not in meta for k in ('epoch', 'iter'))):
        raise CheckpointMismatchError(
            f'{source} holds weights only (no training state: epoch / iteration counters, message hub, '
            'optimizer), so a run cannot resume from it. To start training from these weights, use '
            f'load_from (--cfg-options load_from={source}), not --resume.')


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Check the checkpoint the Runner has just read against its model, before the weights are loaded.

    Args:
        exact (bool): Require exactly the model's tensors (``tools/test.py``); otherwise at least
            ``min_loaded_fraction`` of them (``load_from`` in training). A resume is always checked exactly.
            Defaults to False.
        min_loaded_fraction (float): See :func:`check_checkpoint_fits`. Defaults to 0.5.
    """

    def __init__(self, exact: bool = False, min_loaded_fraction: float = 0.5) -> None:
        self.exact = exact
        self.min_loaded_fraction = min_loaded_fraction

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        resuming = bool(runner.cfg.get('resume', False))
        source = _source(runner, resuming)
        if resuming:
            check_resumable(checkpoint, source)
            if 'optimizer' not in checkpoint:
                runner.logger.warning(f'{source} holds no optimizer state (saved with save_optimizer=False?): the '
                                      'resumed run starts its optimizer afresh')
        check_checkpoint_fits(runner.model, checkpoint, source, exact=self.exact or resuming,
                              min_loaded_fraction=self.min_loaded_fraction)


def _source(runner, resuming: bool) -> str:
    """The file the Runner read: ``load_from``, or for an automatic resume the one ``last_checkpoint`` names."""
    if runner.cfg.get('load_from'):
        return str(runner.cfg.load_from)
    if resuming:
        from mmengine.runner import find_latest_checkpoint
        return str(find_latest_checkpoint(runner.work_dir))
    return 'the checkpoint'
