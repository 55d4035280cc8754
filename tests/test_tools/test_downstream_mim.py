"""docs/downstream.md as a user follows it: its three example configs, copied from the page into a project
directory outside the checkout, trained with ``mim train`` and tested with ``mim test`` of mmdet, mmseg and
mmpretrain (the libraries' own tools), and its way of inheriting this project's configs.

The configs are taken from the markdown (every ```python block whose first line is ``# configs/NAME.py``), so the
page and the test cannot drift apart. The runs are shrunk on the command line only (``--cfg-options``): the small
test arch instead of Wave-ViT-S / B, small images, 1-2 iterations, no worker processes, on tiny COCO / ADE20K /
image-folder data sets where the base configs expect them (``data/coco``, ``data/ade/ADEChallengeData2016``,
``data/my_dataset``), with converted-layout weights of the small backbone in ``checkpoints/``. The three train +
test chains run concurrently, with a fourth that trains without ``SafeCheckpointHook`` and checks the refusal.
"""
import json
import os
import os.path as osp
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List

import pytest
import torch

from wavevit_mm.testing import TINY_ARCH, build_classifier
from wavevit_mm.utils.paths import CONFIG_DIR, PROJECT_ROOT

DOC = osp.join(PROJECT_ROOT, 'docs', 'downstream.md')
MIM = osp.join(osp.dirname(sys.executable), 'mim')
DIMS = TINY_ARCH['embed_dims']

#: the small arch instead of the doc's S / B (a dict replaces the arch name: ``_delete_``)
TINY = ['model.backbone.arch._delete_=True'] + [
    f'model.backbone.arch.{k}={json.dumps(v).replace(" ", "")}' for k, v in TINY_ARCH.items()]


def loaders(*names: str) -> List[str]:
    return [f'{n}_dataloader.{k}={v}' for n in names for k, v in (('num_workers', 0),
                                                                   ('persistent_workers', False))]


#: per library: the doc's config, and the --cfg-options of the training and of the test run
RUNS = {
    'mmdet': dict(
        config='configs/retinanet_wavevit-s_fpn_1x_coco.py', checkpoint='epoch_1.pth',
        model=TINY + [f'model.neck.in_channels={DIMS}'.replace(' ', ''),
                      'model.test_cfg.score_thr=0.0'],  # a 2-iteration model scores low: keep boxes, get APs
        train=['train_dataloader.dataset.pipeline.2.scale=(128,96)', 'val_dataloader.dataset.pipeline.1.scale=(128,96)',
               'train_cfg.max_epochs=1', *loaders('train', 'val')],
        test=['test_dataloader.dataset.pipeline.1.scale=(128,96)', *loaders('test')]),
    'mmseg': dict(
        config='configs/upernet_wavevit-b_ade20k.py', checkpoint='iter_2.pth',
        model=TINY + [f'model.decode_head.in_channels={DIMS}'.replace(' ', ''), 'model.decode_head.channels=32',
                      f'model.auxiliary_head.in_channels={DIMS[2]}', 'model.auxiliary_head.channels=16',
                      'model.data_preprocessor.size=(64,64)'],
        train=['train_dataloader.dataset.pipeline.2.scale=(256,64)',
               'train_dataloader.dataset.pipeline.3.crop_size=(64,64)', 'train_dataloader.batch_size=2',
               'val_dataloader.dataset.pipeline.1.scale=(256,64)', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
               'default_hooks.checkpoint.interval=2', *loaders('train', 'val')],
        test=['test_dataloader.dataset.pipeline.1.scale=(256,64)', *loaders('test')]),
    'mmpretrain': dict(
        config='configs/wavevit-s_finetune_my-dataset.py', checkpoint='epoch_1.pth',
        model=TINY + [f'model.head.in_channels={DIMS[3]}', 'model.head.num_classes=4',
                      'data_preprocessor.num_classes=4'],
        train=['train_dataloader.dataset.pipeline.1.scale=32', 'val_dataloader.dataset.pipeline.1.scale=36',
               'val_dataloader.dataset.pipeline.2.crop_size=32', 'train_dataloader.batch_size=8',
               'val_dataloader.batch_size=8', 'train_cfg.max_epochs=1', *loaders('train', 'val')],
        test=['test_dataloader.dataset.pipeline.1.scale=36', 'test_dataloader.dataset.pipeline.2.crop_size=32',
              *loaders('test')]),
}
#: what each library's test run prints: its metric
METRICS = {'mmdet': r'coco/bbox_mAP: -?[0-9.]+', 'mmseg': r'mIoU: [0-9.]+', 'mmpretrain': r'accuracy/top1: [0-9.]+'}


def doc_configs() -> Dict[str, str]:
    """``{'configs/NAME.py': text}`` for every example config of the page."""
    with open(DOC) as f:
        text = f.read()
    return {path: code for code, path in re.findall(r'```python\n(# (configs/[\w.-]+\.py)\n.*?)```', text, re.S)}


def mim(*args: str, cwd: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    env['PATH'] = osp.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
    return subprocess.run([MIM, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600)


def train_then_test(project: str, library: str, name: str, extra_train: List[str] = ()) -> Dict[str, object]:
    run = RUNS[library]
    work = f'work_dirs/{name}'
    train = mim('train', library, run['config'], '--work-dir', work, '--cfg-options', *run['model'], *run['train'],
                'default_hooks.logger.interval=1', *extra_train, cwd=project)
    result = dict(train=train, test=None, checkpoint=osp.join(project, work, run['checkpoint']))
    if train.returncode == 0:
        result['test'] = mim('test', library, run['config'], '--checkpoint', osp.join(work, run['checkpoint']),
                             '--work-dir', f'{work}_test', '--cfg-options', *run['model'], *run['test'], cwd=project)
    return result


@pytest.fixture(scope='module')
def project(tmp_path_factory):
    """The project directory of the page: configs/ (from the page), checkpoints/, data/."""
    from wavevit_mm.testing.det_data import make_coco_fixture
    from wavevit_mm.testing.launch import make_tiny_imagenet
    from wavevit_mm.testing.seg_data import make_ade20k_fixture
    if not osp.exists(MIM):
        pytest.fail(f'mim (openmim) is not installed next to {sys.executable}')
    root = tmp_path_factory.mktemp('my_project')
    assert not str(root).startswith(PROJECT_ROOT)
    configs = doc_configs()
    assert {run['config'] for run in RUNS.values()} <= set(configs), f'examples missing from {DOC}: {configs}'
    for path, text in configs.items():
        os.makedirs(root / osp.dirname(path), exist_ok=True)
        (root / path).write_text(text)
    # stands in for tools/model_converters/wavevit2mm.py's output (backbone.* and head.*) of the small arch
    torch.manual_seed(0)
    classifier = build_classifier(TINY_ARCH, aux_head=True, in_channels=DIMS[3], num_heads=TINY_ARCH['num_heads'][3])
    os.makedirs(root / 'checkpoints')
    for variant in 'sb':
        torch.save({'state_dict': classifier.state_dict()}, root / 'checkpoints' / f'wavevit-{variant}_in1k.pth')
    make_coco_fixture(str(root / 'data' / 'coco'))
    make_ade20k_fixture(str(root / 'data' / 'ade' / 'ADEChallengeData2016'))
    make_tiny_imagenet(str(root / 'data' / 'my_dataset'))
    return str(root)


@pytest.fixture(scope='module')
def runs(project):
    """The three train + test chains and the one without the hook, concurrently."""
    jobs = {library: (project, library, library) for library in RUNS}
    jobs['no_hook'] = (project, 'mmpretrain', 'no_hook', ['custom_hooks=[]', 'train_cfg.val_interval=2'])
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {name: pool.submit(train_then_test, *args) for name, args in jobs.items()}
        return {name: f.result() for name, f in futures.items()}


def _output(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f'{" ".join(proc.args)}\nfailed ({proc.returncode}):\n{proc.stdout[-6000:]}'
    return proc.stdout


@pytest.mark.parametrize('library', list(RUNS))
def test_mim_train_then_mim_test(runs, library):
    res = runs[library]
    out = _output(res['train'])
    assert 'Training finished successfully' in out
    assert re.search(r'loaded all \d+ backbone tensors from checkpoints/wavevit-[sb]_in1k\.pth', out)
    assert 'SafeCheckpointHook' in out  # the hook table of the Runner lists the doc's hook
    ckpt = torch.load(res['checkpoint'], map_location='cpu', weights_only=True)  # no unpickling needed
    assert ckpt['state_dict']['backbone.patch_embed1.proj.weight'].shape[0] == DIMS[0]
    out = _output(res['test'])
    assert 'Testing finished successfully' in out
    assert re.search(METRICS[library], out), out[-3000:]


def test_checkpoint_without_the_hook_is_refused_with_the_fix(runs):
    res = runs['no_hook']
    _output(res['train'])
    assert res['test'].returncode != 0, 'mim test loaded a checkpoint written without SafeCheckpointHook'
    out = res['test'].stdout
    assert 'HistoryBuffer' in out  # what the file pickles
    # the way out, from wavevit_mm's loader: the hook for the next training, the rewrite tool for this file
    assert 'SafeCheckpointHook' in out.split('Traceback', 1)[-1] and 'mmengine2safe.py' in out


def test_inheriting_this_projects_configs(project, tmp_path):
    """The page's way: a link to CONFIG_DIR and a relative _base_; an absolute path works too; the package
    prefix fails with the error the page quotes."""
    from mmengine.config import Config
    configs = osp.join(project, 'configs')
    link = osp.join(configs, 'wavevit_mm')
    if not osp.islink(link):
        os.symlink(CONFIG_DIR, link)
    path = osp.join(project, 'configs', 'mask-rcnn_wavevit-s_fpn_1x_my-data.py')
    assert osp.isfile(path), 'the inheritance example is missing from the page'
    base = Config.fromfile(osp.join(CONFIG_DIR, 'detection', 'mask-rcnn_wavevit-s_fpn_1x_coco.py'))
    for config in (path, str(tmp_path / 'absolute.py')):
        if config != path:
            with open(path) as f:
                text = f.read().replace("'./wavevit_mm/", repr(CONFIG_DIR + '/')[:-1])
            with open(config, 'w') as f:
                f.write(text)
        cfg = Config.fromfile(config)
        assert cfg.model.backbone == base.model.backbone and cfg.model.backbone.type == 'WaveViT'
        assert cfg.model.roi_head.bbox_head.num_classes == 3 and cfg.model.roi_head.mask_head.num_classes == 3
        assert cfg.custom_imports == base.custom_imports and cfg.get('custom_hooks') == base.get('custom_hooks')
        assert any(h.get('type') == 'SafeCheckpointHook' for h in cfg.get('custom_hooks') or []), \
            'the shipped configs must list SafeCheckpointHook (docs/downstream.md says the inherited config brings it)'
    prefixed = tmp_path / 'prefixed.py'
    prefixed.write_text("_base_ = 'wavevit_mm::detection/mask-rcnn_wavevit-s_fpn_1x_coco.py'\n")
    with pytest.raises(AssertionError, match='mmengine does not support to load wavevit_mm config'):
        Config.fromfile(str(prefixed))
    with open(DOC) as f:
        assert 'AssertionError: mmengine does not support to load wavevit_mm config.' in f.read()
