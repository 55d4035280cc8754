"""tools/dist_train.sh and tools/dist_test.sh: 2 CPU processes (torchrun + gloo) on the tiny config.

The 2-process run (batch 4 per process) must agree across ranks and equal the 1-process reference run (batch
8): wavevit_mm/testing/configs/tiny_cls.py explains why the tiny config makes the two runs the same computation.
"""
import os.path as osp

import pytest

from wavevit_mm.testing import launch as H


@pytest.fixture(scope='module')
def shared(tmp_path_factory):
    root = H.shared_root(tmp_path_factory)
    return H.tiny_data(root), H.reference_run(root)


def test_dist_train_two_cpu_processes_equal_one(shared, tmp_path):
    data, reference = shared
    work_dir = str(tmp_path / 'dist')
    proc = H.run(['bash', osp.join(H.TOOLS, 'dist_train.sh'), H.CONFIG, '2',
                  *H.train_args(work_dir, H.GLOBAL_BATCH // 2)],
                 env=H.launch_env(data, PORT=str(H.free_port())))
    assert 'Distributed training: True' in proc.stdout
    weights = H.assert_ranks_agree(work_dir, world_size=2)
    H.assert_matches_reference(weights, reference)
    # validation ran distributed too (each process half of the val set) and gives the 1-process accuracy
    assert H.top1_from_log(proc.stdout) == H.reference_top1(reference)


def test_dist_test_two_cpu_processes(shared, tmp_path):
    data, reference = shared
    proc = H.run(['bash', osp.join(H.TOOLS, 'dist_test.sh'), H.CONFIG, osp.join(reference, 'epoch_3.pth'), '2',
                  '--work-dir', str(tmp_path / 'test'), '--cfg-options', 'test_dataloader.batch_size=2'],
                 env=H.launch_env(data, PORT=str(H.free_port())))
    assert 'Distributed training: True' in proc.stdout
    assert H.top1_from_log(proc.stdout) == H.reference_top1(reference)


def test_dist_train_usage_error():
    proc = H.run(['bash', osp.join(H.TOOLS, 'dist_train.sh'), H.CONFIG], env=H.launch_env('unused'), check=False)
    assert proc.returncode == 2 and 'usage:' in proc.stdout
