"""Clear, early errors for the usual detection mistakes: a missing pretrained file, a missing annotation file,
and images too small for the backbone."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm

from wavevit_mm.testing import TINY_ARCH
from wavevit_mm.testing.det_data import DET_CONFIG_DIR, make_coco_fixture, synthetic_batch

import wavevit_mm  # noqa: F401

pytestmark = pytest.mark.usefixtures('one_torch_thread', 'mmdet_scope')

MASK_RCNN_S = osp.join(DET_CONFIG_DIR, 'mask-rcnn_wavevit-s_fpn_1x_coco.py')


def _tiny_mask_rcnn_cfg() -> Config:
    cfg = Config.fromfile(MASK_RCNN_S)
    cfg.model.backbone.arch = TINY_ARCH
    cfg.model.backbone.init_cfg = None
    cfg.model.neck.in_channels = TINY_ARCH['embed_dims']
    cfg.model.train_cfg.rcnn.sampler.num = 64
    return cfg


def test_missing_pretrained_checkpoint(tmp_path, monkeypatch):
    """The shipped config, run where the converted ImageNet checkpoint has not been made: the error names the
    file when the model is initialised (before any training)."""
    from mmdet.registry import MODELS
    monkeypatch.chdir(tmp_path)  # the configs' path is relative: checkpoints/wavevit-s_in1k.pth
    cfg = Config.fromfile(MASK_RCNN_S)
    model = MODELS.build(cfg.model)
    with pytest.raises(FileNotFoundError, match=r'checkpoint file not found: checkpoints/wavevit-s_in1k\.pth'):
        model.init_weights()
    # an explicit path (e.g. --cfg-options model.backbone.init_cfg.checkpoint=...) is named the same way
    cfg.model.backbone.init_cfg.checkpoint = str(tmp_path / 'nowhere' / 'wavevit-s.pth')
    with pytest.raises(FileNotFoundError, match='checkpoint file not found: .*nowhere/wavevit-s.pth'):
        MODELS.build(cfg.model).init_weights()


def test_missing_annotation_file(tmp_path):
    """A COCO layout without its annotation file: the error names the missing json."""
    from mmdet.registry import DATASETS
    root = make_coco_fixture(str(tmp_path / 'coco'))
    cfg = Config.fromfile(MASK_RCNN_S)
    ds = cfg.train_dataloader.dataset
    ds.update(data_root=root, data_prefix=dict(img='train2017/'))  # ann_file: the config's instances_train2017
    assert DATASETS.build(ds.copy())[0]['inputs'].shape[0] == 3   # the fixture itself is complete
    ds.ann_file = 'annotations/instances_minitrain2017.json'
    with pytest.raises(FileNotFoundError, match=r'annotations/instances_minitrain2017\.json'):
        DATASETS.build(ds)


def test_images_smaller_than_32_pixels():
    """The backbone needs at least 32 x 32 pixels. The configs' data preprocessor pads every batch to a
    multiple of 32, so a small image still runs; without that padding the backbone's message says what is
    wrong instead of a shape error deep inside the model."""
    from mmdet.registry import MODELS
    cfg = _tiny_mask_rcnn_cfg()
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.init_weights()
    model.train()
    assert model.data_preprocessor.pad_size_divisor == 32

    with pytest.raises(ValueError, match=r'at least 32 x 32 pixels .*got 24 x 20'):
        model.backbone(torch.zeros(1, 3, 24, 20))

    # padded to 32 x 32 by the configs' preprocessor: runs
    data = model.data_preprocessor(synthetic_batch(24, 20, batch=1), True)
    assert tuple(data['inputs'].shape[-2:]) == (32, 32)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert torch.isfinite(losses['loss_cls'])

    # a preprocessor without padding hands the 24 x 20 image to the backbone: a clear error
    cfg.model.data_preprocessor.pad_size_divisor = 1
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    data = model.data_preprocessor(synthetic_batch(24, 20, batch=1), True)
    assert tuple(data['inputs'].shape[-2:]) == (24, 20)
    with pytest.raises(ValueError, match=r'WaveViT needs inputs of at least 32 x 32 pixels .*got 24 x 20'):
        model.loss(data['inputs'], data['data_samples'])
