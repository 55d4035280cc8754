"""One command that checks wavevit_mm on a CUDA GPU and measures it there (about 5 minutes on one GPU).

Checks, each recorded in one JSON file (``benchmarks/results/gpu_check.json`` unless ``--out``):

1. ``train``: one config per task, the real configs' models (``configs/classification/wavevit-s_8xb128_in1k.py``,
   ``configs/detection/mask-rcnn_wavevit-s_fpn_1x_coco.py``,
   ``configs/segmentation/upernet_wavevit-s_8xb2-160k_ade20k-512x512.py``; pretrained checkpoints left out),
   trained for ``--steps`` steps on one synthetic batch made by the config's data preprocessor
   (:func:`wavevit_mm.utils.model_utils.make_batch`) through mmengine's ``AmpOptimWrapper``, in float16 (with
   loss scaling) and in bfloat16: every loss must be finite and the last ones lower than the first.
2. ``syncbn``: the segmentation model with every BatchNorm converted to ``SyncBatchNorm`` (as mmengine's
   ``Runner(sync_bn='torch')`` does), wrapped in ``DistributedDataParallel``, trained for a few fp16 steps in a
   1-process ``torchrun`` with the nccl backend.
3. ``backbone``: ``bench_backbone.py``'s benchmark at batch 64, 224 x 224, channels-last: inference in fp32 and
   under fp16 / bf16 autocast, and fp16-autocast training steps with and without ``with_cp`` (throughput and
   peak CUDA memory), of ``WaveViT('s')`` against Swin-T, PVTv2-b2 and, with ``--official-src``, the official
   Wave-ViT-S backbone (same weights, outputs checked first).

``--dry-run`` runs the same code on the CPU at toy sizes (batches of 1-2 at 64-128 pixels, three steps; float32
``OptimWrapper`` instead of ``AmpOptimWrapper``, which needs a GPU; gloo instead of nccl, and SyncBN reverted to BN
as CPU runs do; bf16 instead of fp16 autocast in the backbone benchmark): a test runs it, so that the GPU run does
not meet its first bug on the day.

Usage::

    python benchmarks/gpu_check.py [--official-src ../ImageNetModel] [--out FILE] [--dry-run]

The exit code is 1 if any check failed (the JSON then holds the error of each failed check).
"""
import argparse
import copy
import datetime
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Callable, Dict, List, Optional, Tuple

import bench_backbone  # (first: it sets the profiler's log level before torch is imported)
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CONFIGS = {
    'classification': 'configs/classification/wavevit-s_8xb128_in1k.py',
    'detection': 'configs/detection/mask-rcnn_wavevit-s_fpn_1x_coco.py',
    'segmentation': 'configs/segmentation/upernet_wavevit-s_8xb2-160k_ade20k-512x512.py',
}
#: (batch, (H, W)) of the synthetic training batch per task: on the GPU, and in the dry run
SHAPES = {
    'classification': ((32, (224, 224)), (2, (64, 64))),
    'detection': ((2, (800, 1344)), (1, (96, 128))),
    'segmentation': ((4, (512, 512)), (2, (32, 32))),
}
log = bench_backbone.log


def optim_wrapper_cfg(cfg, dtype: str) -> dict:
    """The config's optimizer in mmengine's ``AmpOptimWrapper`` (``dtype`` autocast; dynamic loss scaling for
    float16), or for ``'float32'`` (the CPU dry run: ``AmpOptimWrapper`` needs a GPU) in ``OptimWrapper``."""
    wrapper = copy.deepcopy(dict(cfg.optim_wrapper))
    wrapper.pop('loss_scale', None)
    wrapper.pop('dtype', None)
    if dtype == 'float32':
        wrapper.update(type='OptimWrapper')
    else:
        wrapper.update(type='AmpOptimWrapper', dtype=dtype, loss_scale='dynamic' if dtype == 'float16' else 1.)
    return wrapper


def load_task(task: str, dry_run: bool) -> tuple:
    """The task's config, its scope and the batch size and input shape of its check."""
    from wavevit_mm.utils.model_utils import config_scope, load_config
    batch, shape = SHAPES[task][dry_run]
    cfg = load_config(os.path.join(ROOT, CONFIGS[task]))
    if cfg.model.get('data_preprocessor', {}).get('size'):  # mmseg pads every batch to the crop size
        cfg.model.data_preprocessor.size = shape
    return cfg, config_scope(cfg), batch, shape


def train_steps(model, data: dict, optim_wrapper, steps: int) -> Tuple[List[float], List[float]]:
    """``steps`` training steps on one batch (already through the data preprocessor): the total losses and the
    seconds of each step."""
    losses, times = [], []
    model.train()
    for _ in range(steps):
        start = time.perf_counter()
        with optim_wrapper.optim_context(model):
            loss, _ = unwrap(model).parse_losses(model(**data, mode='loss'))
        optim_wrapper.update_params(loss)
        losses.append(loss.item())
        times.append(time.perf_counter() - start)
    return losses, times


def unwrap(model):
    return getattr(model, 'module', model)


def check_losses(losses: List[float]) -> None:
    if not all(map(math.isfinite, losses)):
        raise RuntimeError(f'non-finite loss: {losses}')
    if not min(losses[-2:]) < losses[0]:
        raise RuntimeError(f'the loss did not decrease on a fixed batch: {losses}')


def check_training(task: str, dtypes: List[str], device: torch.device, steps: int, dry_run: bool) -> dict:
    """Steps of a real config's model through the AMP optimizer wrapper, per dtype, from the same weights."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope

    from wavevit_mm.utils.model_utils import build_model, make_batch
    cfg, scope, batch, shape = load_task(task, dry_run)
    with DefaultScope.overwrite_default_scope(scope):
        model = build_model(cfg, str(device))
        initial = copy.deepcopy(model.state_dict())
        data = make_batch(model, scope, shape, batch, with_gt=True)
        out = dict(config=CONFIGS[task], batch=batch, shape=list(shape), steps=steps)
        for dtype in dtypes:
            model.load_state_dict(initial)
            wrapper_cfg = optim_wrapper_cfg(cfg, dtype)
            optim_wrapper = build_optim_wrapper(model, dict(wrapper_cfg))
            losses, times = train_steps(model, data, optim_wrapper, steps)
            out[dtype] = dict(optim_wrapper=wrapper_cfg['type'], losses=losses, step_seconds=times)
            log(f'  {task} {dtype} ({wrapper_cfg["type"]}): losses ' + ' '.join(f'{v:.4g}' for v in losses)
                + ' (seconds per step: ' + ' '.join(f'{t:.2f}' for t in times) + ')')
            check_losses(losses)
    return out


def syncbn_worker(args: argparse.Namespace) -> None:
    """Inside ``torchrun``: SyncBN + DDP training steps of the segmentation model; writes ``args.worker_out``."""
    import torch.distributed as dist
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope

    from wavevit_mm.utils.model_utils import build_model, make_batch
    device = torch.device('cpu' if args.dry_run else f'cuda:{int(os.environ["LOCAL_RANK"])}')
    backend = 'gloo' if args.dry_run else 'nccl'
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    dist.init_process_group(backend)
    try:
        cfg, scope, batch, shape = load_task('segmentation', args.dry_run)
        with DefaultScope.overwrite_default_scope(scope):
            model = build_model(cfg, str(device))
            data = make_batch(model, scope, shape, batch, with_gt=True)
            if device.type == 'cuda':  # SyncBN needs a GPU; CPU runs keep BN (revert_sync_batchnorm)
                model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            n_sync = sum(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
            ddp = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == 'cuda' else None)
            optim_wrapper = build_optim_wrapper(ddp, optim_wrapper_cfg(cfg, 'float32' if args.dry_run else 'float16'))
            losses, times = train_steps(ddp, data, optim_wrapper, args.steps)
        result = dict(backend=backend, world_size=dist.get_world_size(), syncbn_layers=n_sync, losses=losses,
                      step_seconds=times, optim_wrapper=type(optim_wrapper).__name__)
        check_losses(losses)
        if device.type == 'cuda' and not n_sync:
            raise RuntimeError('no SyncBatchNorm layer in the model')
    finally:
        dist.destroy_process_group()
    with open(args.worker_out, 'w') as f:
        json.dump(result, f)


def check_syncbn(args: argparse.Namespace) -> dict:
    """Run :func:`syncbn_worker` under a 1-process ``torchrun --standalone``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'syncbn.json')
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '1',
               os.path.abspath(__file__), '--worker', 'syncbn', '--worker-out', out, '--steps', str(args.steps)]
        cmd += ['--dry-run'] if args.dry_run else []
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
        if proc.returncode or not os.path.isfile(out):
            raise RuntimeError(f'torchrun exited with {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
        with open(out) as f:
            result = json.load(f)
    log(f'  syncbn ({result["backend"]}, {result["syncbn_layers"]} SyncBatchNorm layers): losses '
        + ' '.join(f'{v:.4g}' for v in result['losses']))
    return result


def check_backbone(args: argparse.Namespace, device: torch.device) -> dict:
    """``bench_backbone.run`` at batch 64, 224 x 224 (dry run: 1 at 64), channels-last, fp16 training steps."""
    names = ['wavevit-s-dense', 'swin-t', 'pvtv2-b2'] + (['official-s-dense'] if args.official_src else [])
    half = 'bf16' if args.dry_run else 'fp16'  # CPUs have no fast float16 kernels
    bench_args = argparse.Namespace(
        batch=1 if args.dry_run else 64, size=[64] if args.dry_run else [224], models=names,
        modes=['fp32', 'bf16', 'train', 'train_cp'] if args.dry_run else ['fp32', 'fp16', 'bf16', 'train', 'train_cp'],
        official_src=args.official_src, warmup=1 if args.dry_run else 3, repeats=1 if args.dry_run else 10,
        timer='wall', profile=False)
    report = bench_backbone.run(bench_args, 'cls', device=device, train_dtype=half, channels_last=True,
                                matmul_size=256 if args.dry_run else 8192)
    log(bench_backbone.tables(report))
    return report


def run_check(name: str, fn: Callable[[], dict], report: dict) -> None:
    log(f'== {name}')
    start = time.perf_counter()
    try:
        report['checks'][name] = dict(status='ok', **fn())
    except Exception as exc:  # recorded, and the exit code says so; the other checks still run
        report['checks'][name] = dict(status='failed', error=f'{type(exc).__name__}: {exc}',
                                      traceback=traceback.format_exc())
        log(f'  FAILED: {type(exc).__name__}: {exc}')
    report['checks'][name]['seconds'] = time.perf_counter() - start


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--official-src', help='checkout of github.com/YehLi/ImageNetModel (root or classification/)')
    parser.add_argument('--out', help='JSON path; default benchmarks/results/gpu_check.json '
                        '(dry run: gpu_check_dry_run.json)')
    parser.add_argument('--dry-run', action='store_true', help='the same code on the CPU at toy sizes')
    parser.add_argument('--steps', type=int, help='training steps per check (default 10; dry run 3)')
    parser.add_argument('--worker', choices=['syncbn'], help=argparse.SUPPRESS)
    parser.add_argument('--worker-out', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.steps = args.steps or (3 if args.dry_run else 10)
    if args.official_src:
        try:
            args.official_src = bench_backbone.official_wavevit.find_source(args.official_src)
        except FileNotFoundError as exc:
            parser.error(str(exc))
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.worker:
        syncbn_worker(args)
        return 0
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit('gpu_check.py needs a CUDA GPU (torch.cuda.is_available() is False); '
                         '--dry-run runs the same code on the CPU at toy sizes')
    from mmengine.logging import MMLogger
    MMLogger.get_instance('gpu_check', log_level='WARNING')
    device = torch.device('cpu' if args.dry_run else 'cuda')
    start = time.perf_counter()
    report: Dict = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
                        command=' '.join(['python', os.path.relpath(sys.argv[0])] + sys.argv[1:]),
                        dry_run=args.dry_run, device=str(device), torch=torch.__version__, checks={})
    if device.type == 'cuda':
        report.update(gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda,
                      gpus=torch.cuda.device_count())
    dtypes = ['float16', 'bfloat16'] if device.type == 'cuda' else ['float32']
    for task in CONFIGS:
        run_check(f'train_{task}', lambda: check_training(task, dtypes, device, args.steps, args.dry_run), report)
    run_check('syncbn', lambda: check_syncbn(args), report)
    run_check('backbone', lambda: check_backbone(args, device), report)
    report['seconds'] = time.perf_counter() - start
    failed = [name for name, c in report['checks'].items() if c['status'] != 'ok']
    report['failed'] = failed
    out = args.out or os.path.join(HERE, 'results', 'gpu_check_dry_run.json' if args.dry_run else 'gpu_check.json')
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(report, f, indent=1)
    log(f'{len(report["checks"]) - len(failed)} of {len(report["checks"])} checks passed'
        + (f'; failed: {", ".join(failed)}' if failed else '') + f' in {report["seconds"]:.0f} s; wrote {out}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
