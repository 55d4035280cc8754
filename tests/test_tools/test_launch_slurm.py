"""tools/slurm_train.sh on a real single-node Slurm cluster, 2 CPU tasks (gloo).

(slurm_test.sh shares the srun set-up, tools/slurm/srun_args.sh, whose command lines test_launch_scripts.py
checks; test.py under a launcher runs in test_launch_dist.py. Both were also run on this cluster by hand.)

Needs a running Slurm (``bash tools/slurm/start_slurm.sh``; ``.ci/run`` starts one and stops it afterwards).
Without one the tests are skipped, except under CI (``CI`` set), where a missing cluster is an error.
"""
import os
import os.path as osp
import shutil
import subprocess

import pytest

from wavevit_mm.testing import launch as H


def _slurm_partition() -> str:
    """The default partition of a running cluster; skips (or fails under CI) when there is none."""
    why = None
    if not (shutil.which('srun') and shutil.which('sinfo') and shutil.which('scontrol')):
        why = 'Slurm is not installed (srun/sinfo/scontrol not found); run tools/slurm/start_slurm.sh'
    elif 'is UP' not in subprocess.run(['scontrol', 'ping'], capture_output=True, text=True).stdout:
        why = 'slurmctld is not running; start it with tools/slurm/start_slurm.sh'
    else:
        parts = subprocess.run(['sinfo', '-h', '-o', '%P'], capture_output=True, text=True).stdout.split()
        default = [p[:-1] for p in parts if p.endswith('*')]
        if not default:
            why = f'the Slurm cluster has no default partition (partitions: {parts})'
    if why:
        if os.environ.get('CI'):
            pytest.fail(f'{why} (under CI .ci/run must have started it)')
        pytest.skip(why)
    return default[0]


@pytest.fixture(scope='module')
def slurm(tmp_path_factory):
    partition = _slurm_partition()
    root = H.shared_root(tmp_path_factory)
    return partition, H.tiny_data(root), H.reference_run(root)


def test_slurm_train_two_cpu_tasks_equal_one_process(slurm, tmp_path):
    partition, data, reference = slurm
    work_dir = str(tmp_path / 'slurm')
    # GPUS_PER_NODE is left unset: the partition has no GPU GRES, so the script starts CPU tasks without --gres
    proc = H.run(['bash', osp.join(H.TOOLS, 'slurm_train.sh'), partition, 'wavevit_launch_test', H.CONFIG, work_dir,
                  *H.train_args(work_dir, H.GLOBAL_BATCH // 2)[2:]],
                 env=H.launch_env(data, GPUS='2', CPUS_PER_TASK='1', PORT=str(H.free_port()),
                                  SRUN_ARGS='--time=5'))
    assert 'no GPU GRES' in proc.stdout and '--gres' not in proc.stdout
    assert '--ntasks=2' in proc.stdout
    assert 'Distributed launcher: slurm' in proc.stdout
    weights = H.assert_ranks_agree(work_dir, world_size=2)
    H.assert_matches_reference(weights, reference)

