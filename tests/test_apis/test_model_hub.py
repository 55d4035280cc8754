"""Model names and weights: mmpretrain's hub and Inferencer resolve ``wavevit-*`` names after ``import wavevit_mm``,
``wavevit-mm://`` addresses load local converted files, a missing file says where to get it, the docs and the
metafiles agree on the official download of each variant, and ``mim download`` finds a converted file."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

import wavevit_mm  # noqa: F401  (registers the names and the wavevit-mm:// scheme)
from wavevit_mm.apis import CHECKPOINTS_ENV, checkpoint_dir, get_model_info, list_models, local_weights_path
from wavevit_mm.testing.metafiles import indexed_models
from wavevit_mm.utils.paths import PROJECT_ROOT

S_NAME = 'wavevit-s_8xb128_in1k-tokenlabel'
DEMO_IMAGE = osp.join(PROJECT_ROOT, 'demo', 'demo.jpg')
CLS_NAMES = [f'wavevit-{a}_{r}' for a in 'bls' for r in ('8xb128_in1k', '8xb128_in1k-tokenlabel',
                                                           '8xb32_in1k-384px-tokenlabel')]

pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture
def checkpoints(tmp_path, monkeypatch):
    """An empty local checkpoint folder in $WAVEVIT_MM_CHECKPOINTS."""
    monkeypatch.setenv(CHECKPOINTS_ENV, str(tmp_path))
    return tmp_path


def test_mmpretrain_lists_and_builds_the_models_by_name():
    import mmpretrain
    assert mmpretrain.list_models('*wave*') == sorted(CLS_NAMES)
    # mmpretrain reads the task off the published results, which only the token-labeling models have
    assert mmpretrain.list_models('wavevit', task='Image Classification') == sorted(
        n for n in CLS_NAMES if 'tokenlabel' in n)
    model = mmpretrain.get_model(S_NAME)
    assert type(model.backbone).__name__ == 'WaveViT' and model.head.aux_fc is not None
    assert sum(p.numel() for p in model.parameters()) == 22_690_176  # the official Wave-ViT-S classifier
    assert len(model._dataset_meta['classes']) == 1000  # ImageNet class names, from the config's test set


def test_pretrained_name_loads_the_local_converted_file(checkpoints):
    """get_model(name, pretrained=True) and ImageClassificationInferencer(name) read wavevit-mm://wavevit-s_in1k.pth
    from $WAVEVIT_MM_CHECKPOINTS; a second process-free check that the Inferencer predicts with those weights."""
    from mmpretrain import ImageClassificationInferencer, get_model
    source = get_model(S_NAME)
    with torch.no_grad():
        for p in source.parameters():
            p.normal_(0, 0.05)
    path = checkpoints / 'wavevit-s_in1k.pth'
    assert local_weights_path(get_model_info(S_NAME).weights) == str(path)
    torch.save({'meta': {'arch': 's', 'aux_head': True}, 'state_dict': source.state_dict()}, path)

    loaded = get_model(S_NAME, pretrained=True)
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key

    inferencer = ImageClassificationInferencer(S_NAME, device='cpu')  # pretrained=True is the default
    result = inferencer(DEMO_IMAGE)[0]
    torch.testing.assert_close(inferencer.model.head.fc.weight, source.head.fc.weight, rtol=0, atol=0)
    assert result['pred_scores'].shape == (1000, ) and result['pred_class'] == loaded._dataset_meta['classes'][
        result['pred_label']]


def test_missing_converted_file_names_download_and_converter(checkpoints):
    from mmpretrain import get_model
    info = get_model_info(S_NAME)
    with pytest.raises(FileNotFoundError) as exc:
        get_model(S_NAME, pretrained=True)
    message = str(exc.value)
    assert str(checkpoints / 'wavevit-s_in1k.pth') in message
    assert info.official_weights in message and 'drive.google.com' in info.official_weights
    assert re.search(r'python \S+/tools/model_converters/wavevit2mm\.py DOWNLOADED\.pth\.tar \S+/wavevit-s_in1k\.pth',
                     message)


def test_missing_trained_weights_say_how_to_make_them(checkpoints):
    """Detection / segmentation models have no published weights: the address names the config to train."""
    from mmengine.runner import CheckpointLoader
    for name in ('mask-rcnn_wavevit-s_fpn_1x_coco', 'upernet_wavevit-b_8xb2-160k_ade20k-512x512',
                 'wavevit-l_8xb128_in1k'):
        info = get_model_info(name)
        assert info.weights == f'wavevit-mm://{name}.pth' and info.official_weights is None
        with pytest.raises(FileNotFoundError, match=r'No weights of this model are published') as exc:
            CheckpointLoader.load_checkpoint(info.weights)
        assert f'tools/train.py {info.config}' in str(exc.value)


def test_index_covers_every_task_and_rejects_unknown_names():
    assert len(list_models(task='Object Detection')) == 10 and len(list_models(task='Semantic Segmentation')) == 2
    assert list_models('upernet*') == ['upernet_wavevit-b_8xb2-160k_ade20k-512x512',
                                       'upernet_wavevit-s_8xb2-160k_ade20k-512x512']
    info = get_model_info('Mask-RCNN_WaveViT-S_FPN_1x_COCO')  # names are case-insensitive
    assert info.config == osp.join(PROJECT_ROOT, 'configs', 'detection', 'mask-rcnn_wavevit-s_fpn_1x_coco.py')
    with pytest.raises(ValueError, match=r"closest: \['mask-rcnn_wavevit-s_fpn_1x_coco'"):
        get_model_info('mask-rcnn_wavevit-s_fpn_1x')


def test_checkpoint_dir_default_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv(CHECKPOINTS_ENV, raising=False)
    assert checkpoint_dir() == osp.join(PROJECT_ROOT, 'checkpoints')  # where the configs look (checkpoints/...)
    monkeypatch.setenv(CHECKPOINTS_ENV, str(tmp_path))
    assert local_weights_path('wavevit-mm://x.pth') == str(tmp_path / 'x.pth')
    assert local_weights_path('work_dirs/epoch_1.pth') == 'work_dirs/epoch_1.pth'


def test_official_weights_per_variant_in_metafiles_and_docs():
    """Each official checkpoint (6: S/B/L at 224 and 384) is the download of exactly one model, converted to the
    file the configs expect, and docs/converting_weights.md gives the same link and file in that model's row."""
    with open(osp.join(PROJECT_ROOT, 'docs', 'converting_weights.md')) as f:
        rows = {line.split('`')[1]: line for line in f if line.startswith('| Wave-ViT-')}
    official = [m for m in indexed_models() if 'Converted From' in m]
    assert sorted(m['Name'] for m in official) == sorted(n for n in CLS_NAMES if 'tokenlabel' in n)
    assert len({m['Converted From']['Weights'] for m in official}) == 6
    for m in official:
        arch = m['Name'][len('wavevit-')]
        file = f'wavevit-{arch}_in1k{"-384px" if "384px" in m["Name"] else ""}.pth'
        assert m['Weights'] == f'wavevit-mm://{file}', m['Name']
        row = rows[m['Name']]
        assert m['Converted From']['Weights'] in row and f'checkpoints/{file}' in row, m['Name']
    for m in indexed_models():
        assert m['Weights'].startswith('wavevit-mm://'), m['Name']


def test_mim_download_finds_a_converted_file(tmp_path):
    """mim 0.3.9 downloads only http(s) URLs; given the folder that holds the converted file (--dest) it reports
    the file and writes the resolved config."""
    (tmp_path / 'wavevit-s_in1k.pth').write_bytes(b'')
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    proc = subprocess.run([mim, 'download', 'wavevit_mm', '--config', S_NAME, '--dest', str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path),
                          env=dict(os.environ, PYTHONWARNINGS='ignore'))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f'wavevit-s_in1k.pth exists in {tmp_path}' in proc.stdout
    assert (tmp_path / f'{S_NAME}.py').is_file()
