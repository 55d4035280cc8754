"""mmengine's ``CheckpointHook`` with saving that survives a kill at any instant.

mmengine's hook first deletes the oldest checkpoint (``max_keep_ckpts``), then writes the new one in place, then
rewrites ``last_checkpoint``: a kill in between can leave no complete checkpoint and ``last_checkpoint`` naming a
deleted or half-written file. :class:`AtomicCheckpointHook` takes the same arguments and keeps the same file
names and message-hub records, but orders the steps so that a complete checkpoint always exists:

1. the checkpoint is written under a temporary name in the same folder (``.epoch_3.pth.tmp-<host>-<pid>``);
2. it is flushed to disk and renamed into place (``os.replace``: atomic);
3. ``last_checkpoint`` is replaced the same way, now naming a complete file;
4. only then are checkpoints beyond ``max_keep_ckpts`` deleted.

A kill leaves at worst a temporary file (deleted by the next run's ``before_train``) or one checkpoint more than
``max_keep_ckpts``. ``save_best`` checkpoints are written by mmengine's code unchanged. Checkpoints on remote
storage (an ``out_dir`` with a non-local file backend) are written the mmengine way, with a warning.
"""
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from ...utils.atomic_io import atomic_write_text, commit, remove_stale_temp_files, temp_name


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) whose saving survives a kill at any instant (see the module docstring).

    Use it as ``default_hooks.checkpoint.type``; ``tools/train.py`` puts it in place of mmengine's hook.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._atomic = isinstance(self.file_backend, LocalBackend)
        if not self._atomic:
            runner.logger.warning(f'{type(self).__name__}: checkpoints go to {self.out_dir}, not a local folder; '
                                  'they are written the mmengine way, not atomically')
        elif is_main_process():
            for path in remove_stale_temp_files(self.out_dir):
                runner.logger.info(f'removed {path}, a checkpoint a killed run did not finish writing')

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        if not getattr(self, '_atomic', False):
            return super()._save_checkpoint_with_step(runner, step, meta)
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        tmp = temp_name(filename)
        runner.save_checkpoint(self.out_dir, tmp, self.file_client_args, save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
                               backend_args=self.backend_args, **self.args)
        if not is_main_process():  # Runner.save_checkpoint writes on the main process only
            return
        commit(osp.join(self.out_dir, tmp), self.last_ckpt)
        atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        for old in outdated:
            path = osp.join(self.out_dir, self.filename_tmpl.format(old))
            if osp.isfile(path):
                os.remove(path)
