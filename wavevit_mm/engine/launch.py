"""What ``tools/train.py`` and ``tools/test.py`` share: one pair of tools for mmpretrain, mmdet and mmseg.

The config's ``default_scope`` picks the library; this module applies the usual command-line flags and
makes the run work on a machine without a GPU as well as with one:

- ``SafeCheckpointHook`` is added, so the checkpoints written load with ``weights_only=True``;
- without CUDA, ``SyncBN`` layers in the model config become ``BN`` (SyncBN needs CUDA), the
  distributed backend becomes ``gloo`` with a timeout of minutes, the process group is set up before the
  Runner and DDP wraps CPU modules (see :mod:`wavevit_mm.engine.dist`), and
  ``AmpOptimWrapper`` (fp16, GPU only in mmengine) becomes ``AutocastOptimWrapper`` (bfloat16 autocast), or
  float32 for detectors whose RPN / RoI heads run mmcv's NMS / RoIAlign in training (float32-only on CPU).
"""
import argparse
import os
import os.path as osp
import sys
from typing import Any, Callable, Optional

import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log

from ..utils.model_utils import iter_dicts
from .dist import DEFAULT_TIMEOUT_S, cpu_ddp_wrapper_cfg, setup_dist, stalled_rank_report  # noqa: F401 (tools)
from .resume import add_missing_hooks

SYNC_BN_TYPES = ('SyncBN', 'MMSyncBN', 'TorchSyncBN')


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--work-dir', help='the directory for logs and checkpoints')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs (e.g. '
                        'train_dataloader.batch_size=2 model.backbone.with_cp=True)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def replace_sync_bn(node: Any) -> int:
    """Turn every ``norm_cfg``-style ``dict(type='SyncBN', ...)`` into ``BN``; returns how many.

    For the model config of a distributed run without CUDA (torch's SyncBatchNorm needs a GPU); a model built
    for one process is reverted by mmengine's Runner itself (``revert_sync_batchnorm``).
    """
    found = [d for d in iter_dicts(node) if d.get('type') in SYNC_BN_TYPES]
    for d in found:
        d['type'] = 'BN'
    return len(found)


def adapt_to_device(cfg: Config) -> Config:
    """Make a GPU-minded config run on this machine: SyncBN -> BN and gloo when there is no CUDA."""
    add_missing_hooks(cfg, ('SafeCheckpointHook', ))
    if torch.cuda.is_available():
        return cfg
    n = replace_sync_bn(cfg.get('model'))
    if n:
        print_log(f'no CUDA device: {n} SyncBN layer config(s) use BN instead', logger='current')
    optim_wrapper = cfg.get('optim_wrapper')
    if optim_wrapper is not None and optim_wrapper.get('type') == 'AmpOptimWrapper':
        optim_wrapper.pop('loss_scale', None)
        if _uses_mmcv_box_ops(cfg.get('model')):
            optim_wrapper.type = 'OptimWrapper'
            print_log('no CUDA device: AmpOptimWrapper (fp16) -> OptimWrapper (float32): mmcv\'s CPU NMS and '
                      'RoIAlign, which the RPN / RoI heads of this detector run in training, have no bfloat16 '
                      'kernels', logger='current')
        else:
            optim_wrapper.type = 'AutocastOptimWrapper'
            optim_wrapper.dtype = 'bfloat16'
            print_log('no CUDA device: AmpOptimWrapper (fp16) -> AutocastOptimWrapper (bfloat16 autocast on CPU)',
                      logger='current')
    env_cfg = cfg.get('env_cfg') or ConfigDict()
    env_cfg.setdefault('dist_cfg', ConfigDict())
    env_cfg.dist_cfg.backend = 'gloo'
    env_cfg.dist_cfg.setdefault('timeout', DEFAULT_TIMEOUT_S)  # a stalled rank fails the run in minutes
    cfg.env_cfg = env_cfg
    if cfg.get('launcher', 'none') != 'none':
        if cfg.get('model_wrapper_cfg') is None:
            cfg.model_wrapper_cfg = cpu_ddp_wrapper_cfg(cfg.get('find_unused_parameters', False))
        elif _is_ddp_wrapper(cfg.model_wrapper_cfg) and 'device_ids' not in cfg.model_wrapper_cfg:
            # the Runner would add device_ids=[LOCAL_RANK], which DDP refuses for CPU modules
            cfg.model_wrapper_cfg.device_ids = None
    return cfg


def _uses_mmcv_box_ops(model_cfg: Optional[dict]) -> bool:
    """Whether a model trains through mmcv's NMS / RoIAlign (two-stage and query-based detectors: an
    ``rpn_head`` or a ``roi_head``), whose CPU kernels take float32 only."""
    return isinstance(model_cfg, dict) and any(k in model_cfg for k in ('rpn_head', 'roi_head'))


def _is_ddp_wrapper(wrapper_cfg: dict) -> bool:
    """Whether a ``model_wrapper_cfg`` builds a ``DistributedDataParallel`` subclass (mmengine's default)."""
    from mmengine.registry import MODEL_WRAPPERS
    from torch.nn.parallel import DistributedDataParallel
    wrapper = MODEL_WRAPPERS.get(wrapper_cfg.get('type', 'MMDistributedDataParallel'))
    return isinstance(wrapper, type) and issubclass(wrapper, DistributedDataParallel)


def build_runner(cfg: Config):
    """``Runner.from_cfg`` or the config's ``runner_type``, after importing wavevit_mm's modules and, on a
    machine without CUDA, initialising the process group of a distributed launch (the Runner then uses it)."""
    import wavevit_mm  # noqa: F401  (registers WaveViT, the head and SafeCheckpointHook)
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    setup_dist(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def set_amp(cfg: Config) -> None:
    """``--amp``: ``AmpOptimWrapper`` with dynamic loss scaling (on CPU, :func:`adapt_to_device` turns it into
    bfloat16 autocast, or float32 for the detectors that train through mmcv's float32-only box ops)."""
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def set_tta(cfg: Config) -> None:
    """``--tta``: wrap the model in the config's ``tta_model`` and test with its ``tta_pipeline``."""
    missing = [k for k in ('tta_model', 'tta_pipeline') if k not in cfg]
    if missing:
        raise KeyError(f'--tta needs {missing} in the config (see the segmentation configs for an example)')
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def run_cli(main: Callable[[], Any]) -> None:
    """Run a tool's ``main()``; a user error (a missing file, a checkpoint that cannot be used, a work dir in use)
    ends with its message on stderr and exit status 1 instead of a traceback through the Runner's internals.

    Such errors already name the file, what is wrong and the fix. ``WAVEVIT_TRACEBACK=1`` shows the traceback.
    """
    from ..utils.safe_load import CheckpointError
    from .checkpoint_check import CheckpointMismatchError
    from .run_lock import WorkDirLockedError
    try:
        main()
    except (FileNotFoundError, CheckpointError, CheckpointMismatchError, WorkDirLockedError) as exc:
        if os.environ.get('WAVEVIT_TRACEBACK'):
            raise
        print(f'error: {exc}', file=sys.stderr)
        sys.exit(1)
