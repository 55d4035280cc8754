#!/usr/bin/env python
"""Train any wavevit_mm config: classification (mmpretrain), detection (mmdet) or segmentation (mmseg).

The config's ``default_scope`` picks the library. Usage::

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--auto-scale-lr]
                                 [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]
                                 [--no-work-dir-lock]

Checkpoints are saved kill-safely with the random states of the run (an interrupted run resumed with ``--resume``
continues bit for bit), and one run at a time may use a work dir: see docs/checkpoints.md.

Multi-process: ``tools/dist_train.sh`` (torchrun) and ``tools/slurm_train.sh`` (srun); they work on CPU too.
"""
import argparse

from wavevit_mm.engine.launch import (add_common_args, adapt_to_device, build_runner, load_config, run_cli, set_amp,
                                      stalled_rank_report)
from wavevit_mm.engine.resume import set_resume, use_safe_checkpointing
from wavevit_mm.engine.run_lock import OVERRIDE_FLAG, lock_work_dir


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a Wave-ViT model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint, or (no value) from the latest one in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (fp16 + dynamic loss scale on GPU, bfloat16 on CPU)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the actual total batch size / auto_scale_lr.base_batch_size')
    parser.add_argument('--no-validate', action='store_true', help='do not evaluate during training')
    parser.add_argument(OVERRIDE_FLAG, action='store_true',
                        help='do not lock the work dir (by default a second run in the same work dir is refused)')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args)
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.amp:
        set_amp(cfg)
    # kill-safe checkpoints, random states for an exact resume, checks of what load_from / --resume read
    use_safe_checkpointing(cfg)
    lock = None if args.no_work_dir_lock else lock_work_dir(cfg.work_dir, cfg.launcher)  # noqa: F841 (held)
    set_resume(cfg, args.resume)
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg:
            raise KeyError(f'--auto-scale-lr: {args.config} has no auto_scale_lr setting')
        cfg.auto_scale_lr.enable = True
    runner = build_runner(adapt_to_device(cfg))
    with stalled_rank_report():  # a distributed CPU run: an error naming a stalled rank
        runner.train()


if __name__ == '__main__':
    run_cli(main)
