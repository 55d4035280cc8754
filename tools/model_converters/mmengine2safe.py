#!/usr/bin/env python
"""Rewrite a checkpoint you trust into the safe format that wavevit_mm reads weights-only.

    python tools/model_converters/mmengine2safe.py IN.pth OUT.pth --trust-source

A checkpoint written by mmengine's ``CheckpointHook`` without wavevit_mm's ``SafeCheckpointHook`` (by mmdet's,
mmseg's or mmpretrain's own ``train.py``) pickles ``HistoryBuffer`` and numpy objects, which
``torch.load(weights_only=True)`` refuses; wavevit_mm's tools and the Runner refuse such a file and name this tool.
It unpickles IN **with** ``weights_only=False``, which runs whatever code the file carries: that is why it does so
only with ``--trust-source``, the statement that you trust where IN comes from. It then converts what the safe
loader cannot read exactly as ``SafeCheckpointHook`` does (numpy arrays and scalars to tensors and Python
numbers, ``HistoryBuffer`` s to tagged tensors that the hook turns back on resume), checks that OUT reads
weights-only and writes it atomically. OUT resumes (``tools/train.py --resume OUT.pth``), loads
(``load_from``, ``tools/test.py``) and initialises backbones like a checkpoint of ``tools/train.py``.

Without ``--trust-source`` nothing is unpickled beyond the weights-only loader: the tool says whether IN needs
rewriting and which globals it holds.
"""
import argparse
import os.path as osp
import sys

import torch

from wavevit_mm.engine.hooks.safe_checkpoint_hook import make_safe, to_safe
from wavevit_mm.utils import CheckpointError, UnsafeCheckpointError, load_checkpoint_file
from wavevit_mm.utils.atomic_io import atomic_write
from wavevit_mm.utils.safe_load import SAFE_GLOBALS


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='the checkpoint to rewrite (e.g. written by mmdet\'s own tools/train.py)')
    parser.add_argument('dst', help='where the safe checkpoint is written')
    parser.add_argument('--trust-source', action='store_true',
                        help='unpickle SRC with weights_only=False, running any code it carries: only for a file '
                        'whose origin you trust')
    args = parser.parse_args(argv)
    if not osp.isfile(args.src):
        parser.error(f'no such file: {args.src}')
    try:
        load_checkpoint_file(args.src)
    except UnsafeCheckpointError as exc:
        reason = str(exc)
    except CheckpointError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    else:
        print(f'{args.src} already reads weights-only; nothing to rewrite: use it as it is.', file=sys.stderr)
        return 1
    if not args.trust_source:
        print(f'{reason}\nerror: not rewritten. Rewriting unpickles {args.src} with weights_only=False, which runs '
              'any code the file carries; pass --trust-source if (and only if) you trust where it comes from.',
              file=sys.stderr)
        return 1

    safe = torch.load(args.src, map_location='cpu', weights_only=False)  # the user vouched for the file
    if isinstance(safe, dict):
        make_safe(safe)  # as SafeCheckpointHook does
    else:
        safe = to_safe(safe)

    def write(f) -> None:
        torch.save(safe, f)
        f.flush()
        # before the file takes its name: everything in it reads weights-only
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            left = torch.serialization.get_unsafe_globals_in_checkpoint(f.name)
        if left:
            raise CheckpointError(f'{args.src} holds objects other than mmengine\'s and numpy\'s ({left}); they '
                                  'have no safe form, so nothing was written')

    try:
        atomic_write(args.dst, write)
    except CheckpointError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    keys = ', '.join(safe) if isinstance(safe, dict) else type(safe).__name__
    print(f'rewrote {args.src} into the safe format ({keys}) -> {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
