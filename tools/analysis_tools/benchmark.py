#!/usr/bin/env python
"""Speed and memory of a wavevit_mm config's model: inference and a training step.

Usage::

    python tools/analysis_tools/benchmark.py CONFIG [--mode {both,inference,train}] [--batch-size 1]
                                                    [--shape H [W]] [--min-run-time 10] [--warmup 2]
                                                    [--threads N] [--amp] [--amp-dtype {fp16,bf16}]
                                                    [--device {auto,cpu,cuda}] [--json OUT] [--cfg-options k=v ...]

The model (random weights; the config's pretrained checkpoints are not loaded) runs on one synthetic batch
made by the config's data preprocessor (random images, and for training random labels / boxes / masks /
label maps), so no dataset is needed and data loading is not part of the numbers:

- inference: ``model(inputs, data_samples, mode='predict')`` under ``torch.no_grad()`` in eval mode (the
  full prediction, post-processing such as NMS included);
- training step: ``mode='loss'`` forward, backward and an AdamW step (the config's learning rate) in train
  mode.

Per phase: ``--warmup`` untimed steps, then ``torch.utils.benchmark.Timer.blocked_autorange`` (the torch thread
count held fixed, CUDA synchronised) times blocks of steps until ``--min-run-time`` seconds are spent; reported
are the mean and median latency per batch and images/s (batch size / mean latency). Then one more step measures
the peak memory with :func:`wavevit_mm.utils.profiling.peak_memory_bytes`: the tensor memory the step allocates
above what was live before it (CUDA allocator peak; on CPU torch.profiler's allocation events). ``--amp`` runs
under ``torch.autocast`` (fp16 on CUDA, with a gradient scaler when training; bfloat16 on CPU; ``--amp-dtype``
overrides). Progress is printed as plain lines, readable in a log file as on a terminal.
"""
import argparse
import json
import time
from contextlib import nullcontext
from typing import Any, Callable, Dict, Optional, Sequence

import torch

from wavevit_mm.utils.model_utils import build_model, config_scope, default_shape, load_config, make_batch, task_of
from wavevit_mm.utils.profiling import peak_memory_bytes


def measure(step: Callable[[], Any], args: argparse.Namespace, device: torch.device, title: str) -> Dict[str, Any]:
    """Warm-up steps, then Timer.blocked_autorange for ``--min-run-time`` seconds, then the peak memory of one
    step; progress as plain lines (at most about ten per phase)."""
    from torch.utils.benchmark import Timer
    print(f'{title}: {args.warmup} warm-up step(s), then at least {args.min_run_time:g} s of timed steps', flush=True)
    start = time.perf_counter()
    for i in range(args.warmup):
        step()
        print(f'  warm-up {i + 1}/{args.warmup} ({time.perf_counter() - start:.1f} s)', flush=True)
    done = dict(runs=0, time=0., shown=-1.)

    def progress(number: int, block_time: float) -> None:
        done['runs'] += number
        done['time'] += block_time
        if done['time'] - done['shown'] >= max(args.min_run_time / 10, 1.) or done['time'] >= args.min_run_time:
            done['shown'] = done['time']
            print(f'  timed {done["runs"]} step(s): {done["time"]:.1f} s of {args.min_run_time:g} s '
                  f'(last {1e3 * block_time / number:.1f} ms/step)', flush=True)

    m = Timer('step()', globals=dict(step=step), num_threads=torch.get_num_threads()).blocked_autorange(
        callback=progress, min_run_time=args.min_run_time)
    peak = peak_memory_bytes(step, device)
    return dict(latency_ms_mean=m.mean * 1e3, latency_ms_median=m.median * 1e3, latency_ms_min=min(m.times) * 1e3,
                images_per_s=args.batch_size / m.mean, iters=len(m.times) * m.number_per_run,
                steps_per_block=m.number_per_run, peak_memory_mb=peak / 2**20,
                memory_kind='tensors one step allocates above the live ones')


def benchmark_inference(model, data, args, device, autocast) -> Dict[str, Any]:
    model.eval()

    def step():
        with torch.no_grad(), autocast():
            model(data['inputs'], data['data_samples'], mode='predict')

    return measure(step, args, device, 'inference')


def benchmark_train(model, data, args, device, autocast, amp_dtype, lr: float) -> Dict[str, Any]:
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr)
    scaler = torch.amp.GradScaler('cuda') if (args.amp and device.type == 'cuda'
                                               and amp_dtype == torch.float16) else None

    def step():
        with autocast():
            losses = model(data['inputs'], data['data_samples'], mode='loss')
        loss, _ = model.parse_losses(losses)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()

    return measure(step, args, device, 'training step')


def _config_lr(cfg) -> float:
    try:
        return float(cfg.optim_wrapper.optimizer.lr)
    except (AttributeError, KeyError, TypeError):
        return 1e-4


def run(args: argparse.Namespace) -> Dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == 'auto':
        device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    else:
        if args.device == 'cuda' and not torch.cuda.is_available():
            raise RuntimeError('--device cuda: no CUDA device is available')
        device = torch.device(args.device)
    cfg = load_config(args.config, args.cfg_options)
    scope = config_scope(cfg)
    if args.shape is not None and len(args.shape) not in (1, 2):
        raise ValueError(f'--shape takes H or H W, got {args.shape}')
    shape = default_shape(cfg, scope) if args.shape is None else (args.shape[0], args.shape[-1])

    amp_dtype = {'fp16': torch.float16, 'bf16': torch.bfloat16}[
        args.amp_dtype or ('fp16' if device.type == 'cuda' else 'bf16')]

    def autocast():
        return torch.autocast(device.type, dtype=amp_dtype) if args.amp else nullcontext()

    model = build_model(cfg, str(device))
    result: Dict[str, Any] = dict(
        config=args.config, task=task_of(scope), device=str(device), threads=torch.get_num_threads(),
        batch_size=args.batch_size, shape=list(shape),
        precision=(str(amp_dtype).replace('torch.', '') + ' autocast') if args.amp else 'float32',
        params=sum(p.numel() for p in model.parameters()))
    print(f'{args.config}: {type(model).__name__} ({task_of(scope)}), {result["params"] / 1e6:.2f} M params, '
          f'batch {args.batch_size} x {shape[0]} x {shape[1]}, {device}, {torch.get_num_threads()} threads, '
          f'{result["precision"]}', flush=True)
    if args.mode in ('both', 'inference'):
        data = make_batch(model, scope, shape, args.batch_size, with_gt=False)
        result['inference'] = benchmark_inference(model, data, args, device, autocast)
    if args.mode in ('both', 'train'):
        data = make_batch(model, scope, shape, args.batch_size, with_gt=True)
        try:
            result['train'] = benchmark_train(model, data, args, device, autocast, amp_dtype, _config_lr(cfg))
        except ValueError as e:
            if 'Expected more than 1 value per channel' in str(e):
                raise ValueError(f'{e}\nA BatchNorm of this model sees a single value per channel in training '
                                 f'(e.g. the 1x1 pooling branch of UPerHead): use --batch-size 2 or more.') from e
            raise

    lines = ['=' * 72]
    for phase in ('inference', 'train'):
        if phase in result:
            r = result[phase]
            lines.append(f'{phase:<10} {r["images_per_s"]:9.2f} images/s   latency per batch: mean '
                         f'{r["latency_ms_mean"]:.1f} ms, median {r["latency_ms_median"]:.1f} ms   peak memory '
                         f'{r["peak_memory_mb"]:.0f} MB ({r["memory_kind"]})')
    lines.append('=' * 72)
    print('\n'.join(lines))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    return result


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Inference / training-step speed and memory of a config',
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('config', help='config file')
    parser.add_argument('--mode', choices=['both', 'inference', 'train'], default='both')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--shape', type=int, nargs='+', default=None, help='input size: H, or H W')
    parser.add_argument('--min-run-time', type=float, default=10.,
                        help='seconds of timed steps per phase (Timer.blocked_autorange; at least one block)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps before timing')
    parser.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: torch default)')
    parser.add_argument('--amp', action='store_true', help='autocast (fp16 on CUDA, bfloat16 on CPU)')
    parser.add_argument('--amp-dtype', choices=['fp16', 'bf16'], default=None, help='autocast dtype')
    parser.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto')
    parser.add_argument('--json', help='also write the numbers to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.min_run_time < 0 or args.warmup < 0:
        parser.error('--batch-size must be >= 1, --min-run-time and --warmup >= 0')
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    run(parse_args(argv))


if __name__ == '__main__':
    main()
