"""The checks of what a run loads (CheckpointFitHook), what tools/train.py sets up (use_safe_checkpointing,
set_resume, the work-dir lock) and the random states RandomStateHook stores (end-to-end in test_launch_resume.py)."""
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config

from wavevit_mm.engine.checkpoint_check import CheckpointMismatchError, check_checkpoint_fits, check_resumable
from wavevit_mm.engine.hooks.random_state_hook import capture_random_states, restore_random_states
from wavevit_mm.engine.resume import set_resume, use_safe_checkpointing
from wavevit_mm.engine.run_lock import lock_work_dir


@pytest.fixture
def model():
    return torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))


def _state(model, **changes):
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state.update(changes)
    return {'state_dict': state}


@pytest.mark.parametrize('change, message', [
    (dict(**{'0.weight': [[0.5] * 4] * 4}), r'1 values are not tensors: 0.weight \(list\)'),
    (dict(**{'2.bias': torch.tensor([0., float('nan')])}), r'1 tensors hold NaN or infinite values \(a diverged run '
                                                            r'or a damaged file\): 2.bias \(1 of 2 values\)'),
    (dict(**{'0.weight': torch.ones(4, 4, dtype=torch.int64)}), r'1 tensors have the wrong kind of dtype: 0.weight: '
                                                                r'torch.int64 for a floating-point torch.float32'),
])
@pytest.mark.parametrize('exact', [True, False])
def test_unusable_values_are_refused(model, change, message, exact):
    with pytest.raises(CheckpointMismatchError, match=f'checkpoint ckpt.pth does not hold usable weights:\n  '
                                                      f'{message}'):
        check_checkpoint_fits(model, _state(model, **change), 'ckpt.pth', exact=exact)


def test_half_precision_weights_fit(model):
    check_checkpoint_fits(model, {'state_dict': {k: v.half() if v.is_floating_point() else v
                                                 for k, v in model.state_dict().items()}}, 'fp16.pth')


def test_exact_and_partial_fits(model):
    state = _state(model)['state_dict']
    del state['2.weight'], state['2.bias']  # e.g. a classifier head of another size, skipped
    check_checkpoint_fits(model, {'state_dict': state}, 'ckpt.pth', exact=False)  # 7 of 9 tensors load
    with pytest.raises(CheckpointMismatchError, match=r'does not fit the model.*\n  2 tensors missing from the '
                                                      r'checkpoint: 2.weight, 2.bias'):
        check_checkpoint_fits(model, {'state_dict': state}, 'ckpt.pth')
    other = {k: torch.zeros(3) for k in ('0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean')}
    with pytest.raises(CheckpointMismatchError, match=r'ckpt.pth would load only 0 of the 9 tensors of this model '
                                                      r'\(less than 50%'):
        check_checkpoint_fits(model, {'state_dict': other}, 'ckpt.pth', exact=False)


def test_resume_needs_a_training_checkpoint():
    check_resumable({'meta': {'epoch': 1, 'iter': 4}, 'message_hub': {}, 'state_dict': {}}, 'epoch_1.pth')
    for weights_only in ({'state_dict': {}}, {'meta': {'arch': 's'}, 'state_dict': {}}, {'w': torch.ones(1)}):
        with pytest.raises(CheckpointMismatchError, match=r'w.pth holds weights only .* use load_from '
                                                          r'\(--cfg-options load_from=w.pth\), not --resume'):
            check_resumable(weights_only, 'w.pth')


def test_use_safe_checkpointing():
    cfg = Config(dict(default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, max_keep_ckpts=1)),
                      custom_hooks=[dict(type='SafeCheckpointHook')]))
    use_safe_checkpointing(cfg)
    assert cfg.default_hooks.checkpoint == dict(type='AtomicCheckpointHook', interval=2, max_keep_ckpts=1)
    assert [h['type'] for h in cfg.custom_hooks] == ['SafeCheckpointHook', 'RandomStateHook', 'CheckpointFitHook']
    use_safe_checkpointing(cfg)  # idempotent
    assert len(cfg.custom_hooks) == 3
    bare = Config(dict())  # mmengine's default checkpoint hook
    use_safe_checkpointing(bare)
    assert bare.default_hooks.checkpoint == dict(type='AtomicCheckpointHook', interval=1)


def test_set_resume_takes_the_checkpoint_seed(tmp_path):
    path = tmp_path / 'epoch_2.pth'
    torch.save({'meta': {'seed': 1234, 'epoch': 2, 'iter': 8}, 'state_dict': {}}, path)
    (tmp_path / 'last_checkpoint').write_text(str(path))
    cfg = Config(dict(work_dir=str(tmp_path), randomness=dict(seed=None)))
    set_resume(cfg, 'auto')
    assert cfg.resume and cfg.load_from is None and cfg.randomness.seed == 1234
    fixed = Config(dict(work_dir=str(tmp_path), randomness=dict(seed=7)))
    set_resume(fixed, str(path))
    assert fixed.load_from == str(path) and fixed.randomness.seed == 7  # the config's seed wins
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'gone.pth'))
    with pytest.raises(FileNotFoundError, match=r'gone.pth \(named by .*last_checkpoint\); give the checkpoint '
                                                r'to resume from: --resume PATH'):
        set_resume(Config(dict(work_dir=str(tmp_path))), 'auto')


def test_random_states_round_trip_weights_only(tmp_path):
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    states = capture_random_states()
    expected = torch.rand(3), np.random.rand(3), random.random()
    torch.save({'random_states': {'states': [states]}}, tmp_path / 'c.pth')
    loaded = torch.load(tmp_path / 'c.pth', weights_only=True)['random_states']['states'][0]
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    restore_random_states(loaded)
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


def test_only_the_main_process_locks_the_work_dir(tmp_path, monkeypatch):
    monkeypatch.setenv('RANK', '1')
    assert lock_work_dir(str(tmp_path / 'w'), launcher='pytorch') is None
    monkeypatch.setenv('RANK', '0')
    lock = lock_work_dir(str(tmp_path / 'w'), launcher='pytorch')
    assert lock is not None and (tmp_path / 'w' / 'train.lock').read_text().startswith('{"host"')
    lock.release()


def test_inexact_resumes_are_named():
    """What RandomStateHook warns about when a resumed run cannot continue bit for bit."""
    from types import SimpleNamespace

    from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

    from wavevit_mm.engine.hooks.random_state_hook import _inexact_resume_reasons

    class Loader(list):  # 5 batches
        def __init__(self, num_workers, persistent_workers, seed):
            super().__init__(range(5))
            self.num_workers, self.persistent_workers = num_workers, persistent_workers
            self.sampler = SimpleNamespace(seed=seed)

    def runner(loop_cls, num_workers, persistent, it, seed=0):
        return SimpleNamespace(train_dataloader=Loader(num_workers, persistent, seed),
                               train_loop=loop_cls.__new__(loop_cls), iter=it)

    resumed = dict(sampler_seed=0)
    assert _inexact_resume_reasons(runner(EpochBasedTrainLoop, 0, False, 10), resumed) == []
    assert _inexact_resume_reasons(runner(IterBasedTrainLoop, 2, True, 7), resumed) == []
    reasons = _inexact_resume_reasons(runner(IterBasedTrainLoop, 0, False, 10), resumed)
    assert len(reasons) == 1 and 'replays the data loader' in reasons[0] and 'use num_workers > 0' in reasons[0]
    reasons = _inexact_resume_reasons(runner(EpochBasedTrainLoop, 2, True, 12, seed=3), resumed)
    assert [r.split(':')[0].split(' (')[0] for r in reasons] == [
        'the checkpoint is from the middle of an epoch', 'persistent_workers=True', "the sampler's seed is 3, the "
        "checkpoint's run used 0"]
    assert reasons[2].endswith('--cfg-options randomness.seed=0')


def test_a_checkpoint_without_a_state_dict_is_named(model):
    with pytest.raises(CheckpointMismatchError, match=r'odd.pth: no state dict found in the checkpoint'):
        check_checkpoint_fits(model, {0: torch.ones(1)}, 'odd.pth')
