"""Save the random states of a training run with each checkpoint and restore them on resume.

mmengine restores weights, optimizer, schedulers and the iteration count, but not the generators: a resumed run
starts from freshly seeded torch / numpy / Python generators, so its random augmentation (and drop path, and the
seeds the data loader draws) differ from those of an uninterrupted run. :class:`RandomStateHook` records, after
every training iteration, the states of

- torch's default CPU generator (and the CUDA ones), which also seeds each epoch's data-loader iterator,
- numpy's and Python's global generators, which the data transforms use when ``num_workers=0``,

of every process, adds them to each checkpoint (as tensors: ``weights_only``-loadable) and restores them when the
run resumes, right before the data loader starts the next epoch. Validation during training runs on a copy of the
generators and does not advance the training ones, in an uninterrupted run as in a resumed one; in an epoch-based
loop every epoch starts from the states the previous one ended with. The data workers (``num_workers > 0``) are
seeded by mmengine from ``randomness.seed``, rank and worker id each time they start; the sampler's order is a
function of its seed and the epoch. So a resumed run is bit-identical to an uninterrupted one when

- the loop is epoch-based and the checkpoint is an epoch's (``CheckpointHook(by_epoch=True)``; mmengine restarts
  a partly trained epoch from its first batch), with ``persistent_workers=False`` or ``num_workers=0``
  (persistent workers keep their own generators across epochs, out of reach of a checkpoint);
- the loop is iteration-based and ``num_workers > 0`` (mmengine replays the data loader up to the checkpoint;
  with ``num_workers=0`` that replay runs the transforms in this process and consumes its generators);
- the seed is the checkpoint's (``tools/train.py --resume`` takes it from the checkpoint when the config sets
  none) and the number of processes is the same.

When one of these does not hold, the resumed run logs a warning saying which, and what to change.
"""
import random
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop

#: the checkpoint key holding the states
CHECKPOINT_KEY = 'random_states'


def capture_random_states() -> Dict[str, Any]:
    """This process's generator states, as tensors and plain Python values (``weights_only``-loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    states = dict(torch=torch.get_rng_state(),
                  numpy=dict(kind=kind, keys=torch.from_numpy(keys.astype(np.int64)), pos=int(pos),
                             has_gauss=int(has_gauss), gauss=float(gauss)),
                  python=dict(version=version, state=torch.tensor(py_state, dtype=torch.int64), gauss=py_gauss))
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: Dict[str, Any]) -> None:
    """Set this process's generators to ``states`` (from :func:`capture_random_states`)."""
    torch.set_rng_state(states['torch'])
    n = states['numpy']
    np.random.set_state((n['kind'], n['keys'].numpy().astype(np.uint32), n['pos'], n['has_gauss'], n['gauss']))
    p = states['python']
    random.setstate((p['version'], tuple(p['state'].tolist()), p['gauss']))
    if 'cuda' in states and torch.cuda.is_available() and len(states['cuda']) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states['cuda'])


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Checkpoints carry the random states of every process; a resumed run continues them (module docstring).

    Add it to ``custom_hooks``; ``tools/train.py`` adds it.
    """

    priority = 'LOW'  # after_train_*: before CheckpointHook (VERY_LOW) writes the checkpoint

    def __init__(self) -> None:
        self._last: Optional[Dict[str, Any]] = None     # {'iter': n, 'states': [per rank]} after iteration n
        self._resumed: Optional[Dict[str, Any]] = None  # what the loaded checkpoint holds
        self._around_val: Optional[Dict[str, Any]] = None

    # --- recording --------------------------------------------------------------------------------------------
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._last = dict(iter=runner.iter + 1, states=[capture_random_states()])
        if get_world_size() > 1 and _iter_checkpoint_due(runner):
            self._gather()

    def after_train_epoch(self, runner) -> None:
        if get_world_size() > 1:
            self._gather()

    def after_val_epoch(self, runner, metrics=None) -> None:
        if get_world_size() > 1 and self._last is not None:  # a save_best checkpoint may follow
            self._gather()

    def _gather(self) -> None:
        if len(self._last['states']) == 1:
            self._last['states'] = all_gather_object(self._last['states'][0])

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._last is not None:
            checkpoint[CHECKPOINT_KEY] = dict(self._last, sampler_seed=_sampler_seed(runner))

    # --- validation does not advance the training generators ---------------------------------------------------
    def before_val(self, runner) -> None:
        if self._last is not None:  # validation during training
            self._around_val = capture_random_states()

    def after_val(self, runner) -> None:
        if self._around_val is not None:
            restore_random_states(self._around_val)
            self._around_val = None

    # --- restoring ---------------------------------------------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._resumed = checkpoint.get(CHECKPOINT_KEY)
        self._resumed_meta = checkpoint.get('meta') or {}

    def before_train_epoch(self, runner) -> None:
        resumed, self._resumed = self._resumed, None
        if resumed is None:
            resumed_meta = getattr(self, '_resumed_meta', None)
            if resumed_meta and resumed_meta.get('iter') == runner.iter and runner.iter > 0:
                runner.logger.warning(
                    f'{type(self).__name__}: the checkpoint this run resumed from holds no random states (it was '
                    'written without this hook): the random augmentation from here on differs from the original '
                    'run')
            elif (self._last is not None and self._last['iter'] == runner.iter
                  and not isinstance(runner.train_loop, IterBasedTrainLoop)):
                # an uninterrupted epoch-based run: start the epoch where the last iteration ended, as a resumed
                # run does (whatever validation or checkpointing in between drew)
                restore_random_states(self._last['states'][0] if len(self._last['states']) == 1
                                      else self._last['states'][get_rank()])
            self._resumed_meta = None
            return
        self._resumed_meta = None
        if resumed['iter'] != runner.iter:  # load_from of a checkpoint, not a resume
            return
        states = resumed['states']
        if len(states) != get_world_size():
            runner.logger.warning(
                f'{type(self).__name__}: the checkpoint holds the random states of {len(states)} processes, this '
                f'run has {get_world_size()}: they are not restored, so the random augmentation from here on '
                f'differs from the original run (resume with {len(states)} processes for an exact continuation)')
            return
        restore_random_states(states[get_rank()])
        self._last = dict(iter=runner.iter, states=[states[get_rank()]])
        runner.logger.info(f'restored the random states of iteration {runner.iter} from the checkpoint')
        for problem in _inexact_resume_reasons(runner, resumed):
            runner.logger.warning(f'{type(self).__name__}: the resumed run is not bit-identical to an '
                                  f'uninterrupted one: {problem}')


def _iter_checkpoint_due(runner) -> bool:
    """Whether an iteration-based ``CheckpointHook`` saves after this iteration (all ranks agree)."""
    for hook in runner.hooks:
        if isinstance(hook, CheckpointHook) and not hook.by_epoch and (
                hook.every_n_train_iters(runner, hook.interval, hook.save_begin)
                or (hook.save_last and hook.is_last_train_iter(runner))):
            return True
    return False


def _sampler_seed(runner) -> Optional[int]:
    seed = getattr(runner.train_dataloader.sampler, 'seed', None)
    return None if seed is None else int(seed)


def _inexact_resume_reasons(runner, resumed: Dict[str, Any]) -> List[str]:
    loader = runner.train_dataloader
    reasons = []
    iter_based = isinstance(runner.train_loop, IterBasedTrainLoop)
    if iter_based and loader.num_workers == 0:
        reasons.append('mmengine replays the data loader up to the checkpoint in this process (num_workers=0), '
                       'which draws from the restored generators; use num_workers > 0')
    if not iter_based and runner.iter % max(len(loader), 1):
        reasons.append(f'the checkpoint is from the middle of an epoch (iteration {runner.iter}); mmengine '
                       'restarts that epoch from its first batch. Resume from an epoch checkpoint')
    if not iter_based and loader.num_workers > 0 and loader.persistent_workers:
        reasons.append('persistent_workers=True: the data workers\' generators continue across epochs and are not '
                       'in the checkpoint; set train_dataloader.persistent_workers=False for an exact resume')
    if resumed.get('sampler_seed') is not None and resumed['sampler_seed'] != _sampler_seed(runner):
        reasons.append(f'the sampler\'s seed is {_sampler_seed(runner)}, the checkpoint\'s run used '
                       f'{resumed["sampler_seed"]} (a different randomness.seed): resume with '
                       f'--cfg-options randomness.seed={resumed["sampler_seed"]}')
    return reasons
