#!/usr/bin/env python
"""Train and evaluate a small Wave-ViT on a real image dataset that ships with scikit-learn, with the same tools
and config machinery as the ImageNet runs. Needs no download and no GPU::

    .venv/bin/python tools/quickstart.py [--work-dir work_dirs/quickstart] [--epochs 6] [--data-root data/digits]

1. Writes scikit-learn's handwritten digits (1,797 8 x 8 scans of 0-9, ``sklearn.datasets.load_digits``), upscaled
   to 32 x 32 RGB PNGs, as an ImageNet-style folder tree ``<data-root>/{train,val}/<digit>/*.png``: a stratified,
   held-out 80 / 20 split (fixed seed), the layout mmpretrain's ``CustomDataset`` / ``ImageNet`` read.
2. Trains ``configs/classification/wavevit-tiny_digits.py`` with ``tools/train.py`` (mmengine Runner, progress and
   ETA logging, checkpoints in ``--work-dir``).
3. Evaluates the final checkpoint on the held-out split with ``tools/test.py`` and prints top-1 as computed by
   mmpretrain's ``Accuracy`` metric.
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
from typing import List, Optional, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO, 'configs', 'classification', 'wavevit-tiny_digits.py')
SPLIT_SEED = 0


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train + evaluate a small Wave-ViT on scikit-learn digits')
    parser.add_argument('--work-dir', default=osp.join('work_dirs', 'quickstart'),
                        help='logs and checkpoints (default: work_dirs/quickstart)')
    parser.add_argument('--data-root', default=osp.join('data', 'digits'),
                        help='where the digits are written as an ImageNet-style tree (default: data/digits)')
    parser.add_argument('--epochs', type=int, default=None, help='training epochs (default: the config\'s, 6)')
    parser.add_argument('--batch-size', type=int, default=None, help='training batch size (default: 32)')
    parser.add_argument('--image-size', type=int, default=32, help='side of the upscaled images (default: 32)')
    parser.add_argument('--limit', type=int, default=None,
                        help='use only the first N digits (before the split), for a quick smoke run')
    parser.add_argument('--seed', type=int, default=0, help='training seed (default: 0)')
    parser.add_argument('--config', default=CONFIG, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def write_digits(root: str, size: int, limit: Optional[int] = None) -> Tuple[int, int]:
    """Write the digits as ``root/{train,val}/<digit>/<index>.png``; returns (train, val) counts.

    An existing tree made with the same settings is reused; anything else in ``root`` is refused.
    """
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images, labels = digits.images, digits.target
    if limit is not None:
        if limit < 50:  # a stratified 20 % split needs at least one held-out image of each of the 10 digits
            raise ValueError(f'--limit must be at least 50, got {limit}')
        images, labels = images[:limit], labels[:limit]
    idx = np.arange(len(labels))
    train_idx, val_idx = train_test_split(idx, test_size=0.2, stratify=labels, random_state=SPLIT_SEED)
    stamp = dict(source='sklearn.datasets.load_digits', size=size, limit=limit, split_seed=SPLIT_SEED,
                 train=len(train_idx), val=len(val_idx))
    stamp_file = osp.join(root, 'quickstart_digits.json')
    if osp.isfile(stamp_file):
        with open(stamp_file) as f:
            if json.load(f) == stamp:
                return len(train_idx), len(val_idx)
        raise RuntimeError(f'{root} holds digits written with other settings ({stamp_file}); '
                           'remove it or pass another --data-root')
    if osp.isdir(root) and os.listdir(root):
        raise RuntimeError(f'{root} exists and is not empty; pass another --data-root')
    for split, split_idx in (('train', train_idx), ('val', val_idx)):
        for i in split_idx:
            folder = osp.join(root, split, str(labels[i]))
            os.makedirs(folder, exist_ok=True)
            gray = np.clip(images[i] * (255. / 16.), 0, 255).astype(np.uint8)  # values 0..16
            img = Image.fromarray(gray, mode='L').resize((size, size), Image.BICUBIC).convert('RGB')
            img.save(osp.join(folder, f'{i:04d}.png'))
    with open(stamp_file, 'w') as f:
        json.dump(stamp, f)
    return len(train_idx), len(val_idx)


def run(cmd: List[str]) -> str:
    """Run ``cmd``, echoing its output live; returns the output; raises on failure."""
    print('+ ' + ' '.join(cmd), flush=True)
    env = dict(os.environ, PYTHONWARNINGS='ignore::UserWarning')
    # a model this small is mostly tiny ops: one thread is faster than several fighting over 2 cores
    env.setdefault('OMP_NUM_THREADS', '1')
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line)
    if proc.wait() != 0:
        raise SystemExit(f'command failed with exit code {proc.returncode}: {" ".join(cmd)}')
    return ''.join(lines)


def main(argv: Optional[List[str]] = None) -> float:
    args = parse_args(argv)
    t0 = time.time()
    data_root = osp.abspath(args.data_root)
    work_dir = osp.abspath(args.work_dir)
    n_train, n_val = write_digits(data_root, args.image_size, args.limit)
    print(f'digits: {n_train} train / {n_val} held-out val images of {args.image_size} x {args.image_size} '
          f'in {data_root}', flush=True)

    options = [f'{k}.dataset.data_root={data_root}' for k in ('train_dataloader', 'val_dataloader',
                                                                'test_dataloader')]
    size = args.image_size
    options += [f'train_dataloader.dataset.pipeline.1.scale={size}',
                f'val_dataloader.dataset.pipeline.1.scale={size}',
                f'val_dataloader.dataset.pipeline.2.crop_size={size}',
                f'test_dataloader.dataset.pipeline.1.scale={size}',
                f'test_dataloader.dataset.pipeline.2.crop_size={size}']
    train_options = list(options) + [f'randomness.seed={args.seed}']
    if args.epochs is not None:
        if args.epochs < 1:
            raise ValueError(f'--epochs must be positive, got {args.epochs}')
        train_options += [f'train_cfg.max_epochs={args.epochs}', f'param_scheduler.1.end={args.epochs}',
                          f'param_scheduler.1.begin={min(1, args.epochs - 1)}',
                          f'param_scheduler.0.end={min(1, args.epochs - 1) or 1}',
                          f'train_cfg.val_interval={max(1, args.epochs // 3)}']
    if args.batch_size is not None:
        train_options.append(f'train_dataloader.batch_size={args.batch_size}')

    py = sys.executable
    run([py, osp.join(REPO, 'tools', 'train.py'), args.config, '--work-dir', work_dir,
         '--cfg-options', *train_options])
    last = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(last):
        raise SystemExit(f'training wrote no checkpoint ({last} missing)')
    with open(last) as f:
        ckpt = f.read().strip()
    t_train = time.time() - t0
    out = run([py, osp.join(REPO, 'tools', 'test.py'), args.config, ckpt, '--work-dir', work_dir,
               '--cfg-options', *options])
    found = re.findall(r'accuracy/top1:\s*([0-9.]+)', out)
    if not found:
        raise SystemExit('tools/test.py printed no accuracy/top1')
    top1 = float(found[-1])
    total = time.time() - t0
    print(f'\nWave-ViT (tiny) on held-out digits: top-1 {top1:.2f}% (chance 10%), {n_val} images; '
          f'checkpoint {ckpt}; train {t_train:.0f} s, total {total:.0f} s', flush=True)
    return top1


if __name__ == '__main__':
    main()
