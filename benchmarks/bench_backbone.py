"""Speed and memory of the Wave-ViT backbone against a straightforward formulation and two peers, in one run.

Models (backbones only, randomly initialised, nothing downloaded):

* ``wavevit-s`` / ``wavevit-b``: :class:`wavevit_mm.WaveViT` (four output maps, dense-prediction layout);
* ``naive-s`` / ``naive-b``: :mod:`naive_wavevit`, the same maths written plainly (convolution-based Haar
  transform, explicit softmax attention), loaded with the *same weights* as ``wavevit-s`` / ``-b``; before
  timing, the benchmark checks that both give the same outputs;
* ``swin-t``: mmpretrain's ``SwinTransformer(arch='tiny')``, four output maps;
* ``pvtv2-b2``: mmdet's ``PyramidVisionTransformerV2`` (b2 settings), four output maps.

Modes:

* ``fp32``: inference (eval mode, ``torch.inference_mode``) in float32;
* ``bf16``: the same under ``torch.autocast('cpu', dtype=torch.bfloat16)``;
* ``train``: one training step (train mode, drop path 0.1 for every model): forward, the mean of every output
  map summed as the loss, backward, AdamW step;
* ``train_cp``: the same with gradient checkpointing (``with_cp=True``; for models that support it).

Method: one process; threads set to the machine's cores (``torch.set_num_threads(os.cpu_count())``, or
``--threads``); for each mode, every repeat runs every model once (round robin, the order rotated per repeat),
so that load from other processes hits all models alike; ``--warmup`` repeats are discarded; the result is the
median over ``--repeats``. Throughput is ``batch / median step time``.

Peak memory: after the timing, one more step per model and mode runs under ``torch.profiler`` with
``profile_memory=True``, which records every allocation and free of PyTorch's CPU allocator with its size; the
running sum of those, in time order, gives the peak of tensor memory allocated during the step above what
was live before it (parameters, optimizer state, input). That is the memory a model needs per step,
independent of the rest of the process. The process-wide RSS high-water mark (``resource.getrusage``) is not
used: it never goes down, so the first large configuration would mask every later one, and it also counts
the libraries' code, allocator caching and glibc arenas; ``tracemalloc`` sees only Python objects, not tensors.

Usage::

    python benchmarks/bench_backbone.py                       # batch 8 at 224, all models and modes
    python benchmarks/bench_backbone.py --batch 2 --size 64 --repeats 2 --warmup 1 --models wavevit-s naive-s

It prints a table and the ratios that matter, and writes everything (raw times included) as JSON
(``benchmarks/results/bench_b{batch}_{size}.json`` unless ``--out``).
"""
import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import sys
import time
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from naive_wavevit import NaiveWaveViT  # noqa: E402

from wavevit_mm import WaveViT  # noqa: E402

ALL_MODELS = ['wavevit-s', 'wavevit-b', 'naive-s', 'naive-b', 'swin-t', 'pvtv2-b2']
ALL_MODES = ['fp32', 'bf16', 'train', 'train_cp']
DROP_PATH = 0.1


def randomize_norms(model: nn.Module, seed: int = 1) -> None:
    """Non-trivial BatchNorm statistics and norm affines, so the equivalence check means something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            elif isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.normalized_shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.normalized_shape, generator=g) * 0.1)


def build_models(names: List[str]) -> Dict[str, nn.Module]:
    """Build the requested backbones; a naive model gets the weights of the matching ``wavevit`` model."""
    models: Dict[str, nn.Module] = {}
    wavevits: Dict[str, nn.Module] = {}

    def wavevit(arch: str) -> nn.Module:
        if arch not in wavevits:
            torch.manual_seed(0)
            model = WaveViT(arch, drop_path_rate=DROP_PATH)
            model.init_weights()
            randomize_norms(model)
            wavevits[arch] = model
        return wavevits[arch]

    for name in names:
        if name.startswith('wavevit-'):
            models[name] = wavevit(name[-1])
        elif name.startswith('naive-'):
            arch = name[-1]
            naive = NaiveWaveViT(WaveViT.arch_zoo[arch], drop_path_rate=DROP_PATH)
            naive.load_state_dict(wavevit(arch).state_dict())
            models[name] = naive
        elif name == 'swin-t':
            from mmpretrain.models.backbones import SwinTransformer
            torch.manual_seed(0)
            model = SwinTransformer(arch='tiny', out_indices=(0, 1, 2, 3), drop_path_rate=DROP_PATH,
                                    pad_small_map=True)
            model.init_weights()
            models[name] = model
        elif name == 'pvtv2-b2':
            from mmdet.models.backbones import PyramidVisionTransformerV2
            torch.manual_seed(0)
            model = PyramidVisionTransformerV2(embed_dims=64, num_layers=[3, 4, 6, 3],
                                               drop_path_rate=DROP_PATH)
            model.init_weights()
            models[name] = model
        else:
            raise ValueError(f'unknown model {name!r}; choose from {ALL_MODELS}')
    return models


def check_equivalence(models: Dict[str, nn.Module], size: int) -> Dict[str, float]:
    """Max abs difference between ``naive-x`` and ``wavevit-x`` outputs (eval mode, fp32, batch 2)."""
    result = {}
    for name in models:
        if not name.startswith('naive-'):
            continue
        naive = models[name]
        ours = models.get('wavevit-' + name[-1])
        if ours is None:  # build the partner just for the check
            ours = WaveViT(name[-1])
            ours.load_state_dict(naive.state_dict())
        torch.manual_seed(123)
        x = torch.randn(2, 3, size, size)
        with torch.inference_mode():
            a, b = ours.eval()(x), naive.eval()(x)
        diff = max((o - e).abs().max().item() for o, e in zip(a, b))
        scale = max(e.abs().max().item() for e in b)
        if not diff <= 1e-4 * max(1.0, scale):
            raise RuntimeError(f'{name} and wavevit-{name[-1]} disagree: max abs difference {diff:.3g}')
        result[name] = diff
    return result


def set_with_cp(model: nn.Module, flag: bool) -> bool:
    """Switch gradient checkpointing on every module that has ``with_cp``; False if none has it."""
    found = False
    for m in model.modules():
        if hasattr(m, "with_cp"):
            m.with_cp = flag
            found = True
    return found


class Step:
    """One step of a mode for one model: ``prepare()`` then ``run()`` (``prepare`` is not timed)."""

    def __init__(self, model: nn.Module, mode: str, x: Tensor) -> None:
        self.model, self.mode, self.x = model, mode, x
        self.with_cp = mode == 'train_cp'
        self.optimizer: Optional[torch.optim.Optimizer] = None
        if mode.startswith('train'):
            self.optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def prepare(self) -> None:
        if self.optimizer is None:
            self.model.eval()
        else:  # gradients of the previous step are dropped here, so a step allocates its own
            set_with_cp(self.model, self.with_cp)
            self.model.train()
            self.optimizer.zero_grad(set_to_none=True)

    def run(self) -> None:
        if self.optimizer is None:
            with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=self.mode == 'bf16'):
                self.model(self.x)
        else:
            loss = sum(o.float().mean() for o in self.model(self.x))
            loss.backward()
            self.optimizer.step()

    def state_mb(self) -> float:
        """Memory held between steps: parameters, buffers and optimizer state (MB)."""
        tensors = list(self.model.parameters()) + list(self.model.buffers())
        if self.optimizer is not None:
            tensors += [v for state in self.optimizer.state.values() for v in state.values()
                        if isinstance(v, Tensor)]
        return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def make_step(model: nn.Module, mode: str, x: Tensor) -> Optional[Step]:
    """A step of ``mode``, or None if the model does not support the mode (``train_cp`` without ``with_cp``)."""
    if mode == 'train_cp' and not set_with_cp(model, False):
        return None
    return Step(model, mode, x)


def peak_memory(step: Step) -> float:
    """Peak tensor memory (MB) allocated by one run of ``step`` above what was live before it."""
    from torch.profiler import ProfilerActivity, profile
    step.prepare()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step.run()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == '[memory]')
    current = peak = 0
    for _, nbytes in events:
        current += nbytes
        peak = max(peak, current)
    return peak / 2**20


def cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run(args: argparse.Namespace) -> dict:
    from mmengine.logging import MMLogger
    MMLogger.get_instance('bench_backbone', log_level='WARNING')  # quiet init_weights reports
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    threads = torch.get_num_threads()
    models = build_models(args.models)
    equivalence = check_equivalence(models, args.size)
    for name, diff in equivalence.items():
        print(f'{name} == wavevit-{name[-1]} on identical weights: max abs difference {diff:.2e}')
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size)
    load_before = os.getloadavg()
    start = time.time()

    timer = time.perf_counter if args.timer == 'wall' else time.process_time
    results: Dict[str, Dict[str, dict]] = {name: {} for name in models}
    for mode in args.modes:
        steps = {name: make_step(model, mode, x) for name, model in models.items()}
        active = [name for name, step in steps.items() if step is not None]
        times: Dict[str, List[float]] = {name: [] for name in active}
        for r in range(args.warmup + args.repeats):
            k = r % len(active)
            for name in active[k:] + active[:k]:
                steps[name].prepare()
                t0 = timer()
                steps[name].run()
                if r >= args.warmup:
                    times[name].append(timer() - t0)
        for name in active:
            median = statistics.median(times[name])
            results[name][mode] = dict(images_per_s=args.batch / median, median_s=median, times_s=times[name],
                                       peak_mb=peak_memory(steps[name]), state_mb=steps[name].state_mb())
            print(f'  {mode:8s} {name:9s} {args.batch / median:7.2f} img/s  '
                  f'peak {results[name][mode]["peak_mb"]:8.1f} MB (+{results[name][mode]["state_mb"]:.0f} MB '
                  'parameters/buffers/optimizer state)', flush=True)
        for name, model in models.items():
            set_with_cp(model, False)

    report = dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        command='python benchmarks/bench_backbone.py ' + ' '.join(sys.argv[1:]),
        batch=args.batch, size=args.size, warmup=args.warmup, repeats=args.repeats, threads=threads,
        timer=args.timer,
        cpu=cpu_name(), cpu_count=os.cpu_count(), torch=torch.__version__, python=platform.python_version(),
        load_average_before=load_before, load_average_after=os.getloadavg(),
        wall_time_s=time.time() - start, equivalence_max_abs_diff=equivalence,
        params={name: sum(p.numel() for p in m.parameters()) for name, m in models.items()},
        results=results, ratios=ratios(results))
    return report


def ratios(results: Dict[str, Dict[str, dict]]) -> Dict[str, float]:
    """The comparisons the targets are stated in (only those whose inputs were measured)."""
    out = {}

    def ips(name: str, mode: str) -> Optional[float]:
        return results.get(name, {}).get(mode, {}).get('images_per_s')

    for arch in 'sb':
        ours = f'wavevit-{arch}'
        for mode in ('fp32', 'bf16', 'train'):
            a, b = ips(ours, mode), ips(f'naive-{arch}', mode)
            if a and b:
                out[f'{ours} / naive-{arch} {mode} speed'] = a / b
        for peer in ('swin-t', 'pvtv2-b2'):
            for mode in ('fp32', 'bf16', 'train'):
                a, b = ips(ours, mode), ips(peer, mode)
                if a and b:
                    out[f'{ours} / {peer} {mode} speed'] = a / b
        a, b = ips(ours, 'bf16'), ips(ours, 'fp32')
        if a and b:
            out[f'{ours} bf16 / fp32 speed'] = a / b
        cp = results.get(ours, {}).get('train_cp')
        plain = results.get(ours, {}).get('train')
        if cp and plain:
            out[f'{ours} train_cp / train peak memory'] = cp['peak_mb'] / plain['peak_mb']
            out[f'{ours} train_cp / train peak memory incl. state'] = \
                (cp['peak_mb'] + cp['state_mb']) / (plain['peak_mb'] + plain['state_mb'])
    return out


def print_table(report: dict) -> None:
    modes = [m for m in ALL_MODES if any(m in r for r in report['results'].values())]
    print(f"\nbatch {report['batch']} at {report['size']}x{report['size']}, {report['threads']} threads, "
          f"{report['timer']} time "
          f"({report['cpu']}, {report['cpu_count']} cores), torch {report['torch']}, median of "
          f"{report['repeats']} after {report['warmup']} warm-up, load average before/after "
          f"{report['load_average_before'][0]:.2f}/{report['load_average_after'][0]:.2f}")
    header = f"{'model':10s} {'params':>7s} |" + ''.join(f' {m + " img/s":>14s}' for m in modes) + ' |' + \
        ''.join(f' {m + " MB":>11s}' for m in modes)
    print(header)
    print('-' * len(header))
    for name, res in report['results'].items():
        row = f"{name:10s} {report['params'][name] / 1e6:6.1f}M |"
        row += ''.join(f" {res[m]['images_per_s']:14.2f}" if m in res else f" {'n/a':>14s}" for m in modes)
        row += ' |' + ''.join(f" {res[m]['peak_mb']:11.0f}" if m in res else f" {'n/a':>11s}" for m in modes)
        print(row)
    print('\nratios:')
    for key, value in report['ratios'].items():
        print(f'  {key:45s} {value:6.2f}')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=ALL_MODELS, choices=ALL_MODELS)
    parser.add_argument('--modes', nargs='+', default=ALL_MODES, choices=ALL_MODES)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, default=224, help='input side (a multiple of 32)')
    parser.add_argument('--warmup', type=int, default=2, help='discarded rounds per mode')
    parser.add_argument('--repeats', type=int, default=5, help='timed rounds per mode (median taken)')
    parser.add_argument('--threads', type=int, default=None, help='defaults to os.cpu_count()')
    parser.add_argument('--timer', choices=['wall', 'cpu'], default='wall',
                        help="'wall': elapsed time (the result); 'cpu': CPU time of this process "
                        '(time.process_time), a cross-check that other load on the machine disturbs less; '
                        'use it with --threads 1, as idle OpenMP threads spin and count as busy')
    parser.add_argument('--out', default=None, help='JSON path; default benchmarks/results/bench_b{batch}_{size}.json')
    args = parser.parse_args(argv)
    if args.size % 32:
        parser.error('--size must be a multiple of 32 (the naive formulation needs it)')
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    report = run(args)
    print_table(report)
    suffix = '' if args.timer == 'wall' else f'_{args.timer}time_{torch.get_num_threads()}thread'
    out = args.out or os.path.join(HERE, 'results', f'bench_b{args.batch}_{args.size}{suffix}.json')
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(report, f, indent=1)
    print(f'\nwrote {out}')
    return report


if __name__ == '__main__':
    main()
