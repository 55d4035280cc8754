#!/usr/bin/env python
"""Train and evaluate a small Wave-ViT on a real image dataset that ships with scikit-learn, with the same tools
and config machinery as the ImageNet runs. Needs no download and no GPU::

    .venv/bin/python tools/quickstart.py [--work-dir work_dirs/quickstart] [--epochs 6] [--data-root data/digits]
                                         [--verbose]

1. Writes scikit-learn's handwritten digits (1,797 8 x 8 scans of 0-9, ``sklearn.datasets.load_digits``), upscaled
   to 32 x 32 RGB PNGs, as an ImageNet-style folder tree ``<data-root>/{train,val}/<digit>/*.png``: a stratified,
   held-out 80 / 20 split (fixed seed), the layout mmpretrain's ``CustomDataset`` / ``ImageNet`` read.
2. Trains ``configs/classification/wavevit-tiny_digits.py`` with ``tools/train.py`` (mmengine Runner, checkpoints
   and logs in ``--work-dir``).
3. Evaluates the final checkpoint on the held-out split with ``tools/test.py`` (mmpretrain's ``Accuracy``).
4. Plots the training loss and validation top-1 with ``tools/analysis_tools/plot_curves.py``.

The console shows one progress bar per phase (rich: done / total, elapsed time, ETA), the top-1 and where the
checkpoint, the mmengine log and the curves went. The tools' whole output goes to ``--work-dir``
(``quickstart_train.log``, ``quickstart_test.log``, besides mmengine's own ``RUN/RUN.log``); ``--verbose`` prints it
as it comes.
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
from typing import Callable, List, Optional, Tuple

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
    parser.add_argument('--verbose', action='store_true',
                        help="print the tools' whole output (it always goes to the work dir)")
    parser.add_argument('--config', default=CONFIG, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def write_digits(root: str, size: int, limit: Optional[int] = None,
                 progress: Optional[Callable[[int, int], None]] = None) -> Tuple[int, int]:
    """Write the digits as ``root/{train,val}/<digit>/<index>.png``; returns (train, val) counts.

    An existing tree made with the same settings is reused; anything else in ``root`` is refused.
    ``progress(done, total)`` is called after each image written.
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
    done = 0
    for split, split_idx in (('train', train_idx), ('val', val_idx)):
        for i in split_idx:
            folder = osp.join(root, split, str(labels[i]))
            os.makedirs(folder, exist_ok=True)
            gray = np.clip(images[i] * (255. / 16.), 0, 255).astype(np.uint8)  # values 0..16
            img = Image.fromarray(gray, mode='L').resize((size, size), Image.BICUBIC).convert('RGB')
            img.save(osp.join(folder, f'{i:04d}.png'))
            done += 1
            if progress is not None:
                progress(done, len(idx))
    with open(stamp_file, 'w') as f:
        json.dump(stamp, f)
    return len(train_idx), len(val_idx)


#: mmengine's progress lines: ``Epoch(train) [3][10/45]``, ``Epoch(val) [3][12/12]``, ``Epoch(test) [12/12]``
TRAIN_RE = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\].*?\bloss: ([0-9.]+)')
VAL_RE = re.compile(r'Epoch\(val\)\s*\[(\d+)\]\[\s*\d+/\d+\].*accuracy/top1: ([0-9.]+)')
TEST_RE = re.compile(r'Epoch\(test\)\s*\[\s*(\d+)/(\d+)\]')
TOP1_RE = re.compile(r'accuracy/top1:\s*([0-9.]+)')


def progress_bar(console):
    """A rich progress display for one phase: name, bar, done / total, elapsed, ETA and a free text field."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)
    return Progress(TextColumn('{task.description:<5}'), BarColumn(bar_width=30), MofNCompleteColumn(),
                    TextColumn('{task.fields[unit]}'), TimeElapsedColumn(), TextColumn('eta'),
                    TimeRemainingColumn(), TextColumn('{task.fields[info]}'), console=console)


def run_phase(name: str, cmd: List[str], total: int, unit: str, log_file: str, console,
              verbose: bool = False, epochs: Optional[int] = None) -> str:
    """Run a tool as a subprocess behind a progress bar fed by its mmengine progress lines.

    ``total`` is the expected number of iterations (corrected from the lines: ``epochs`` x the iterations per
    epoch for a training, the batch count for a test). The tool's whole output goes to ``log_file`` (and, with
    ``verbose``, to the console as well). Returns the output; a failure ends the quickstart with the output's
    last lines and the log file's name.
    """
    from rich.text import Text
    env = dict(os.environ, PYTHONWARNINGS='ignore::UserWarning')
    # a model this small is mostly tiny ops: one thread is faster than several fighting over 2 cores
    env.setdefault('OMP_NUM_THREADS', '1')
    lines: List[str] = []
    with progress_bar(console) as bar, open(log_file, 'w') as log:
        task = bar.add_task(name, total=total, unit=unit, info='')
        if verbose:
            bar.console.print('+ ' + ' '.join(cmd), markup=False, highlight=False)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env)
        assert proc.stdout is not None
        loss = val = ''
        for line in proc.stdout:
            log.write(line)
            lines.append(line)
            if verbose:
                bar.console.print(Text.from_ansi(line.rstrip('\n')), soft_wrap=True)  # mmengine colours warnings
            if (m := TRAIN_RE.search(line)):
                epoch, it, per_epoch = map(int, m.groups()[:3])
                loss = f'epoch {epoch}, loss {float(m.group(4)):.3f}'
                bar.update(task, total=(epochs or epoch) * per_epoch, completed=(epoch - 1) * per_epoch + it)
            elif (m := VAL_RE.search(line)):
                val = f'val top-1 {float(m.group(2)):.2f}%'
            elif (m := TEST_RE.search(line)):
                bar.update(task, total=int(m.group(2)), completed=int(m.group(1)))
                if (t := TOP1_RE.search(line)):
                    val = f'top-1 {float(t.group(1)):.2f}%'
            bar.update(task, info=', '.join(x for x in (loss, val) if x))
        if proc.wait() != 0:
            bar.stop()
            tail = ''.join(lines[-30:])
            raise SystemExit(f'{tail}\n{name} failed (exit code {proc.returncode}): {" ".join(cmd)}\n'
                             f'full output: {log_file}')
        bar.update(task, completed=bar.tasks[0].total)
    return ''.join(lines)


def load_tool(relative: str):
    """Import a script of ``tools/`` as a module (tools are scripts, not a package). The same as
    ``wavevit_mm.utils.paths.load_script``, written out here because importing wavevit_mm loads mmpretrain, mmdet
    and mmseg (seconds): this process only shows progress, the tools it starts do the work."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'wavevit_tool_{osp.basename(relative)[:-3]}',
                                                  osp.join(REPO, 'tools', relative))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: Optional[List[str]] = None) -> float:
    from mmengine.config import Config
    from rich.console import Console

    args = parse_args(argv)
    t0 = time.time()
    console = Console(highlight=False)
    if not console.is_terminal:  # a log file or CI: room for the bar and its text on one line
        console.width = 120
    data_root = osp.abspath(args.data_root)
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    cfg = Config.fromfile(args.config, import_custom_modules=False)  # just the numbers: epochs, batch sizes
    epochs = args.epochs if args.epochs is not None else cfg.train_cfg.max_epochs
    if epochs < 1:
        raise ValueError(f'--epochs must be positive, got {epochs}')
    console.print(f'Wave-ViT quickstart: {osp.relpath(args.config, REPO)} on scikit-learn digits; work dir '
                  f'{work_dir}' + ('' if args.verbose else ' (full logs there; --verbose prints them)'),
                  soft_wrap=True)

    with progress_bar(console) as bar:
        task = bar.add_task('data', total=None, unit='images', info='')
        n_train, n_val = write_digits(data_root, args.image_size, args.limit,
                                      progress=lambda done, total: bar.update(task, completed=done, total=total))
        written = bar.tasks[0].completed > 0
        bar.update(task, total=n_train + n_val, completed=n_train + n_val,
                   info='written' if written else 'reused (written before with the same settings)')
    console.print(f'digits: {n_train} train / {n_val} held-out val images of {args.image_size} x '
                  f'{args.image_size} in {data_root}', soft_wrap=True)

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
        train_options += [f'train_cfg.max_epochs={epochs}', f'param_scheduler.1.end={epochs}',
                          f'param_scheduler.1.begin={min(1, epochs - 1)}',
                          f'param_scheduler.0.end={min(1, epochs - 1) or 1}',
                          f'train_cfg.val_interval={max(1, epochs // 3)}']
    batch = args.batch_size or cfg.train_dataloader.batch_size
    if args.batch_size is not None:
        train_options.append(f'train_dataloader.batch_size={args.batch_size}')

    py = sys.executable
    runs_before = set(os.listdir(work_dir))
    run_phase('train', [py, osp.join(REPO, 'tools', 'train.py'), args.config, '--work-dir', work_dir,
                        '--cfg-options', *train_options], epochs * -(-n_train // batch), 'iters',
              osp.join(work_dir, 'quickstart_train.log'), console, args.verbose, epochs)
    t_train = time.time() - t0
    last = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(last):
        raise SystemExit(f'training wrote no checkpoint ({last} missing)')
    with open(last) as f:
        ckpt = f.read().strip()
    train_run = sorted(d for d in set(os.listdir(work_dir)) - runs_before if osp.isdir(osp.join(work_dir, d)))[-1]
    out = run_phase('test', [py, osp.join(REPO, 'tools', 'test.py'), args.config, ckpt, '--work-dir', work_dir,
                             '--cfg-options', *options], -(-n_val // cfg.test_dataloader.batch_size), 'batches',
                    osp.join(work_dir, 'quickstart_test.log'), console, args.verbose)
    found = TOP1_RE.findall(out)
    if not found:
        raise SystemExit(f'tools/test.py printed no accuracy/top1 (see {work_dir}/quickstart_test.log)')
    top1 = float(found[-1])
    curves = load_tool('analysis_tools/plot_curves.py').plot(
        osp.join(work_dir, train_run, 'vis_data', 'scalars.json'), out=osp.join(work_dir, 'curves.png'),
        title=f'Wave-ViT (tiny) on digits: {n_train} training images, {epochs} epochs', quiet=True)
    total = time.time() - t0
    console.print(f'\nWave-ViT (tiny) on held-out digits: top-1 {top1:.2f}% (chance 10%), {n_val} images; '
                  f'train {t_train:.0f} s, total {total:.0f} s\n'
                  f'  checkpoint  {ckpt}\n'
                  f'  log         {osp.join(work_dir, train_run, train_run + ".log")}\n'
                  f'  curves      {curves}', soft_wrap=True)
    return top1


if __name__ == '__main__':
    try:
        main()
    except (ValueError, RuntimeError) as e:  # bad arguments or data root: the message says what to do
        sys.exit(f'quickstart.py: error: {e}')
