"""Hooks used by the launch tests' tiny config (``configs/tiny_cls.py`` here), imported through its
``custom_imports``."""
import os
import os.path as osp
import signal

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DumpFinalWeightsHook(Hook):
    """After training, every process saves its model's state dict to ``work_dir/rank<r>_final.pth``."""

    priority = 'LOWEST'

    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        torch.save(state, osp.join(runner.work_dir, f'rank{get_rank()}_final.pth'))


@HOOKS.register_module()
class KillAfterIterHook(Hook):
    """SIGKILL the own process right after training iteration ``kill_at_iter`` (1-based), once the
    checkpoint hook has run for it: a hard crash, as if the job had been killed."""

    priority = 'LOWEST'  # after CheckpointHook (VERY_LOW) has saved this iteration's checkpoint

    def __init__(self, kill_at_iter: int) -> None:
        self.kill_at_iter = kill_at_iter

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.kill_at_iter:
            os.kill(os.getpid(), signal.SIGKILL)
