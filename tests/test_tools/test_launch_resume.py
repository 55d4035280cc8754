"""A training killed mid-way (SIGKILL after its epoch-2 checkpoint, in the middle of epoch 3) continues with
``tools/train.py --resume`` and ends with exactly the weights and optimizer state of an uninterrupted run.

Every ``torch.load`` in these runs is forced weights-only (``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1``): resuming
reads the checkpoint through torch's safe loader, which works because ``SafeCheckpointHook`` writes only
tensors and plain Python values.
"""
import os.path as osp
import signal

import pytest
import torch

from wavevit_mm.testing import launch as H


@pytest.fixture(scope='module')
def shared(tmp_path_factory):
    root = H.shared_root(tmp_path_factory)
    return H.tiny_data(root), H.reference_run(root)


def _load_full(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def test_killed_training_resumes_to_the_uninterrupted_result(shared, tmp_path):
    data, reference = shared
    work_dir = str(tmp_path / 'crash')
    cmd = [H.PYTHON, osp.join(H.TOOLS, 'train.py'), H.CONFIG, *H.train_args(work_dir, H.GLOBAL_BATCH)]

    # 2 iterations per epoch: iteration 5 is the first of epoch 3, after epoch_2.pth was written
    proc = H.run(cmd, env=H.launch_env(data, WAVEVIT_KILL_AT_ITER='5'), check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-3000:]
    assert 'Epoch(train) [3][1/2]' in proc.stdout
    assert not osp.exists(osp.join(work_dir, 'epoch_3.pth'))
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip() == osp.join(work_dir, 'epoch_2.pth')

    proc = H.run(cmd + ['--resume'], env=H.launch_env(data))
    assert f'Auto resumed from the latest checkpoint {osp.join(work_dir, "epoch_2.pth")}' in proc.stdout
    assert 'resumed epoch: 2, iter: 4' in proc.stdout
    assert 'Epoch(train) [1]' not in proc.stdout  # it continued, it did not start again

    resumed, uninterrupted = _load_full(osp.join(work_dir, 'epoch_3.pth')), _load_full(
        osp.join(reference, 'epoch_3.pth'))
    # same process count, same batches, deterministic kernels: bit-identical, not merely close
    assert H.max_abs_diff(resumed['state_dict'], uninterrupted['state_dict']) == 0.
    opt_a, opt_b = resumed['optimizer']['state'], uninterrupted['optimizer']['state']
    assert opt_a.keys() == opt_b.keys() and opt_a
    for k in opt_a:
        assert H.max_abs_diff(opt_a[k], opt_b[k]) == 0., f'optimizer state of parameter {k}'
    assert resumed['meta']['epoch'] == uninterrupted['meta']['epoch'] == 3
    assert resumed['meta']['iter'] == uninterrupted['meta']['iter'] == H.MAX_ITERS

