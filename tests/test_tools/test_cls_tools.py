"""tools/train.py and tools/test.py with the real Wave-ViT-S ImageNet config on a tiny ImageNet-layout fixture,
the inferencer on the checkpoint and the clear errors (missing data, wrong variant); the quickstart is tested in
test_quickstart.py."""
import os
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from wavevit_mm.utils.paths import PROJECT_ROOT as REPO_ROOT, load_script

import wavevit_mm  # noqa: F401

S_CFG = osp.join(REPO_ROOT, 'configs', 'classification', 'wavevit-s_8xb128_in1k.py')
B_CFG = osp.join(REPO_ROOT, 'configs', 'classification', 'wavevit-b_8xb128_in1k.py')
WNIDS = ('n01440764', 'n01443537')


pytestmark = pytest.mark.usefixtures('one_torch_thread')


def make_imagenet(root, n_train=2, n_val=1):
    """ImageNet layout from scikit-learn's two sample photos (one class each): ``train/<wnid>/*.JPEG``,
    ``val/<wnid>/*.JPEG`` and ``meta/{train,val}.txt`` with ``path label`` lines."""
    from PIL import Image
    from sklearn.datasets import load_sample_images
    photos = load_sample_images().images  # china.jpg, flower.jpg: 427 x 640
    for split, n in (('train', n_train), ('val', n_val)):
        lines = []
        for label, (wnid, photo) in enumerate(zip(WNIDS, photos)):
            os.makedirs(osp.join(root, split, wnid), exist_ok=True)
            for i in range(n):
                crop = photo[40 * i:40 * i + 300, 60 * i:60 * i + 400]
                name = f'{wnid}/{wnid}_{split}_{i}.JPEG'
                Image.fromarray(crop).resize((100, 75)).save(osp.join(root, split, name))
                lines.append(f'{name} {label}\n')
        os.makedirs(osp.join(root, 'meta'), exist_ok=True)
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.writelines(lines)
    return root


def small_options(data_root, crop_index=1):
    """Point the real config at the fixture, with 64 x 64 inputs and batch 2 (2 iterations per epoch)."""
    opts = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.data_root={data_root}', f'{loader}.batch_size=2', f'{loader}.num_workers=0']
    opts += [f'train_dataloader.dataset.pipeline.{crop_index}.scale=64']
    for loader in ('val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.pipeline.1.scale=67', f'{loader}.dataset.pipeline.2.crop_size=64']
    return opts


def run_tool(*args):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    proc = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def load_tool(name):
    return load_script(f'tools/{name}.py')


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Two training iterations of the real S config, then tools/test.py on the checkpoint."""
    tmp = tmp_path_factory.mktemp('cls_tools')
    data_root = make_imagenet(str(tmp / 'imagenet'))
    work_dir = str(tmp / 'work')
    train_out = run_tool('tools/train.py', S_CFG, '--work-dir', work_dir, '--cfg-options',
                         *small_options(data_root), 'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1')
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    test_out = run_tool('tools/test.py', S_CFG, ckpt, '--work-dir', work_dir, '--cfg-options',
                        *small_options(data_root))
    return dict(data_root=data_root, work_dir=work_dir, ckpt=ckpt, train_out=train_out, test_out=test_out)


def test_train_two_iterations_and_test(trained):
    assert re.search(r'Epoch\(train\) \[1\]\[2/2\].*loss: [0-9.]+', trained['train_out'])
    assert osp.isfile(trained['ckpt'])
    state = torch.load(trained['ckpt'], map_location='cpu', weights_only=True)['state_dict']
    assert state['head.fc.weight'].shape == (1000, 448) and 'backbone.block4.2.attn.q.weight' in state
    top1 = re.findall(r'accuracy/top1: ([0-9.]+)', trained['test_out'])
    assert top1 and 0. <= float(top1[-1]) <= 100.
    assert float(top1[-1]) in (0., 50., 100.)  # 2 validation images (one per class)
    assert re.search(r'Epoch\(test\) \[1/1\].*accuracy/top5', trained['test_out'])


def test_inferencer_with_config_and_checkpoint(trained):
    from mmpretrain.apis import ImageClassificationInferencer
    img = osp.join(trained['data_root'], 'val', WNIDS[0], f'{WNIDS[0]}_val_0.JPEG')
    inferencer = ImageClassificationInferencer(model=S_CFG, pretrained=trained['ckpt'], device='cpu')
    result = inferencer(img)[0]
    assert result['pred_scores'].shape == (1000, )
    assert result['pred_label'] == int(np.argmax(result['pred_scores']))
    state = torch.load(trained['ckpt'], map_location='cpu', weights_only=True)['state_dict']
    torch.testing.assert_close(inferencer.model.head.fc.weight.detach(), state['head.fc.weight'])


def test_test_py_refuses_a_checkpoint_of_another_variant(trained):
    from wavevit_mm.engine.checkpoint_check import CheckpointMismatchError
    test_tool = load_tool('test')
    expected = r'(?s)another variant.*tensors of different shape.*missing from the checkpoint'
    with pytest.raises(CheckpointMismatchError, match=expected):
        test_tool.main([B_CFG, trained['ckpt'], '--work-dir', trained['work_dir'] + '_b', '--cfg-options',
                        *small_options(trained['data_root'])])


def test_train_py_missing_dataset_names_the_path(tmp_path):
    train_tool = load_tool('train')
    missing = str(tmp_path / 'no_imagenet_here')
    with pytest.raises(FileNotFoundError, match='no_imagenet_here'):
        train_tool.main([S_CFG, '--work-dir', str(tmp_path / 'work'), '--cfg-options', *small_options(missing)])


def test_user_errors_end_with_the_message_not_a_traceback(tmp_path):
    """From the command line, a user error prints its message (which names the file and the fix) and exits 1."""
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    env.pop('WAVEVIT_TRACEBACK', None)
    missing = str(tmp_path / 'no_such.pth')
    proc = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', 'test.py'), S_CFG, missing], cwd=str(tmp_path),
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and proc.stderr.strip() == f'error: checkpoint file not found: {missing}', proc.stderr
    proc = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', 'test.py'), S_CFG, missing], cwd=str(tmp_path),
                          env=dict(env, WAVEVIT_TRACEBACK='1'), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and 'Traceback' in proc.stderr and 'FileNotFoundError' in proc.stderr


def test_tokenlabel_config_trains_through_train_py(trained, tmp_path):
    """The S token-labeling config, label maps and all, through tools/train.py (in process, 2 iterations)."""
    label_root = tmp_path / 'labels'
    g = torch.Generator().manual_seed(0)
    with open(osp.join(trained['data_root'], 'meta', 'train.txt')) as f:
        names = [line.split()[0] for line in f if line.strip()]
    for name in names:
        scores = torch.rand(5, 6, 8, generator=g) * 10
        index = torch.stack([torch.randperm(1000, generator=g)[:5] for _ in range(48)], 1).view(5, 6, 8)
        os.makedirs(label_root / osp.dirname(name), exist_ok=True)
        torch.save(torch.stack([scores, index.float()]).half(), label_root / (osp.splitext(name)[0] + '.pt'))
    cfg = osp.join(REPO_ROOT, 'configs', 'classification', 'wavevit-s_8xb128_in1k-tokenlabel.py')
    work_dir = str(tmp_path / 'work')
    load_tool('train').main([cfg, '--work-dir', work_dir, '--no-validate', '--cfg-options',
                             *small_options(trained['data_root'], crop_index=2),
                             f'train_dataloader.dataset.pipeline.1.label_root={label_root}',
                             'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1'])
    state = torch.load(osp.join(work_dir, 'epoch_1.pth'), map_location='cpu', weights_only=True)['state_dict']
    assert state['head.aux_fc.weight'].shape == (1000, 448)
    logs = open(next(osp.join(r, f) for r, _, fs in os.walk(work_dir) for f in fs if f.endswith('.log'))).read()
    assert re.search(r'Epoch\(train\) \[1\]\[2/2\].*loss_cls: [0-9.]+\s+loss_dense: [0-9.]+', logs)
