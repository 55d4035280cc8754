"""The one weights-only loader (wavevit_mm.utils.safe_load): what is refused and how it is named, and that mmengine's
own loading (CheckpointLoader: the Runner's resume and load_from, init_cfg, the inference APIs) goes through it."""
import argparse
import os
import zipfile

import pytest
import torch
from mmengine.runner import CheckpointLoader
from mmengine.runner.checkpoint import _load_checkpoint

from wavevit_mm.testing.faults import CodePayload, serve_folder
from wavevit_mm.utils import InvalidCheckpointError, UnsafeCheckpointError, load_checkpoint_file
from wavevit_mm.utils import safe_load
from wavevit_mm.utils.atomic_io import atomic_write, remove_stale_temp_files, temp_name


@pytest.fixture
def unsafe_env(tmp_path, monkeypatch):
    """torch's default switched to unpickling anything, a marker file for any payload that runs."""
    monkeypatch.delenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', raising=False)
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    marker = tmp_path / 'payload-ran'
    monkeypatch.setenv('EVIL_MARKER', str(marker))
    return marker


def _loaders():
    """Every way a file is read: ours, mmengine's CheckpointLoader (Runner.load_checkpoint / resume) and
    mmengine's _load_checkpoint (PretrainedInit, load_checkpoint)."""
    return [load_checkpoint_file, CheckpointLoader.load_checkpoint, _load_checkpoint]


@pytest.mark.parametrize('loader', _loaders())
def test_payload_is_refused_through_every_loader(tmp_path, unsafe_env, loader):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.ones(1)}, 'x': CodePayload()}, path)
    # a payload is not a checkpoint to rewrite: the message does not offer the trust flag
    with pytest.raises(UnsafeCheckpointError,
                       match=f'refusing to load {path}.*posix.system.*treat the file as untrusted') as info:
        loader(str(path))
    assert '--trust-source' not in str(info.value)
    assert not unsafe_env.exists()


def _write(path, kind: str) -> str:
    if kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'random bytes':
        path.write_bytes(bytes(range(7, 256)) * 20)
    elif kind == 'zip of something else':
        with zipfile.ZipFile(path, 'w') as zf:
            zf.writestr('weights/readme.txt', 'not a checkpoint')
    elif kind == 'truncated':
        torch.save({'w': torch.zeros(20000)}, path)
        path.write_bytes(path.read_bytes()[:30000])
    elif kind == 'torchscript':
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    elif kind == 'corrupt data':
        torch.save({'w': torch.zeros(4)}, path)
        data = bytearray(path.read_bytes())
        start = data.index(b'data.pkl') + 40  # inside the pickle, past the zip entry header
        data[start:start + 8] = b'\xff' * 8
        path.write_bytes(bytes(data))
    return str(path)


@pytest.mark.parametrize('kind, message', [
    ('empty', r'is empty \(0 bytes\), not a checkpoint: an interrupted download, copy or save\? Fetch or copy'),
    ('random bytes', r'is not a PyTorch checkpoint: neither the zip format of torch.save nor a legacy pickle'),
    ('zip of something else', r'is a zip archive but not a PyTorch checkpoint \(no data.pkl; it holds: '
                              r'weights/readme.txt\)'),
    ('truncated', r'starts like a zip archive \(the torch.save format\) but is truncated or corrupt'),
    ('torchscript', r'is a TorchScript archive \(torch.jit.save\), not a checkpoint of weights: load it with '
                    r'torch.jit.load'),
    ('corrupt data', r'(could not be read|is not a readable PyTorch checkpoint)'),
])
@pytest.mark.parametrize('loader', _loaders())
def test_files_that_are_not_checkpoints_are_named_as_such(tmp_path, unsafe_env, kind, message, loader):
    path = _write(tmp_path / 'model.pth', kind)
    with pytest.raises(InvalidCheckpointError, match=f'{path} {message}'):
        loader(path)


def test_mmengine_written_checkpoint_names_the_rewrite_tool(tmp_path):
    import numpy as np
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('test_mmengine_written_checkpoint')
    hub.update_scalar('train/loss', 1.0)
    path = tmp_path / 'epoch_1.pth'
    torch.save({'meta': {'seed': np.int64(0), 'epoch': 1, 'iter': 4}, 'state_dict': {'w': torch.ones(1)},
                'message_hub': hub.state_dict()}, path)
    with pytest.raises(UnsafeCheckpointError) as err:
        CheckpointLoader.load_checkpoint(str(path))
    msg = str(err.value)
    assert "written by mmengine's CheckpointHook without wavevit_mm's SafeCheckpointHook" in msg
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in msg
    assert f'python tools/model_converters/mmengine2safe.py {path} SAFE.pth --trust-source' in msg


def test_official_checkpoints_and_meta_only_reads(tmp_path):
    """The allow-list: an official training checkpoint's argparse.Namespace loads; mmap reads only the meta."""
    path = tmp_path / 'official.pth.tar'
    torch.save({'model': {'w': torch.arange(3.)}, 'args': argparse.Namespace(lr=1e-3), 'epoch': 309}, path)
    loaded = load_checkpoint_file(str(path))
    assert loaded['args'].lr == 1e-3 and loaded['epoch'] == 309
    assert torch.equal(load_checkpoint_file(str(path), mmap=True)['model']['w'], torch.arange(3.))
    with pytest.raises(FileNotFoundError, match='checkpoint file not found: .*nowhere.pth'):
        load_checkpoint_file(str(tmp_path / 'nowhere.pth'))


def test_every_mmengine_scheme_is_weights_only():
    for path, loader in [('x.pth', safe_load.load_from_local), ('https://a/b.pth', safe_load.load_from_http),
                         ('http://a/b.pth', safe_load.load_from_http),
                         ('torchvision://resnet50', safe_load.load_from_torchvision),
                         ('open-mmlab://resnet50_v1c', safe_load.load_from_openmmlab),
                         ('mmcls://resnet50', safe_load.load_from_mmcls),
                         ('s3://bucket/a.pth', safe_load.load_from_ceph),
                         ('pavi://a/b.pth', safe_load.load_from_pavi)]:
        assert CheckpointLoader._get_checkpoint_loader(path) is loader, path


@pytest.fixture
def http_server(tmp_path, monkeypatch):
    (tmp_path / 'served').mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    with serve_folder(tmp_path / 'served') as url:
        yield tmp_path / 'served', url


def test_urls_are_downloaded_then_read_weights_only(http_server, tmp_path, unsafe_env):
    """A URL in init_cfg (mmengine's PretrainedInit and the backbone's own loader) or load_from."""
    from mmengine.model import BaseModule
    served, url = http_server
    torch.save({'state_dict': {'fc.weight': torch.full((2, 2), 3.), 'fc.bias': torch.ones(2)}}, served / 'good.pth')
    torch.save({'state_dict': {'fc.weight': torch.zeros(2, 2)}, 'x': CodePayload()}, served / 'evil.pth')

    class Linear(BaseModule):
        def __init__(self, checkpoint):
            super().__init__(init_cfg=dict(type='Pretrained', checkpoint=checkpoint))
            self.fc = torch.nn.Linear(2, 2)

    good = Linear(f'{url}/good.pth')
    good.init_weights()
    assert torch.equal(good.fc.weight, torch.full((2, 2), 3.))
    assert (tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'good.pth').is_file()  # torch hub's cache
    with pytest.raises(UnsafeCheckpointError, match=f'refusing to load {url}/evil.pth \\(cached as .*evil.pth\\)'):
        Linear(f'{url}/evil.pth').init_weights()
    from wavevit_mm import WaveViT
    from wavevit_mm.testing import TINY_ARCH
    with pytest.raises(UnsafeCheckpointError, match='posix.system'):
        WaveViT(TINY_ARCH, init_cfg=dict(type='Pretrained', checkpoint=f'{url}/evil.pth')).init_weights()
    assert not unsafe_env.exists()


def test_atomic_write_and_stale_temp_files(tmp_path):
    path = tmp_path / 'last_checkpoint'
    atomic_write(str(path), lambda f: f.write('old'), mode='w')

    def fail(f):
        f.write('half')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(str(path), fail, mode='w')
    assert path.read_text() == 'old' and os.listdir(tmp_path) == ['last_checkpoint']
    # a killed writer (a pid that no longer exists) leaves its temporary file; a live one's is kept
    dead = tmp_path / temp_name('epoch_3.pth').replace(f'-{os.getpid()}', '-999999999')
    live = tmp_path / temp_name('epoch_4.pth')
    dead.write_bytes(b'partial')
    live.write_bytes(b'partial')
    assert remove_stale_temp_files(str(tmp_path)) == [str(dead)]
    assert live.exists() and not dead.exists()


def test_pavi_without_pavi_names_the_file():
    with pytest.raises(ImportError, match='pavi://models/a.pth: install pavi to load checkpoints from its model cloud'):
        CheckpointLoader.load_checkpoint('pavi://models/a.pth')
