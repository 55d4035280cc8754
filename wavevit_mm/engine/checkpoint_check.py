"""Refuse to evaluate a checkpoint that does not fit the model (mmengine only warns, then tests random weights).

``tools/test.py`` adds :class:`CheckpointFitHook`: when the Runner has read the checkpoint and before it loads
the weights, a checkpoint of another variant (e.g. Wave-ViT-S weights with a B config), of another task, or an
unconverted official file stops the run with a message naming what does not match. The file is read once.
"""
from typing import List, Mapping

from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch import nn

from ..models.ckpt_convert import is_official, unwrap_state_dict


class CheckpointMismatchError(ValueError):
    """The checkpoint's tensors do not match the model built from the config."""


def _examples(items: List[str], n: int = 5) -> str:
    return ', '.join(items[:n]) + (f' (+{len(items) - n} more)' if len(items) > n else '')


def check_checkpoint_fits(model: nn.Module, checkpoint: Mapping, source: str) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``checkpoint`` holds exactly the model's tensors and shapes.

    Args:
        model (nn.Module): The model (a wrapper with ``.module``, e.g. DDP or a TTA model, is unwrapped).
        checkpoint (Mapping): The loaded checkpoint (a state dict, or one under ``state_dict`` / ``model``).
        source (str): Where it came from, for the message.
    """
    model = getattr(model, 'module', model)
    state = unwrap_state_dict(checkpoint)
    expected = model.state_dict()
    if is_official(state) and not any(k in expected for k in state):
        raise CheckpointMismatchError(
            f'{source} is an official Wave-ViT checkpoint; convert it first: '
            f'python tools/model_converters/wavevit2mm.py {source} OUT.pth')
    shape = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}'
             for k, v in expected.items() if k in state and hasattr(state[k], 'shape')
             and tuple(state[k].shape) != tuple(v.shape)]
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if shape or missing or unexpected:
        lines = [f'checkpoint {source} does not fit the model of this config '
                 '(a checkpoint of another variant, e.g. Wave-ViT-S weights with a B or L config, or of '
                 'another model / number of classes?):']
        if shape:
            lines.append(f'  {len(shape)} tensors of different shape: {_examples(shape, 3)}')
        if missing:
            lines.append(f'  {len(missing)} tensors missing from the checkpoint: {_examples(missing)}')
        if unexpected:
            lines.append(f'  {len(unexpected)} tensors not in the model: {_examples(unexpected)}')
        raise CheckpointMismatchError('\n'.join(lines))


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Check the checkpoint the Runner has just read against its model, before the weights are loaded."""

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        check_checkpoint_fits(runner.model, checkpoint, str(runner.cfg.get('load_from')))
