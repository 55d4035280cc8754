#!/usr/bin/env python
"""Evaluate a checkpoint with any wavevit_mm config (mmpretrain, mmdet or mmseg, by ``default_scope``).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl] [--tta] [--cfg-options k=v ...]
                                           [--launcher {none,pytorch,slurm,mpi}]

Checkpoints are read with ``torch.load(weights_only=True)``: those written by tools/train.py (through
``SafeCheckpointHook``) and converted official weights load; a file that needs arbitrary unpickling is refused.
"""
import argparse
import os.path as osp
from wavevit_mm.engine.launch import add_common_args, adapt_to_device, build_runner, load_config, set_tta  # noqa


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) a Wave-ViT model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump the predictions to this pickle file (DumpResults)')
    parser.add_argument('--tta', action='store_true',
                        help="test-time augmentation with the config's tta_model and tta_pipeline "
                        '(e.g. multi-scale + flip)')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint file not found: {args.checkpoint}')
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.tta:
        set_tta(cfg)
    # mmengine would only warn on a mismatch and then test random weights
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [dict(type='CheckpointFitHook')]
    runner = build_runner(adapt_to_device(cfg))
    if args.out is not None:
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    runner.test()


if __name__ == '__main__':
    main()
