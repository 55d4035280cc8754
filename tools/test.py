#!/usr/bin/env python
"""Evaluate a checkpoint with any wavevit_mm config (mmpretrain, mmdet or mmseg, by ``default_scope``).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl] [--show-dir DIR] [--tta]
                                           [--cfg-options k=v ...]
                                           [--launcher {none,pytorch,slurm,mpi}]

Checkpoints are read with ``torch.load(weights_only=True)``: those written by tools/train.py (through
``SafeCheckpointHook``) and converted official weights load; a file that needs arbitrary unpickling is refused.
"""
import argparse
import os.path as osp

from wavevit_mm.apis import check_weights
from wavevit_mm.engine.launch import (add_common_args, adapt_to_device, build_runner, load_config, run_cli, set_tta,
                                      stalled_rank_report)
from wavevit_mm.engine.resume import set_custom_hook


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) a Wave-ViT model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump the predictions to this pickle file (DumpResults)')
    parser.add_argument('--show-dir', help="paint every test image's prediction into this directory (the task "
                        "library's visualization hook; mmseg writes to DIR/vis_data/vis_image)")
    parser.add_argument('--tta', action='store_true',
                        help="test-time augmentation with the config's tta_model and tta_pipeline "
                        '(e.g. multi-scale + flip)')
    add_common_args(parser)
    return parser.parse_args(argv)


def set_show_dir(cfg, show_dir: str) -> None:
    """Turn on the config's visualization hook for every test image, as mmpretrain's / mmdet's / mmseg's test.py do."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise KeyError(f'--show-dir needs default_hooks.visualization in {cfg.filename} (the library\'s hook, '
                       "e.g. dict(type='DetVisualizationHook'))")
    show_dir = osp.abspath(show_dir)  # mmdet joins a relative one to work_dir/<timestamp>
    scope = cfg.get('default_scope')
    if scope == 'mmpretrain':
        hook.update(enable=True, out_dir=show_dir, interval=1)
    elif scope == 'mmdet':
        hook.update(draw=True, test_out_dir=show_dir)
    elif scope == 'mmseg':  # the hook paints through the visualizer's LocalVisBackend
        hook.update(draw=True, interval=1)
        cfg.visualizer.save_dir = show_dir
    else:
        raise ValueError(f'--show-dir: unknown default_scope {scope!r} in {cfg.filename}')


def main(argv=None):
    args = parse_args(argv)
    check_weights(args.checkpoint)  # a local file (or wavevit-mm:// address) that is not there: say so now
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.tta:
        set_tta(cfg)
    if args.show_dir:
        set_show_dir(cfg, args.show_dir)
    # mmengine would only warn on a mismatch and then test random weights: the checkpoint must fit exactly
    set_custom_hook(cfg, dict(type='CheckpointFitHook', exact=True))
    runner = build_runner(adapt_to_device(cfg))
    if args.out is not None:
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    with stalled_rank_report():  # a distributed CPU run: an error naming a stalled rank
        runner.test()


if __name__ == '__main__':
    run_cli(main)
