#!/usr/bin/env python
"""Speed and memory of a wavevit_mm config's model: inference and a training step.

Usage::

    python tools/analysis_tools/benchmark.py CONFIG [--mode {both,inference,train}] [--batch-size 1]
                                                    [--shape H [W]] [--iters 20] [--warmup 5] [--threads N]
                                                    [--amp] [--amp-dtype {fp16,bf16}] [--device {auto,cpu,cuda}]
                                                    [--json OUT] [--cfg-options k=v ...]

The model (random weights; the config's pretrained checkpoints are not loaded) runs on one synthetic batch
made by the config's data preprocessor (random images, and for training random labels / boxes / masks /
label maps), so no dataset is needed and data loading is not part of the numbers:

- inference: ``model(inputs, data_samples, mode='predict')`` under ``torch.no_grad()`` in eval mode (the
  full prediction, post-processing such as NMS included);
- training step: ``mode='loss'`` forward, backward and an AdamW step (the config's learning rate) in train
  mode.

Reported per phase: mean and median latency per batch, images/s (batch size / mean latency) and peak memory
(CUDA: ``torch.cuda.max_memory_allocated`` for the phase; CPU: the process's peak resident set size during
the phase, read from ``/proc/self/status`` ``VmHWM`` after resetting it, so it includes the model and the
Python runtime). ``--amp`` runs under ``torch.autocast`` (fp16 on CUDA, with a gradient scaler when training;
bfloat16 on CPU; ``--amp-dtype`` overrides).
"""
import argparse
import json
import resource
import statistics
import sys
import time
from contextlib import nullcontext
from typing import Any, Dict, List, Optional, Sequence

import torch

from wavevit_mm.utils.model_utils import build_model, config_scope, default_shape, load_config, make_batch, task_of  # noqa: E402


# ------------------------------------------------------------------------------------------- memory
def _reset_cpu_peak() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux ``clear_refs``); False where unsupported."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _cpu_peak_bytes() -> int:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # lifetime peak (Linux: kB)


class PeakMemory:
    """Peak memory over a ``with`` block: CUDA allocator peak, or the process's peak RSS on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = 0
        self.kind = ''

    def __enter__(self) -> 'PeakMemory':
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.kind = 'CUDA max_memory_allocated'
        else:
            self.kind = 'peak RSS of the process' if _reset_cpu_peak() else 'lifetime peak RSS (no reset)'
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self.peak = _cpu_peak_bytes()


# ------------------------------------------------------------------------------------------- timing
def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _timed_loop(step, iters: int, warmup: int, device: torch.device, title: str) -> List[float]:
    from mmengine.utils import ProgressBar
    print(f'{title}: {warmup} warm-up + {iters} timed iterations', flush=True)
    bar = ProgressBar(warmup + iters)
    times = []
    for i in range(warmup + iters):
        _sync(device)
        start = time.perf_counter()
        step()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
        bar.update()
    sys.stdout.write('\n')
    return times


def _summary(times: List[float], batch_size: int, memory: PeakMemory) -> Dict[str, Any]:
    mean = statistics.fmean(times)
    return dict(latency_ms_mean=mean * 1e3, latency_ms_median=statistics.median(times) * 1e3,
                latency_ms_min=min(times) * 1e3, images_per_s=batch_size / mean, iters=len(times),
                peak_memory_mb=memory.peak / 2**20, memory_kind=memory.kind)


def benchmark_inference(model, data, args, device, autocast) -> Dict[str, Any]:
    model.eval()

    def step():
        with torch.no_grad(), autocast():
            model(data['inputs'], data['data_samples'], mode='predict')

    with PeakMemory(device) as mem:
        times = _timed_loop(step, args.iters, args.warmup, device, 'inference')
    return _summary(times, args.batch_size, mem)


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

    with PeakMemory(device) as mem:
        times = _timed_loop(step, args.iters, args.warmup, device, 'training step')
    return _summary(times, args.batch_size, mem)


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
    shape = default_shape(cfg, scope) if args.shape is None else (
        (args.shape[0], args.shape[0]) if len(args.shape) == 1 else tuple(args.shape[:2]))
    if args.shape is not None and len(args.shape) > 2:
        raise ValueError(f'--shape takes H or H W, got {args.shape}')

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
    parser.add_argument('--iters', type=int, default=20, help='timed iterations per phase')
    parser.add_argument('--warmup', type=int, default=5, help='untimed iterations before timing')
    parser.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: torch default)')
    parser.add_argument('--amp', action='store_true', help='autocast (fp16 on CUDA, bfloat16 on CPU)')
    parser.add_argument('--amp-dtype', choices=['fp16', 'bf16'], default=None, help='autocast dtype')
    parser.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto')
    parser.add_argument('--json', help='also write the numbers to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.iters < 1 or args.warmup < 0:
        parser.error('--batch-size and --iters must be >= 1, --warmup >= 0')
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    run(parse_args(argv))


if __name__ == '__main__':
    main()
