"""``mim train wavevit_mm CONFIG`` and ``mim test wavevit_mm CONFIG --checkpoint CKPT`` from a directory outside
the repository, the training with mim's ``--launcher pytorch --gpus 2`` (2 CPU processes, gloo).

mim 0.3.9 finds the package's ``tools/train.py`` / ``tools/test.py`` under ``<distribution location>/wavevit_mm/
.mim/tools``; tools/setup_env.sh installs the checkout with an egg-link so that location is the checkout
(tests/test_registry.py checks mim without ``PYTHONPATH``); the tiny config's hooks come from the installed
``wavevit_mm.testing.hooks``. A PEP 660 editable install needs ``PYTHONPATH=<checkout>`` for mim
(docs/distributed.md).
"""
import os.path as osp
import shutil

import pytest

from wavevit_mm.testing import launch as H

MIM = osp.join(osp.dirname(H.PYTHON), 'mim')


@pytest.fixture(scope='module')
def shared(tmp_path_factory):
    if not osp.exists(MIM):
        pytest.fail(f'mim (openmim) is not installed next to {H.PYTHON}')
    if not osp.isfile(osp.join(H.REPO_ROOT, 'wavevit_mm', '.mim', 'tools', 'train.py')):
        pytest.fail('wavevit_mm/.mim/tools is missing: install the package with `pip install -e .` '
                    '(tools/setup_env.sh does)')
    if not osp.isdir(osp.join(H.REPO_ROOT, 'wavevit_mm.egg-info')):
        pytest.fail('wavevit_mm.egg-info is missing from the checkout: `pip install -e .` writes it, and mim '
                    'finds the checkout through it')
    root = H.shared_root(tmp_path_factory)
    return H.tiny_data(root), H.reference_run(root)


def test_mim_train_pytorch_launcher_and_mim_test(shared, tmp_path):
    data, reference = shared
    cwd = tmp_path / 'elsewhere'
    cwd.mkdir()
    config = str(cwd / 'my_tiny_cls.py')  # a user's config outside the repo
    shutil.copyfile(H.CONFIG, config)
    env = H.launch_env(data)
    mim_tools = osp.join(H.REPO_ROOT, 'wavevit_mm', '.mim', 'tools')

    port = H.free_port()
    proc = H.run([MIM, 'train', 'wavevit_mm', config, '--launcher', 'pytorch', '--gpus', '2', '--port', str(port),
                  *H.train_args('work', H.GLOBAL_BATCH // 2)], env=env, cwd=str(cwd))
    assert f'torch.distributed.launch --nproc_per_node=2 --master_port={port} {mim_tools}/train.py' in proc.stdout
    assert 'Training finished successfully' in proc.stdout
    work_dir = str(cwd / 'work')  # relative --work-dir: relative to the directory mim was started in
    weights = H.assert_ranks_agree(work_dir, world_size=2)
    H.assert_matches_reference(weights, reference)

    proc = H.run([MIM, 'test', 'wavevit_mm', config, '--checkpoint', osp.join(work_dir, 'epoch_3.pth'),
                  '--work-dir', 'test_work'], env=env, cwd=str(cwd))
    assert f'{mim_tools}/test.py' in proc.stdout and 'Testing finished successfully' in proc.stdout
    assert H.top1_from_log(proc.stdout) == H.reference_top1(reference)
