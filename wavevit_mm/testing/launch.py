"""Helpers shared by the launch tests (tests/test_tools/test_launch_*.py): tiny data, running the launch scripts, comparing weights."""
import glob
import os
import os.path as osp
import re
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..utils.paths import PROJECT_ROOT as REPO_ROOT, TOOLS_DIR as TOOLS  # noqa: F401 (REPO_ROOT: tests)

#: the launch tests' tiny classification config (see its header)
CONFIG = osp.join(osp.dirname(osp.abspath(__file__)), 'configs', 'tiny_cls.py')
PYTHON = sys.executable
#: the global batch of every run compared with the reference (1 process x 8 or 2 processes x 4)
GLOBAL_BATCH = 8
NUM_CLASSES = 4
#: 3 epochs of 16 images at batch 8: 6 iterations
MAX_ITERS = 6

_cache: Dict[str, str] = {}


def make_tiny_imagenet(root: str, per_class_train: int = 4, per_class_val: int = 2) -> str:
    """Write 32x32 PNGs in the ImageNet folder layout ``root/{train,val}/class<k>/*.png``.

    Each class has its own colour pattern plus noise (so the tiny model has something to learn); the
    images are made from a fixed seed, so every call writes the same files.
    """
    import cv2
    rng = np.random.default_rng(0)
    for split, n in (('train', per_class_train), ('val', per_class_val)):
        for k in range(NUM_CLASSES):
            d = osp.join(root, split, f'class{k}')
            os.makedirs(d, exist_ok=True)
            base = np.zeros((32, 32, 3), np.float32)
            base[..., k % 3] = 160.
            if k >= 3:
                base[::4] = 255.
            for i in range(n):
                img = np.clip(base + rng.normal(0., 40., base.shape), 0, 255).astype(np.uint8)
                cv2.imwrite(osp.join(d, f'{i}.png'), img)
    return root


def shared_root(tmp_path_factory) -> str:
    """One directory per test session for the data and the reference run (shared by the test modules)."""
    root = osp.join(str(tmp_path_factory.getbasetemp()), 'launch_shared')
    os.makedirs(root, exist_ok=True)
    return root


def tiny_data(tmp_root: str) -> str:
    """The tiny data set, made once per test session under ``tmp_root``."""
    if 'data' not in _cache:
        _cache['data'] = make_tiny_imagenet(osp.join(tmp_root, 'tiny_imagenet'))
    return _cache['data']


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def launch_env(data_root: str, **extra: str) -> Dict[str, str]:
    """Environment for a launched run: the venv's python first on PATH, the data root for the tiny config,
    and one thread per process (2 processes share 2 cores). wavevit_mm (and its test hooks) come from the
    installed package, so nothing is added to ``PYTHONPATH``."""
    env = dict(os.environ)
    env['PATH'] = osp.dirname(PYTHON) + os.pathsep + env.get('PATH', '')
    env['WAVEVIT_TINY_DATA'] = data_root
    env['OMP_NUM_THREADS'] = '1'
    # every torch.load in the run is weights-only, even one that asked for weights_only=False
    env['TORCH_FORCE_WEIGHTS_ONLY_LOAD'] = '1'
    env.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    env.update(extra)
    return env


def run(cmd: Sequence[str], env: Dict[str, str], cwd: Optional[str] = None, timeout: float = 240,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run a command, raising with its output if it fails (or ``check=False``: return it regardless)."""
    t0 = time.time()
    proc = subprocess.run(list(cmd), env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'command failed with exit code {proc.returncode} after {time.time() - t0:.1f}s: '
                             f'{" ".join(cmd)}\n--- output (last 6000 chars) ---\n{proc.stdout[-6000:]}')
    return proc


def train_args(work_dir: str, per_process_batch: int, extra_options: Sequence[str] = ()) -> List[str]:
    """The ``tools/train.py`` arguments shared by every run of the tiny config."""
    return ['--work-dir', work_dir, '--cfg-options', f'train_dataloader.batch_size={per_process_batch}',
            f'val_dataloader.batch_size={per_process_batch}', f'test_dataloader.batch_size={per_process_batch}',
            *extra_options]


def reference_run(tmp_root: str) -> str:
    """One process, batch 8, 3 epochs, no interruption: the work dir every other run is compared with."""
    if 'reference' not in _cache:
        data = tiny_data(tmp_root)
        work_dir = osp.join(tmp_root, 'reference')
        run([PYTHON, osp.join(TOOLS, 'train.py'), CONFIG, *train_args(work_dir, GLOBAL_BATCH)],
            env=launch_env(data))
        _cache['reference'] = work_dir
    return _cache['reference']


def load_weights(path: str) -> Dict[str, torch.Tensor]:
    """A checkpoint's (or a plain state dict's) tensors, loaded weights-only."""
    obj = torch.load(path, map_location='cpu', weights_only=True)
    return obj.get('state_dict', obj) if isinstance(obj, dict) else obj


def max_abs_diff(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> float:
    """Largest elementwise difference over all floating-point tensors (the key sets must match)."""
    assert a.keys() == b.keys(), f'different keys: {sorted(set(a) ^ set(b))[:10]}'
    worst = 0.
    for k in a:
        if a[k].is_floating_point():
            worst = max(worst, (a[k].double() - b[k].double()).abs().max().item())
        else:
            assert torch.equal(a[k], b[k]), k
    return worst


def top1_from_log(text: str) -> float:
    """The last ``accuracy/top1`` value mmengine logged."""
    found = re.findall(r'accuracy/top1: ([0-9.]+)', text)
    assert found, 'no accuracy/top1 in the log'
    return float(found[-1])


def reference_top1(reference_dir: str) -> float:
    """The reference run's final validation accuracy (1 process, the epoch-3 weights)."""
    logs = glob.glob(osp.join(reference_dir, '*', '*.log'))
    assert len(logs) == 1, logs
    with open(logs[0]) as f:
        return top1_from_log(f.read())


def assert_ranks_agree(work_dir: str, world_size: int) -> Dict[str, torch.Tensor]:
    """Every rank wrote its final weights and they are identical (DDP keeps replicas in lockstep)."""
    ranks = [load_weights(osp.join(work_dir, f'rank{r}_final.pth')) for r in range(world_size)]
    for r in range(1, world_size):
        assert max_abs_diff(ranks[0], ranks[r]) == 0., f'rank {r} differs from rank 0'
    # the checkpoint rank 0 saved is those weights
    assert max_abs_diff(load_weights(osp.join(work_dir, 'epoch_3.pth')), ranks[0]) == 0.
    return ranks[0]


#: N processes x batch B against 1 process x batch N*B: the same sums in a different order (per-process means,
#: then the all-reduce average), amplified a little by AdamW's normalisation; measured about 4e-6
MULTI_PROCESS_ATOL = 3e-5


def assert_matches_reference(weights: Dict[str, torch.Tensor], reference_dir: str,
                             atol: float = MULTI_PROCESS_ATOL) -> float:
    """``weights`` equal the reference run's final weights within ``atol``; returns the difference.

    Also checks that the comparison means something: training moved the reference weights between its
    first and last epoch by far more than ``atol``.
    """
    final = load_weights(osp.join(reference_dir, 'epoch_3.pth'))
    moved = max_abs_diff(load_weights(osp.join(reference_dir, 'epoch_1.pth')), final)
    assert moved > 30 * atol, f'the reference weights hardly changed in training ({moved})'
    diff = max_abs_diff(weights, final)
    assert diff <= atol, f'weights differ from the 1-process run by {diff:.3g} (> {atol:g})'
    return diff
