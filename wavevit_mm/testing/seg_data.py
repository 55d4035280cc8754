"""Data for the segmentation tests: a tiny ADE20K-layout dataset and a CPU-sized copy of our configs.

The dataset is made from scikit-image's bundled sample photos (no download) with label maps drawn here,
stored with ADE20K's ``reduce_zero_label`` convention: 0 = "other" (ignored), 1..150 = classes 0..149,
255 = ignored.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.config import Config
from skimage import data as skdata
from skimage.draw import disk, polygon, rectangle

from ..utils.model_utils import iter_dicts
from ..utils.paths import CONFIG_DIR
from . import TINY_ARCH

SEG_CONFIG_DIR = osp.join(CONFIG_DIR, 'segmentation')
SEG_CONFIGS = {v: osp.join(SEG_CONFIG_DIR, f'upernet_wavevit-{v}_8xb2-160k_ade20k-512x512.py') for v in 'sb'}

#: (sample photo, height, width): sizes deliberately not multiples of 32 (nor of 16 for most)
TRAIN_IMAGES = [('astronaut', 72, 72), ('coffee', 66, 99), ('chelsea', 60, 90), ('rocket', 67, 100)]
VAL_IMAGES = [('immunohistochemistry', 70, 70), ('cat', 61, 92)]

#: the stored label values drawn (reduce_zero_label convention): wall 1, floor 4, tree 5, person 13
DRAWN_VALUES = (1, 4, 5, 13)


def _photo(name: str, h: int, w: int) -> np.ndarray:
    img = getattr(skdata, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return cv2.resize(img[..., :3], (w, h), interpolation=cv2.INTER_AREA)


def draw_label(h: int, w: int, seed: int) -> np.ndarray:
    """A label map in stored ADE20K values: wall background, a floor band, a tree triangle, a person disc,
    a strip of 0 (other, ignored) and a few 255 (ignored) pixels."""
    rng = np.random.default_rng(seed)
    label = np.full((h, w), 1, np.uint8)
    label[int(h * 0.7):, :] = 4
    rr, cc = polygon([h * 0.65, h * 0.2, h * 0.65], [w * 0.05, w * 0.2, w * 0.35], shape=(h, w))
    label[rr, cc] = 5
    rr, cc = disk((h * (0.4 + 0.1 * rng.random()), w * (0.6 + 0.1 * rng.random())), min(h, w) * 0.2, shape=(h, w))
    label[rr, cc] = 13
    rr, cc = rectangle((0, w - 6), end=(h - 1, w - 1), shape=(h, w))
    label[rr, cc] = 0
    label[:2, :2] = 255
    return label


def make_ade20k_fixture(root: str, bad_label: Optional[Tuple[str, int]] = None) -> str:
    """Write ``root/images/{training,validation}/*.jpg`` and ``root/annotations/.../*.png``.

    Args:
        root: The data root to create.
        bad_label: ``(stem, value)``: paint a block of this stored value into the label file of the
            image ``stem`` (e.g. ``('ADE_train_00000002', 200)``), to test the label check.

    Returns:
        ``root``.
    """
    for split, images in (('training', TRAIN_IMAGES), ('validation', VAL_IMAGES)):
        os.makedirs(osp.join(root, 'images', split), exist_ok=True)
        os.makedirs(osp.join(root, 'annotations', split), exist_ok=True)
        prefix = 'ADE_train_' if split == 'training' else 'ADE_val_'
        for i, (name, h, w) in enumerate(images, start=1):
            stem = f'{prefix}{i:08d}'
            cv2.imwrite(osp.join(root, 'images', split, stem + '.jpg'),
                        cv2.cvtColor(_photo(name, h, w), cv2.COLOR_RGB2BGR))
            label = draw_label(h, w, seed=i)
            if bad_label is not None and bad_label[0] == stem:
                label[h // 3:h // 3 + 5, w // 3:w // 3 + 5] = bad_label[1]
            cv2.imwrite(osp.join(root, 'annotations', split, stem + '.png'), label)
    return root


def shrink_pipelines(cfg: Config, crop: Tuple[int, int] = (64, 64)) -> None:
    """Scale the ADE20K pipelines down for CPU tests, keeping every transform: the crop becomes ``crop``
    and every resize scale shrinks by the same factor (the config's (2048, 512) becomes (256, 64) for a
    64 x 64 crop; the multi-scale test scales keep their ratios)."""
    factor = crop[0] / cfg.crop_size[0]
    nodes: List[dict] = []
    for key in ('train_pipeline', 'test_pipeline', 'tta_pipeline', 'train_dataloader', 'val_dataloader',
                'test_dataloader'):
        nodes.extend(iter_dicts(cfg.get(key)))
    for t in nodes:
        if t.get('type') in ('RandomResize', 'Resize') and t.get('scale') is not None:
            t['scale'] = tuple(int(round(s * factor)) for s in t['scale'])
        if t.get('type') == 'RandomCrop':
            t['crop_size'] = crop
    cfg.crop_size = crop
    cfg.model.data_preprocessor.size = crop
    cfg.data_preprocessor.size = crop


def tiny_model(cfg: Config) -> None:
    """Swap in the tiny Wave-ViT arch and narrow heads; drop the pretrained init (no checkpoint in tests)."""
    dims = TINY_ARCH['embed_dims']
    cfg.model.backbone.arch = dict(TINY_ARCH)
    cfg.model.backbone.init_cfg = None
    cfg.model.decode_head.in_channels = list(dims)
    cfg.model.decode_head.channels = 32
    cfg.model.auxiliary_head.in_channels = dims[2]
    cfg.model.auxiliary_head.channels = 16


def cpu_optim_wrapper(cfg: Config) -> None:
    """AmpOptimWrapper needs a GPU (mmengine asserts it): use a plain OptimWrapper with the same optimizer
    and paramwise settings when there is none."""
    if not torch.cuda.is_available() and cfg.optim_wrapper.get('type') == 'AmpOptimWrapper':
        cfg.optim_wrapper.type = 'OptimWrapper'
        cfg.optim_wrapper.pop('loss_scale', None)
        cfg.optim_wrapper.pop('dtype', None)


def set_data_root(cfg: Config, data_root: str) -> None:
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dl = cfg[key]
        dl.dataset.data_root = data_root
        dl.num_workers = 0
        dl.persistent_workers = False


def tiny_train_config(variant: str, data_root: str, work_dir: str, iters: int = 4) -> Config:
    """Our ``variant`` config with the tiny model, small images and ``iters`` iterations on ``data_root``."""
    cfg = Config.fromfile(SEG_CONFIGS[variant])
    tiny_model(cfg)
    shrink_pipelines(cfg)
    set_data_root(cfg, data_root)
    cpu_optim_wrapper(cfg)
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.default_hooks.checkpoint.interval = iters
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = work_dir
    return cfg


def stored_to_loaded(label: np.ndarray) -> np.ndarray:
    """What mmseg's ``LoadAnnotations(reduce_zero_label=True)`` makes of a stored ADE20K label map."""
    out = label.astype(np.int64) - 1
    out[label == 0] = 255
    out[label == 255] = 255
    return out


def seg_batch(sizes: Sequence[Tuple[int, int]], num_classes: int = 150, seed: int = 0) -> Dict[str, list]:
    """A raw ``dict(inputs, data_samples)`` batch as the dataloader gives it (uint8 CHW images, labels
    with some 255)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for h, w in sizes:
        inputs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g))
        label = torch.randint(0, num_classes, (1, h, w), generator=g)
        label[:, :2] = 255
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=label)
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)
