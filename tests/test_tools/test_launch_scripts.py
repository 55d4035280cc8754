"""The command lines the launch scripts build, with stand-ins for srun / sinfo / python that print their
arguments: the GPU cases (which this machine cannot run) must match the OpenMMLab scripts' commands."""
import os
import os.path as osp
import stat
import subprocess

import pytest

from wavevit_mm.testing import launch as H


@pytest.fixture
def fake_bin(tmp_path):
    """A directory with ``srun``, ``sinfo`` (GRES from $FAKE_GRES) and ``python`` stand-ins."""
    scripts = {
        'srun': 'echo "srun $*"; echo "PYTHONPATH=$PYTHONPATH OMP_NUM_THREADS=$OMP_NUM_THREADS MASTER_PORT=$MASTER_PORT"',
        'sinfo': 'echo "${FAKE_GRES:-(null)}"',
        'python': 'echo "python $*"; echo "PYTHONPATH=$PYTHONPATH"',
    }
    for name, body in scripts.items():
        path = tmp_path / name
        path.write_text(f'#!/usr/bin/env bash\n{body}\n')
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(tmp_path)


def _run(fake_bin, script, *args, **env_extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ('GPUS', 'GPUS_PER_NODE', 'TASKS_PER_NODE', 'CPUS_PER_TASK', 'SRUN_ARGS', 'PORT',
                        'OMP_NUM_THREADS', 'MASTER_PORT', 'PYTHONPATH', 'NNODES', 'NODE_RANK', 'MASTER_ADDR',
                        'PYTHON')}
    env['PATH'] = fake_bin + os.pathsep + env['PATH']
    env.update(env_extra)
    proc = subprocess.run(['bash', osp.join(H.TOOLS, script), *args], env=env, capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, proc.stderr


def test_slurm_train_gpu_partition_matches_openmmlab(fake_bin):
    out, _ = _run(fake_bin, 'slurm_train.sh', 'gpu', 'job', 'cfg.py', 'wd', '--amp', GPUS='16',
                  FAKE_GRES='gpu:8(S:0-1)', SRUN_ARGS='--quotatype=auto')
    assert (f'srun -p gpu --job-name=job --gres=gpu:8 --ntasks=16 --ntasks-per-node=8 --cpus-per-task=5 '
            f'--kill-on-bad-exit=1 --quotatype=auto python -u {H.TOOLS}/train.py cfg.py --work-dir=wd '
            f'--launcher=slurm --amp') in out
    assert f'PYTHONPATH={H.REPO_ROOT} OMP_NUM_THREADS= MASTER_PORT=\n' in out  # GPU jobs: as mm's scripts


def test_slurm_test_cpu_partition(fake_bin):
    out, err = _run(fake_bin, 'slurm_test.sh', 'cpu', 'job', 'cfg.py', 'ck.pth', GPUS='4', CPUS_PER_TASK='8',
                    PORT='29900')
    assert 'no GPU GRES' in err
    assert (f'srun -p cpu --job-name=job --ntasks=4 --ntasks-per-node=4 --cpus-per-task=8 --kill-on-bad-exit=1 '
            f'python -u {H.TOOLS}/test.py cfg.py ck.pth --launcher=slurm') in out
    assert 'OMP_NUM_THREADS=8 MASTER_PORT=29900' in out


def test_slurm_explicit_gpus_per_node_wins(fake_bin):
    out, _ = _run(fake_bin, 'slurm_train.sh', 'p', 'j', 'c.py', 'w', GPUS='4', GPUS_PER_NODE='4')
    assert '--gres=gpu:4 --ntasks=4 --ntasks-per-node=4 --cpus-per-task=5' in out


def test_dist_train_torchrun_arguments(fake_bin):
    out, _ = _run(fake_bin, 'dist_train.sh', 'cfg.py', '8', '--resume', NNODES='2', NODE_RANK='1',
                  MASTER_ADDR='10.0.0.1', PORT='29700')
    assert (f'python -m torch.distributed.run --nnodes=2 --node_rank=1 --master_addr=10.0.0.1 --master_port=29700 '
            f'--nproc_per_node=8 {H.TOOLS}/train.py cfg.py --launcher pytorch --resume') in out


def test_dist_test_torchrun_arguments(fake_bin):
    out, _ = _run(fake_bin, 'dist_test.sh', 'cfg.py', 'ck.pth', '2', '--out', 'r.pkl')
    assert (f'python -m torch.distributed.run --nnodes=1 --node_rank=0 --master_addr=127.0.0.1 --master_port=29500 '
            f'--nproc_per_node=2 {H.TOOLS}/test.py cfg.py ck.pth --launcher pytorch --out r.pkl') in out
