#!/usr/bin/env python
"""Plot training loss and validation metric curves from mmengine's JSON logs.

Usage::

    python tools/analysis_tools/plot_curves.py WORK_DIR [--keys loss accuracy/top1 ...] [--out PNG]
                                               [--run {auto,latest,all,RUN}] [--smooth N] [--title TITLE]

``WORK_DIR`` is a work directory written by ``tools/train.py`` (mmengine's ``Runner``): every run leaves
``WORK_DIR/RUN/vis_data/scalars.json`` (``RUN`` is its start time, e.g. ``20240101_120000``), one JSON record
per line. A single such JSON file may be given instead.

A work dir often holds several runs. ``--run auto`` (default) plots the latest training: the newest run, joined
with the runs it resumed (a run that starts after epoch 1, or for iteration-based training after its first
logging interval, continues the previous one; a step logged twice keeps the later value). Earlier, separate
trainings are left out, and the tool says which runs it read and which it skipped. ``--run latest`` plots the
newest run alone, ``--run all`` joins every run in time order, ``--run RUN`` picks one by its directory name.
Runs without training records (``tools/test.py`` runs) are not trainings and are never picked.

Training records (those with ``lr``) are plotted against the iteration; validation records against the epoch
for epoch-based training (mmengine logs the epoch as their ``step``) or the iteration for iteration-based
training. Default keys: ``loss`` and every validation metric found (``accuracy/top1``, ``coco/bbox_mAP``,
``mIoU``, ...); an unknown ``--keys`` entry is an error that lists the logged keys. One subplot per key; the
PNG goes to ``--out`` (default ``WORK_DIR/curves.png``).
"""
import argparse
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

#: logged bookkeeping values that are not curves anyone asks for by default
NON_METRIC_KEYS = {'step', 'epoch', 'iter', 'time', 'data_time', 'memory', 'lr', 'base_lr'}
RUN_CHOICES = ('auto', 'latest', 'all')


def find_logs(path: str, run: str = 'auto') -> List[str]:
    """The JSON scalar logs to plot (oldest first): the runs of a work dir that ``run`` selects (see the module
    docstring), or ``[path]`` for a JSON file."""
    return select_runs(path, run)[0]


def _all_logs(path: str) -> List[str]:
    logs = sorted(glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json')))
    if not logs:  # older layouts / other backends: TIMESTAMP.json next to the text log
        logs = sorted(p for p in glob.glob(osp.join(path, '*', 'vis_data', '*.json'))
                      if osp.basename(p) != 'scalars.json')
    if not logs:
        logs = sorted(glob.glob(osp.join(path, '*.json')))
    if not logs:
        raise FileNotFoundError(f'no mmengine JSON log in {path} (looked for {path}/*/vis_data/scalars.json, '
                                f'{path}/*/vis_data/*.json and {path}/*.json)')
    return logs


def run_name(log: str) -> str:
    """The run directory of a log (``WORK_DIR/RUN/vis_data/scalars.json`` -> ``RUN``)."""
    parent = osp.dirname(log)
    return osp.basename(osp.dirname(parent)) if osp.basename(parent) == 'vis_data' else osp.basename(log)


def _span(log: str) -> Optional[Tuple[int, int, bool]]:
    """(first iteration, last iteration, resumes) of a run's training records; None without any.

    A run resumes an earlier one when its first training record is past the start: epoch > 1 for epoch-based
    training, or (iteration-based) a first iteration beyond the logging interval (the gap to the second)."""
    train, _, _ = read_records([log])
    if not train:
        return None
    its = [int(r.get('iter', r.get('step', 0))) for r in train]
    if 'epoch' in train[0]:
        resumes = int(train[0]['epoch']) > 1
    else:
        resumes = len(its) > 1 and its[0] > its[1] - its[0]
    return its[0], its[-1], resumes


def select_runs(path: str, run: str = 'auto') -> Tuple[List[str], str]:
    """The logs to plot and a sentence saying which runs were read and which were left out."""
    if osp.isfile(path):
        return [path], f'read {path}'
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path} is neither a work dir nor a JSON log file')
    logs = _all_logs(path)
    spans = {log: _span(log) for log in logs}
    trainings = [log for log in logs if spans[log] is not None] or logs
    names = [run_name(log) for log in trainings]
    if run == 'all':
        chosen = trainings
    elif run == 'latest':
        chosen = trainings[-1:]
    elif run == 'auto':
        chosen = trainings[-1:]
        for log in reversed(trainings[:-1]):
            span = spans[chosen[0]]
            if span is None or not span[2]:
                break
            chosen.insert(0, log)
    elif run in names:
        chosen = [trainings[names.index(run)]]
    else:
        raise ValueError(f'--run {run!r}: no such run in {path}; runs: {names} (or one of {RUN_CHOICES})')

    def describe(log: str) -> str:
        span = spans[log]
        return run_name(log) + (f' (iterations {span[0]}-{span[1]}{", resumed" if span[2] else ""})'
                                if span else '')
    note = f'{path} holds {len(trainings)} training run(s); plotting {", ".join(map(describe, chosen))}'
    skipped = [describe(log) for log in trainings if log not in chosen]
    if skipped:
        note += (f'; left out {", ".join(skipped)} (--run all joins every run, --run NAME picks one)')
    return chosen, note


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


def plot(work_dir: str, keys: Optional[Sequence[str]] = None, out: Optional[str] = None, run: str = 'auto',
         smooth: int = 1, title: Optional[str] = None, quiet: bool = False) -> str:
    """Plot ``keys`` of the runs of ``work_dir`` that ``run`` selects into the PNG ``out``; returns its path.

    Raises:
        FileNotFoundError: no log in ``work_dir``.
        KeyError: a key that is not in the logs (the message lists the logged ones).
        ValueError: ``run`` names no run of the work dir, or the logs hold nothing to plot.
    """
    logs, note = select_runs(work_dir, run)
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
    fig.suptitle(title or ' + '.join(run_name(log) for log in logs))
    fig.tight_layout()
    out = out or osp.join(work_dir if osp.isdir(work_dir) else osp.dirname(work_dir) or '.', 'curves.png')
    if osp.dirname(out):
        os.makedirs(osp.dirname(out), exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    if not quiet:
        print(f'{note}\nread {len(logs)} log(s): {", ".join(logs)}\n{len(train)} training records, {len(val)} '
              f'validation records; plotted {", ".join(keys)}\nsaved {out}')
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Loss / metric curves from mmengine JSON logs',
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('work_dir', help='work dir of a training (or one scalars.json / TIMESTAMP.json)')
    parser.add_argument('--keys', nargs='+', default=None,
                        help='logged keys to plot (default: loss and every validation metric)')
    parser.add_argument('--out', help='output PNG (default: WORK_DIR/curves.png)')
    parser.add_argument('--run', default='auto', metavar='{auto,latest,all,RUN}',
                        help='auto: the latest training with the runs it resumed (default); latest: the newest '
                        'run; all: every run joined; RUN: the run of that directory name')
    parser.add_argument('--smooth', type=int, default=1, help='moving-average window for training curves')
    parser.add_argument('--title', help='figure title (default: the names of the runs plotted)')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> str:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return plot(args.work_dir, args.keys, args.out, args.run, args.smooth, args.title)
    except (FileNotFoundError, KeyError, ValueError) as e:  # a usage error, not a bug: no traceback
        parser.exit(2, f'{parser.prog}: error: {e.args[0] if e.args else e}\n')


if __name__ == '__main__':
    main()
