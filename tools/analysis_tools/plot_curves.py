#!/usr/bin/env python
"""Plot training loss and validation metric curves from mmengine's JSON logs.

Usage::

    python tools/analysis_tools/plot_curves.py WORK_DIR [--keys loss accuracy/top1 ...] [--out PNG]
                                               [--run {all,latest}] [--smooth N] [--title TITLE]

``WORK_DIR`` is a work directory written by ``tools/train.py`` (mmengine's ``Runner``): every run leaves
``WORK_DIR/TIMESTAMP/vis_data/scalars.json`` (also ``TIMESTAMP.json``), one JSON record per line. A single
such JSON file may be given instead. With ``--run all`` (default) the runs of the work dir are joined in
time order (a ``--resume``-d training continues its curve; a step logged twice keeps the later value);
``--run latest`` plots the newest run only.

Training records (those with ``lr``) are plotted against the iteration; validation records against the epoch
for epoch-based training (mmengine logs the epoch as their ``step``) or the iteration for iteration-based
training. Default keys: ``loss`` and every validation metric found (``accuracy/top1``, ``coco/bbox_mAP``,
``mIoU``, ...). One subplot per key; the PNG goes to ``--out`` (default ``WORK_DIR/curves.png``).
"""
import argparse
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

#: logged bookkeeping values that are not curves anyone asks for by default
NON_METRIC_KEYS = {'step', 'epoch', 'iter', 'time', 'data_time', 'memory', 'lr', 'base_lr'}


def find_logs(path: str, run: str = 'all') -> List[str]:
    """The JSON scalar logs of a work dir (oldest first), or ``[path]`` for a JSON file."""
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path} is neither a work dir nor a JSON log file')
    logs = sorted(glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json')))
    if not logs:  # older layouts / other backends: TIMESTAMP.json next to the text log
        logs = sorted(p for p in glob.glob(osp.join(path, '*', 'vis_data', '*.json'))
                      if osp.basename(p) != 'scalars.json')
    if not logs:
        logs = sorted(glob.glob(osp.join(path, '*.json')))
    if not logs:
        raise FileNotFoundError(f'no mmengine JSON log in {path} (looked for {path}/*/vis_data/scalars.json, '
                                f'{path}/*/vis_data/*.json and {path}/*.json)')
    return logs[-1:] if run == 'latest' else logs


def read_records(paths: Sequence[str]) -> Tuple[List[dict], List[dict], bool]:
    """Training records, validation records, and whether training is epoch-based."""
    train: Dict[int, dict] = {}
    val: Dict[int, dict] = {}
    by_epoch = False
    for path in paths:
        with open(path) as f:
            for number, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f'{path}:{number}: not a JSON record ({e})') from None
                if 'lr' in rec or 'iter' in rec:
                    by_epoch = by_epoch or 'epoch' in rec
                    train[int(rec.get('iter', rec.get('step', len(train))))] = rec
                elif 'step' in rec:
                    val.setdefault(int(rec['step']), {}).update(rec)
    return ([train[k] for k in sorted(train)], [val[k] for k in sorted(val)], by_epoch)


def moving_average(values: List[float], window: int) -> List[float]:
    if window <= 1:
        return values
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def plot(work_dir: str, keys: Optional[Sequence[str]] = None, out: Optional[str] = None, run: str = 'all',
         smooth: int = 1, title: Optional[str] = None) -> str:
    logs = find_logs(work_dir, run)
    train, val, by_epoch = read_records(logs)
    train_keys = sorted({k for r in train for k in r if isinstance(r[k], (int, float))})
    val_keys = sorted({k for r in val for k in r
                       if isinstance(r[k], (int, float)) and k not in NON_METRIC_KEYS})
    if keys is None:
        keys = (['loss'] if 'loss' in train_keys else []) + val_keys
        if not keys:
            raise ValueError(f'{work_dir}: the logs hold no loss and no validation metric '
                             f'(training keys: {train_keys})')
    missing = [k for k in keys if k not in train_keys and k not in val_keys]
    if missing:
        raise KeyError(f'{missing} not in the logs of {work_dir}; training keys: {train_keys}; '
                       f'validation keys: {val_keys}')

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.8 * len(keys)), squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        if key in val_keys:
            pts = [(r['step'], r[key]) for r in val if key in r]
            xlabel = 'epoch' if by_epoch else 'iteration'
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker='o', label=f'val {key}')
        else:
            pts = [(r.get('iter', r.get('step')), r[key]) for r in train if key in r]
            xlabel = 'iteration'
            ys = [p[1] for p in pts]
            ax.plot([p[0] for p in pts], moving_average(ys, smooth),
                    label=f'train {key}' + (f' (moving average {smooth})' if smooth > 1 else ''))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend(loc='best')
    fig.suptitle(title or osp.basename(osp.normpath(work_dir)))
    fig.tight_layout()
    out = out or osp.join(work_dir if osp.isdir(work_dir) else osp.dirname(work_dir) or '.', 'curves.png')
    if osp.dirname(out):
        os.makedirs(osp.dirname(out), exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    print(f'read {len(logs)} log(s): {", ".join(logs)}\n{len(train)} training records, {len(val)} validation '
          f'records; plotted {", ".join(keys)}\nsaved {out}')
    return out


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Loss / metric curves from mmengine JSON logs',
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('work_dir', help='work dir of a training (or one scalars.json / TIMESTAMP.json)')
    parser.add_argument('--keys', nargs='+', default=None,
                        help='logged keys to plot (default: loss and every validation metric)')
    parser.add_argument('--out', help='output PNG (default: WORK_DIR/curves.png)')
    parser.add_argument('--run', choices=['all', 'latest'], default='all',
                        help='join all runs of the work dir (resumed trainings) or take the newest')
    parser.add_argument('--smooth', type=int, default=1, help='moving-average window for training curves')
    parser.add_argument('--title', help='figure title (default: the work dir name)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    plot(args.work_dir, args.keys, args.out, args.run, args.smooth, args.title)


if __name__ == '__main__':
    main()
