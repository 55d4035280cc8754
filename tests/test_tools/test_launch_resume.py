"""Killed trainings continue with ``tools/train.py --resume`` as if nothing had happened (docs/checkpoints.md):

- killed in the middle of epoch 3, a run ends with exactly the weights and optimizer state of an uninterrupted one;
- killed 22 times at targeted and random instants of checkpoint saves, no run is ever left without a complete
  checkpoint (and mmengine's own hook, for the contrast, is);
- with random augmentation (the digits config), the resumed run is bit-identical to an uninterrupted one.

Every ``torch.load`` in these runs is forced weights-only (``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1``): resuming
reads the checkpoint through torch's safe loader, which works because ``SafeCheckpointHook`` writes only
tensors and plain Python values. The runs are children of the fork server (conftest.py: ``fork_server``): separate
tools/train.py processes that skip the ~6 s of imports each, so that 30 runs fit in a minute or two.
"""
import os.path as osp
import random
import runpy
import shutil
import signal

import pytest
import torch

from wavevit_mm.testing import launch as H
from wavevit_mm.testing.faults import INSTANTS, checkpoint_files
from wavevit_mm.utils import load_checkpoint_file
from wavevit_mm.utils.paths import CONFIG_DIR


@pytest.fixture(scope='module')
def shared(tmp_path_factory):
    root = H.shared_root(tmp_path_factory)
    return H.tiny_data(root), H.reference_run(root)


def _load_full(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def test_killed_training_resumes_to_the_uninterrupted_result(shared, fork_server, tmp_path):
    _, reference = shared
    work_dir = str(tmp_path / 'crash')
    cmd = [H.CONFIG, *H.train_args(work_dir, H.GLOBAL_BATCH)]

    # 2 iterations per epoch: iteration 5 is the first of epoch 3, after epoch_2.pth was written
    killed = fork_server.run(cmd, log=str(tmp_path / 'killed.log'), env=dict(WAVEVIT_KILL_AT_ITER='5'))
    assert killed['exitcode'] == -signal.SIGKILL, killed['output'][-3000:]
    assert 'Epoch(train) [3][1/2]' in killed['output']
    assert not osp.exists(osp.join(work_dir, 'epoch_3.pth'))
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip() == osp.join(work_dir, 'epoch_2.pth')

    resumed = fork_server.run(cmd + ['--resume'], log=str(tmp_path / 'resumed.log'))
    assert resumed['exitcode'] == 0, resumed['output'][-3000:]
    assert f'Auto resumed from the latest checkpoint {osp.join(work_dir, "epoch_2.pth")}' in resumed['output']
    assert 'resumed epoch: 2, iter: 4' in resumed['output']
    assert 'Epoch(train) [1]' not in resumed['output']  # it continued, it did not start again

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



# --- kills at many instants around checkpoint saves; bit-identical resume with random augmentation ----------------

def _last_checkpoint(work_dir):
    """(basename, epoch) of the checkpoint ``last_checkpoint`` names, which must exist and load weights-only."""
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        path = f.read().strip()
    assert osp.isfile(path), f'last_checkpoint names {path}, which does not exist'
    checkpoint = load_checkpoint_file(path)  # raises unless complete and weights-only loadable
    return osp.basename(path), checkpoint['meta']['epoch']


def test_kills_around_checkpoint_saves_never_lose_a_checkpoint(fork_server, tmp_path):
    """22 SIGKILLs at targeted instants of a save (each file operation of AtomicCheckpointHook, caught with audit
    hooks) and at random times in its writing phase, max_keep_ckpts=1, each run resuming the one before: after
    every kill a complete, weights-only-loadable checkpoint is named by last_checkpoint, the next run resumes from
    it and the temporary files of killed writes are cleaned up."""
    work_dir = str(tmp_path / 'chain')
    base = [H.CONFIG, '--resume', *H.train_args(work_dir, H.GLOBAL_BATCH, [
        # 14 epochs: at most 1 + 2 x 2 targeted + 8 random kills come after a save completed, so every run dies
        'train_cfg.max_epochs=14', 'default_hooks.checkpoint.max_keep_ckpts=1', 'default_hooks.logger.interval=2'])]

    def run(i, instant, delay=0.):
        kill = ['default_hooks.kill.type=KillDuringSaveHook', f'default_hooks.kill.instant={instant}',
                f'default_hooks.kill.delay={delay}']
        result = fork_server.run(base + kill, log=str(tmp_path / f'run{i}.log'))
        assert result['exitcode'] == -signal.SIGKILL, f'run {i} ({instant}) was not killed:\n' + \
            result['output'][-4000:]
        return result

    run(0, 'after_save')
    last, epoch = _last_checkpoint(work_dir)
    assert (last, epoch) == ('epoch_1.pth', 1)
    rng = random.Random(0)
    plan = [(i, 0.) for i in INSTANTS] * 2 + [('delay', rng.uniform(0., 0.05)) for _ in range(8)]
    rng.shuffle(plan)
    seen, temps = set(), []
    for i, (instant, delay) in enumerate(plan, 1):
        result = run(i, instant, delay)
        assert f'resumed epoch: {epoch},' in result['output'], f'run {i} did not resume epoch {epoch}'
        for temp in temps:  # the previous kill's unfinished write is gone
            assert f'removed {osp.join(work_dir, temp)}' in result['output']
        new_last, new_epoch = _last_checkpoint(work_dir)
        assert new_epoch in (epoch, epoch + 1), (instant, epoch, new_epoch)  # never an older checkpoint
        files = checkpoint_files(work_dir)
        temps = [f for f in files if '.tmp-' in f]
        if temps:
            seen.add('killed while writing (temporary file left)')
        if f'epoch_{new_epoch + 1}.pth' in files:
            seen.add('killed after the rename, before last_checkpoint was updated')
        if new_epoch > epoch and f'epoch_{new_epoch - 1}.pth' in files:
            seen.add('killed before the old checkpoint was removed')
        last, epoch = new_last, new_epoch
    assert len(seen) == 3, f'the kills did not hit every phase of a save: {seen}'
    assert epoch >= 5  # the runs made progress: at least the kills after remove_old and after_save

    final = fork_server.run(base, log=str(tmp_path / 'final.log'))
    assert final['exitcode'] == 0, final['output'][-4000:]
    assert f'resumed epoch: {epoch},' in final['output']
    assert _last_checkpoint(work_dir) == ('epoch_14.pth', 14)


def test_mmengine_checkpoint_hook_loses_the_checkpoint_when_killed(fork_server, tmp_path):
    """The contrast: mmengine's own CheckpointHook deletes the old checkpoint before writing the new one, so the
    same kill test finds no checkpoint left (what AtomicCheckpointHook prevents)."""
    work_dir = str(tmp_path / 'plain')
    base = [H.CONFIG, '--resume', *H.train_args(work_dir, H.GLOBAL_BATCH, [
        'train_cfg.max_epochs=4', 'default_hooks.checkpoint.max_keep_ckpts=1',
        'default_hooks.checkpoint.type=MmengineOrderCheckpointHook', 'default_hooks.kill.type=KillDuringSaveHook'])]
    first = fork_server.run(base + ['default_hooks.kill.instant=after_save'], log=str(tmp_path / 'a.log'))
    assert first['exitcode'] == -signal.SIGKILL
    assert 'a kill while it saves can lose checkpoints' in first['output']  # tools/train.py warns
    # killed when the Runner hands over the new checkpoint: mmengine's hook has deleted the old one already
    second = fork_server.run(base + ['default_hooks.kill.instant=before_write'], log=str(tmp_path / 'b.log'))
    assert second['exitcode'] == -signal.SIGKILL and 'resumed epoch: 1,' in second['output']
    assert checkpoint_files(work_dir) == []
    with pytest.raises(AssertionError, match='epoch_1.pth, which does not exist'):
        _last_checkpoint(work_dir)


@pytest.fixture(scope='module')
def digits(tmp_path_factory):
    """scikit-learn's digits as the quickstart writes them, 200 of them: 160 train / 40 val images, 5 batches."""
    root = str(tmp_path_factory.mktemp('digits') / 'digits')
    runpy.run_path(osp.join(H.TOOLS, 'quickstart.py'))['write_digits'](root, 32, 200)
    return root


ITER_BASED = """_base_ = {config!r}
# the digits recipe as an iteration-based run (as the ADE20K configs are): 15 iterations, checkpoint and
# validation every 5
train_dataloader = dict(sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=15, val_interval=5)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=5),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False, begin=5, end=15),
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=5))
log_processor = dict(by_epoch=False)
"""


@pytest.mark.parametrize('loop, num_workers', [('epoch', 0), ('epoch', 2), ('iter', 2)])
def test_resume_is_bit_identical_with_random_augmentation(fork_server, digits, tmp_path, loop, num_workers):
    """The digits config (random resized crops, label smoothing, warmup + cosine), 15 iterations of 32 images with
    validation after every 5; killed in iteration 11, resumed from the checkpoint of iteration 10: the final
    weights equal those of an uninterrupted run bit for bit, epoch-based with the transforms in this process
    (num_workers=0) or in 2 workers, and iteration-based with 2 workers. Without the random states in the
    checkpoint the result differs."""
    config = osp.join(CONFIG_DIR, 'classification', 'wavevit-tiny_digits.py')
    options = ['randomness.seed=0', f'train_dataloader.num_workers={num_workers}']
    if loop == 'epoch':
        options += ['train_cfg.max_epochs=3', 'train_cfg.val_interval=1', 'param_scheduler.1.end=3']
        checkpoint, final = 'epoch_2.pth', 'epoch_3.pth'
    else:
        (tmp_path / 'iter_based.py').write_text(ITER_BASED.format(config=config))
        config, checkpoint, final = str(tmp_path / 'iter_based.py'), 'iter_10.pth', 'iter_15.pth'

    def args(work_dir, *extra):
        return [config, '--work-dir', str(work_dir), '--cfg-options', *[
            f'{k}.dataset.data_root={digits}' for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')],
            *options, *extra]

    reference = fork_server.run(args(tmp_path / 'reference'), log=str(tmp_path / 'reference.log'))
    assert reference['exitcode'] == 0, reference['output'][-4000:]
    crashed = tmp_path / 'crashed'
    killed = fork_server.run(args(crashed, 'default_hooks.kill.type=KillAfterIterHook',
                                  'default_hooks.kill.kill_at_iter=11'), log=str(tmp_path / 'killed.log'))
    assert killed['exitcode'] == -signal.SIGKILL and 'accuracy/top1' in killed['output']  # validated, then killed
    assert checkpoint_files(str(crashed)) == [checkpoint]
    if num_workers == 0:  # the same checkpoint without its random states, for the contrast
        shutil.copytree(crashed, tmp_path / 'stateless')
        stripped = load_checkpoint_file(str(tmp_path / 'stateless' / checkpoint))
        del stripped['random_states']
        torch.save(stripped, tmp_path / 'stateless' / checkpoint)
    resumed = fork_server.run(args(crashed) + ['--resume'], log=str(tmp_path / 'resumed.log'))
    assert resumed['exitcode'] == 0, resumed['output'][-4000:]
    assert 'restored the random states of iteration 10 from the checkpoint' in resumed['output']
    assert 'not bit-identical' not in resumed['output']
    expected = H.load_weights(str(tmp_path / 'reference' / final))
    assert H.max_abs_diff(H.load_weights(str(crashed / final)), expected) == 0.

    if num_workers == 0:
        stateless = tmp_path / 'stateless'
        result = fork_server.run(args(stateless) + ['--resume', str(stateless / checkpoint)],
                                 log=str(tmp_path / 'stateless.log'))
        assert result['exitcode'] == 0, result['output'][-4000:]
        assert 'holds no random states' in result['output']
        assert H.max_abs_diff(H.load_weights(str(stateless / final)), expected) > 1e-3


def test_resume_is_bit_identical_in_two_processes(fork_server, digits, tmp_path):
    """Two processes with their own random streams (randomness.diff_rank_seed=True, the transforms in each process):
    each checkpoint holds both processes' states and each resumed process continues its own, bit for bit."""
    config = osp.join(CONFIG_DIR, 'classification', 'wavevit-tiny_digits.py')

    def run(work_dir, log, *extra):
        argv = [config, '--work-dir', str(work_dir), '--launcher', 'pytorch', '--cfg-options', *[
            f'{k}.dataset.data_root={digits}' for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')],
            'randomness.seed=0', 'randomness.diff_rank_seed=True', 'train_dataloader.batch_size=16',
            'train_cfg.max_epochs=3', 'train_cfg.val_interval=1', 'param_scheduler.1.end=3', *extra]
        return fork_server.run(argv, log=str(tmp_path / log), nproc=2)

    reference = run(tmp_path / 'reference', 'reference.log')
    assert reference['exitcodes'] == [0, 0], reference['output'][-4000:]
    crashed = tmp_path / 'crashed'
    killed = run(crashed, 'killed.log', 'default_hooks.kill.type=KillAfterIterHook',
                 'default_hooks.kill.kill_at_iter=11')
    assert killed['exitcodes'] == [-signal.SIGKILL] * 2, killed['output'][-4000:]
    states = load_checkpoint_file(str(crashed / 'epoch_2.pth'))['random_states']['states']
    assert len(states) == 2 and not torch.equal(states[0]['numpy']['keys'], states[1]['numpy']['keys'])
    resumed = run(crashed, 'resumed.log', '--resume')
    assert resumed['exitcodes'] == [0, 0], resumed['output'][-4000:]
    assert 'restored the random states of iteration 10 from the checkpoint' in resumed['output']
    assert H.max_abs_diff(H.load_weights(str(crashed / 'epoch_3.pth')),
                          H.load_weights(str(tmp_path / 'reference' / 'epoch_3.pth'))) == 0.
