"""Data for the detection tests: a tiny COCO-format data set made from scikit-image's sample photos, the
config overrides that shrink the shipped configs to CPU-test size, and a synthetic batch builder.

The photos (astronaut, Chelsea the cat, a cup of coffee) ship with scikit-image; each gets one hand-drawn
polygon around its main object, labelled with the matching COCO category, from which the box, the area and
the polygon mask of a standard ``instances_*.json`` are computed.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np

from ..utils.paths import CONFIG_DIR, PROJECT_ROOT as REPO_ROOT  # noqa: F401

DET_CONFIG_DIR = osp.join(CONFIG_DIR, 'detection')

#: COCO category (id, name) and a polygon around the main object, in fractions of the image width/height
PHOTOS: Dict[str, Tuple[int, str, List[Tuple[float, float]]]] = {
    'astronaut': (1, 'person', [(0.30, 0.04), (0.62, 0.04), (0.72, 0.33), (0.95, 0.58), (0.97, 0.99),
                                (0.12, 0.99), (0.18, 0.55), (0.29, 0.33)]),
    'chelsea': (17, 'cat', [(0.08, 0.20), (0.30, 0.04), (0.62, 0.06), (0.90, 0.22), (0.96, 0.97),
                            (0.10, 0.97)]),
    'coffee': (47, 'cup', [(0.5 + 0.30 * np.cos(t), 0.52 + 0.36 * np.sin(t))
                           for t in np.linspace(0., 2 * np.pi, 12, endpoint=False)]),
}

#: the ids of COCO's 80 categories (in the order of mmdet's ``CocoDataset.METAINFO['classes']``)
COCO_CAT_IDS = (list(range(1, 12)) + list(range(13, 26)) + [27, 28] + list(range(31, 45)) + list(range(46, 66))
                + [67, 70] + list(range(72, 83)) + list(range(84, 91)))

#: the long side the photos are stored at (small, so the real-size models run fast on a CPU)
PHOTO_LONG_SIDE = 160


def _polygon_area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def make_coco_fixture(root: str, long_side: int = PHOTO_LONG_SIDE) -> str:
    """Write ``root/{train2017,val2017}/*.jpg`` and ``root/annotations/instances_{train,val}2017.json``.

    Both splits hold the same three photos (the tests check that training and evaluation run, not what is
    learnt); the category list is COCO's full one, as in the real annotation files. Returns ``root``.
    """
    import cv2
    import skimage.data
    from mmdet.datasets import CocoDataset
    names = CocoDataset.METAINFO['classes']
    categories = [dict(id=i, name=n, supercategory=n) for i, n in zip(COCO_CAT_IDS, names)]
    images, annotations = [], []
    for split in ('train2017', 'val2017'):
        os.makedirs(osp.join(root, split), exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    for img_id, (name, (cat_id, cat_name, poly)) in enumerate(PHOTOS.items(), start=1):
        rgb = getattr(skimage.data, name)()
        h0, w0 = rgb.shape[:2]
        scale = long_side / max(h0, w0)
        w, h = round(w0 * scale), round(h0 * scale)
        bgr = cv2.resize(np.ascontiguousarray(rgb[..., ::-1]), (w, h), interpolation=cv2.INTER_AREA)
        file_name = f'{name}.jpg'
        for split in ('train2017', 'val2017'):
            cv2.imwrite(osp.join(root, split, file_name), bgr)
        xy = np.array(poly, dtype=np.float64) * [w, h]
        x0, y0 = xy.min(0)
        x1, y1 = xy.max(0)
        images.append(dict(id=img_id, file_name=file_name, width=w, height=h))
        annotations.append(dict(id=img_id, image_id=img_id, category_id=cat_id, iscrowd=0,
                                bbox=[round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)],
                                area=round(_polygon_area(xy), 2),
                                segmentation=[[round(float(v), 2) for v in xy.ravel()]]))
        assert names[COCO_CAT_IDS.index(cat_id)] == cat_name
    for split in ('train2017', 'val2017'):
        with open(osp.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return root


def small_data_config(data_root: str, with_mask: bool = True, scale: Tuple[int, int] = (160, 128)) -> str:
    """Config text (appended to a config that inherits a shipped one) pointing it at the fixture, with
    small single-scale pipelines, batch 2, no worker processes and one logged line per iteration."""
    data_root = data_root.rstrip('/') + '/'
    return f'''
data_root = {data_root!r}
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask={with_mask}),
    dict(type='Resize', scale={scale!r}, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale={scale!r}, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask={with_mask}),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='annotations/instances_train2017.json',
                 data_prefix=dict(img='train2017/'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='annotations/instances_val2017.json',
                 data_prefix=dict(img='val2017/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
default_hooks = dict(logger=dict(interval=1))
'''



def det_config_names() -> List[str]:
    """The shipped detection configs (file names), sorted."""
    return sorted(f for f in os.listdir(DET_CONFIG_DIR) if f.endswith('.py'))


def synthetic_batch(height: int = 64, width: int = 96, batch: int = 2, with_mask: bool = True,
                    seed: int = 0) -> dict:
    """A data batch as a DataLoader with ``pseudo_collate`` yields it: uint8 images and ``DetDataSample`` s
    with two boxes (and bitmap masks) each, for ``model.data_preprocessor``."""
    import torch
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    boxes = torch.tensor([[0.05, 0.10, 0.55, 0.70], [0.35, 0.30, 0.95, 0.95]]) * torch.tensor(
        [width, height, width, height])
    for i in range(batch):
        inputs.append(torch.randint(0, 256, (3, height, width), generator=g, dtype=torch.uint8))
        sample = DetDataSample(metainfo=dict(img_id=i, img_shape=(height, width), ori_shape=(height, width),
                                             scale_factor=(1., 1.)))
        gt = InstanceData()
        gt.bboxes = boxes.clone()
        gt.labels = torch.tensor([1, 3 + i])
        if with_mask:
            masks = np.zeros((2, height, width), np.uint8)
            for k, (x0, y0, x1, y1) in enumerate(boxes.round().long().tolist()):
                masks[k, y0:y1, x0:x1] = 1
            gt.masks = BitmapMasks(masks, height, width)
        sample.gt_instances = gt
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def box_sizes_ok(bboxes, height: int, width: int, tol: float = 1e-3) -> bool:
    """All boxes inside ``[0, width] x [0, height]`` with x1 >= x0 and y1 >= y0."""
    b = bboxes
    return bool(((b[:, 0] >= -tol) & (b[:, 1] >= -tol) & (b[:, 2] <= width + tol) & (b[:, 3] <= height + tol)
                 & (b[:, 2] >= b[:, 0]) & (b[:, 3] >= b[:, 1])).all())


