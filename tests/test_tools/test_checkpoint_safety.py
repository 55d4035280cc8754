"""tools/train.py and tools/test.py with hostile, broken and wrong checkpoints, and two runs in one work dir.

Every case runs the real tool in a child of the fork server (conftest.py) and checks its exit code and message.
With ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (what people set when they meet weights-only errors; torch then unpickles
anything when the caller does not ask for weights-only) a ``__reduce__`` payload in a checkpoint must still never
run, whichever way the file comes in: tools/test.py, --resume, load_from, or a URL in the backbone's init_cfg.
"""
import argparse
import os.path as osp
import runpy
import subprocess
import sys

import pytest
import torch

from wavevit_mm.engine.hooks.safe_checkpoint_hook import from_safe
from wavevit_mm.testing import TINY_REF, ReferenceWaveViT
from wavevit_mm.testing.faults import CodePayload, serve_folder
from wavevit_mm.testing import launch as H
from wavevit_mm.utils import load_checkpoint_file
from wavevit_mm.utils.paths import PROJECT_ROOT


@pytest.fixture(scope='module')
def trained(fork_server, tmp_path_factory):
    """A 1-epoch run of the tiny config: its work dir, with epoch_1.pth in tools/train.py's safe format."""
    work_dir = str(tmp_path_factory.mktemp('trained'))
    result = fork_server.run([H.CONFIG, *H.train_args(work_dir, H.GLOBAL_BATCH, ['train_cfg.max_epochs=1'])],
                             log=osp.join(work_dir, 'run.log'))
    assert result['exitcode'] == 0, result['output'][-3000:]
    return work_dir


@pytest.fixture(scope='module')
def files(trained, tmp_path_factory):
    """Checkpoints derived from the trained one: hostile, in mmengine's own format, weights only, damaged."""
    root = tmp_path_factory.mktemp('checkpoints')
    good = load_checkpoint_file(osp.join(trained, 'epoch_1.pth'))
    paths = {name: str(root / f'{name}.pth') for name in ('evil', 'mmengine', 'weights', 'nan', 'official')}
    torch.save({'state_dict': good['state_dict'], 'meta': {'epoch': 1}, 'payload': CodePayload()}, paths['evil'])
    # what mmdet's / mmseg's own train.py write: HistoryBuffer objects and numpy values
    import numpy as np
    unsafe = dict(good, message_hub=from_safe(good['message_hub']))
    unsafe['meta'] = dict(good['meta'], seed=np.int64(good['meta']['seed']))
    torch.save(unsafe, paths['mmengine'])
    torch.save({'meta': {'arch': 'custom'}, 'state_dict': good['state_dict']}, paths['weights'])
    nan = {k: v.clone() for k, v in good['state_dict'].items()}
    nan['head.fc.weight'][0, 0] = float('nan')
    torch.save({'state_dict': nan}, paths['nan'])
    ref = ReferenceWaveViT(TINY_REF, num_classes=H.NUM_CLASSES)
    torch.save({'model': ref.state_dict(), 'args': argparse.Namespace(model='wavevit_s')}, paths['official'])
    return paths


@pytest.fixture(scope='module')
def http_root(tmp_path_factory):
    """A local HTTP server for the init_cfg URL case: (folder it serves, its base URL)."""
    root = tmp_path_factory.mktemp('http')
    with serve_folder(root) as url:
        yield root, url


def _unsafe_env(tmp_path):
    marker = tmp_path / 'payload-ran'
    return marker, {'TORCH_FORCE_WEIGHTS_ONLY_LOAD': None, 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD': '1',
                    'EVIL_MARKER': str(marker), 'TORCH_HOME': str(tmp_path / 'torch_home')}


@pytest.mark.parametrize('entry', ['tools/test.py', '--resume', 'load_from', 'init_cfg URL'])
def test_payload_never_runs_even_with_torch_force_no_weights_only_load(fork_server, files, http_root, tmp_path,
                                                                      entry):
    marker, env = _unsafe_env(tmp_path)
    work_dir = str(tmp_path / 'work')
    train = [H.CONFIG, *H.train_args(work_dir, H.GLOBAL_BATCH, ['train_cfg.max_epochs=1'])]
    if entry == 'tools/test.py':
        tool, argv = 'test.py', [H.CONFIG, files['evil'], '--work-dir', work_dir]
    elif entry == '--resume':
        tool, argv = 'train.py', train + ['--resume', files['evil']]
    elif entry == 'load_from':
        tool, argv = 'train.py', train + [f'load_from={files["evil"]}']
    else:
        root, url = http_root
        (root / 'evil.pth').write_bytes(open(files['evil'], 'rb').read())
        tool, argv = 'train.py', train + ['model.backbone.init_cfg.type=Pretrained',
                                          f'model.backbone.init_cfg.checkpoint={url}/evil.pth']
    result = fork_server.run(argv, log=str(tmp_path / 'run.log'), env=env, tool=tool)
    assert result['exitcode'] == 1, result['output'][-3000:]
    assert 'refusing to load' in result['output'] and 'posix.system' in result['output']
    assert not marker.exists(), 'the payload ran'


def test_payload_runs_under_plain_torch_load_in_that_environment(files, tmp_path, monkeypatch):
    """The contrast: the marker mechanism works, and the environment really disables torch's default."""
    marker, env = _unsafe_env(tmp_path)
    for name, value in env.items():
        monkeypatch.delenv(name, raising=False) if value is None else monkeypatch.setenv(name, value)
    with pytest.warns(UserWarning, match='TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'):
        torch.load(files['evil'])
    assert marker.exists()


def test_mmengine_format_is_refused_then_rewritten_with_the_trust_flag(fork_server, trained, files, tmp_path):
    work_dir = str(tmp_path / 'work')
    resume = [H.CONFIG, *H.train_args(work_dir, H.GLOBAL_BATCH, ['train_cfg.max_epochs=2']), '--resume']
    refused = fork_server.run(resume + [files['mmengine']], log=str(tmp_path / 'refused.log'))
    assert refused['exitcode'] == 1
    assert ("written by mmengine's CheckpointHook without wavevit_mm's SafeCheckpointHook" in refused['output']
            and 'tools/model_converters/mmengine2safe.py' in refused['output']
            and '--trust-source' in refused['output'])
    safe = str(tmp_path / 'safe.pth')
    rewrite = runpy.run_path(osp.join(H.TOOLS, 'model_converters', 'mmengine2safe.py'))['main']
    assert rewrite([files['mmengine'], safe]) == 1 and not osp.exists(safe)  # no trust flag: nothing unpickled
    assert rewrite([files['mmengine'], safe, '--trust-source']) == 0
    resumed = fork_server.run(resume + [safe], log=str(tmp_path / 'resumed.log'))
    assert resumed['exitcode'] == 0, resumed['output'][-3000:]
    assert 'resumed epoch: 1, iter: 2' in resumed['output']


@pytest.mark.parametrize('case, expected', [
    ('official', 'is an official Wave-ViT checkpoint; convert it first: '
                 'python tools/model_converters/wavevit2mm.py'),
    ('nan', 'does not hold usable weights:\n  1 tensors hold NaN or infinite values'),
])
def test_test_tool_refuses_unusable_checkpoints(fork_server, files, tmp_path, case, expected):
    result = fork_server.run([H.CONFIG, files[case], '--work-dir', str(tmp_path)], log=str(tmp_path / 'run.log'),
                             tool='test.py')
    assert result['exitcode'] == 1 and expected in result['output'], result['output'][-3000:]
    assert files[case] in result['output']
    assert 'accuracy/top1' not in result['output']


def test_resume_from_weights_only_file_says_use_load_from(fork_server, files, tmp_path):
    argv = [H.CONFIG, *H.train_args(str(tmp_path / 'work'), H.GLOBAL_BATCH), '--resume', files['weights']]
    result = fork_server.run(argv, log=str(tmp_path / 'run.log'))
    assert result['exitcode'] == 1
    assert (f'{files["weights"]} holds weights only' in result['output']
            and f'use load_from (--cfg-options load_from={files["weights"]}), not --resume' in result['output'])


def test_load_from_another_variant_is_an_error(fork_server, tmp_path):
    """load_from a checkpoint of another Wave-ViT (other widths): mmengine would skip every mismatching tensor
    with a warning and train from scratch."""
    other = ReferenceWaveViT(dict(TINY_REF, dims=[32, 64, 96, 128], heads=[2, 4, 6, 8]), num_classes=4)
    path = str(tmp_path / 'other.pth')
    torch.save({'state_dict': {'backbone.' + k: v for k, v in other.state_dict().items()}}, path)
    argv = [H.CONFIG, *H.train_args(str(tmp_path / 'work'), H.GLOBAL_BATCH, [f'load_from={path}'])]
    result = fork_server.run(argv, log=str(tmp_path / 'run.log'))
    assert result['exitcode'] == 1
    assert f'checkpoint {path} would load only' in result['output'] and 'tensors of different shape' in \
        result['output'] and "init_cfg=dict(type='Pretrained'" in result['output']


def test_second_run_in_a_work_dir_is_refused_until_the_first_ends(fork_server, tmp_path):
    work_dir = str(tmp_path / 'work')
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import runpy, sys, time; lock = runpy.run_path(sys.argv[1])["WorkDirLock"]'
         '(sys.argv[2]).acquire(); print("locked", flush=True); time.sleep(120)',
         osp.join(PROJECT_ROOT, 'wavevit_mm', 'engine', 'run_lock.py'), work_dir],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        argv = [H.CONFIG, *H.train_args(work_dir, H.GLOBAL_BATCH, ['train_cfg.max_epochs=1'])]
        refused = fork_server.run(argv, log=str(tmp_path / 'refused.log'))
        assert refused['exitcode'] == 1
        assert (f'another training run is using the work dir {work_dir} (pid {holder.pid} on ' in refused['output']
                and '--no-work-dir-lock allows it anyway' in refused['output'])
        assert not osp.exists(osp.join(work_dir, 'epoch_1.pth'))
        forced = fork_server.run(argv + ['--no-work-dir-lock'], log=str(tmp_path / 'forced.log'))
        assert forced['exitcode'] == 0, forced['output'][-3000:]
    finally:
        holder.kill()  # SIGKILL: the holder cannot release anything itself
        holder.wait()
    after_kill = fork_server.run(argv, log=str(tmp_path / 'after_kill.log'))
    assert after_kill['exitcode'] == 0, after_kill['output'][-3000:]
