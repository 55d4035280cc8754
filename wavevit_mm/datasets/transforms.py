"""Token-labeling data transforms: load a per-image dense top-k label map and keep it aligned with the image.

The label maps are the ones the TokenLabeling project (zihangJiang/TokenLabeling) publishes for ImageNet
(``label_top5_train_nfnet``, made by an NFNet-F6 teacher): one file per training image,
``<label_root>/<class folder>/<image file name without extension>.pt``, holding a ``torch.save``-d float16
tensor of shape ``[2, k, H, W]``: ``[0]`` the teacher's top-k class scores (logits) at every position of an
``H x W`` grid over the whole, uncropped image and ``[1]`` the matching class indices (stored as float16, so
exact for indices < 2048). See ``docs/classification.md``.

The maps are never resampled in the data pipeline (a dense 1000-class map is large). Instead the geometric
transforms here record where the final image lies in the original one, as a normalised box
``token_label_box = (x1, y1, x2, y2)`` in ``[0, 1]`` coordinates of the original image; ``x1 > x2``
(``y1 > y2``) means the image was flipped horizontally (vertically). The model turns the top-k map and the box
into dense targets on its own output grid (:func:`wavevit_mm.models.losses.token_label_targets`), so crops,
resizes and flips move the targets exactly as they move the pixels.
"""
import os.path as osp
from typing import Optional

import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform, RandomFlip
from mmpretrain.datasets.transforms import RandomResizedCrop
from mmpretrain.registry import TRANSFORMS

#: the keys token-label transforms add; give them to ``PackInputs(algorithm_keys=...)``
TOKEN_LABEL_KEYS = ('token_label', 'token_label_box')


@TRANSFORMS.register_module()
class LoadTokenLabel(BaseTransform):
    """Load the dense top-k label map of ``results['img_path']``.

    **Added keys:** ``token_label`` (``np.float32`` array ``[2, k, H, W]``: scores, class indices) and
    ``token_label_box`` (``np.float32`` ``(0, 0, 1, 1)``: the image is still the whole original image).

    Args:
        label_root (str): Folder of the label maps, ``<label_root>/<class folder>/<image stem>.pt``.
        suffix (str): File suffix of the maps. Defaults to ``'.pt'``.
        num_classes (int, optional): If given, class indices must be below it.
    """

    def __init__(self, label_root: str, suffix: str = '.pt', num_classes: Optional[int] = None) -> None:
        if not label_root:
            raise ValueError('LoadTokenLabel: label_root is empty; set it to the folder of the token label maps')
        self.label_root = label_root
        self.suffix = suffix
        self.num_classes = num_classes

    def label_path(self, img_path: str) -> str:
        """Where the label map of ``img_path`` must be."""
        folder = osp.basename(osp.dirname(img_path))
        stem = osp.splitext(osp.basename(img_path))[0]
        return osp.join(self.label_root, folder, stem + self.suffix)

    def transform(self, results: dict) -> dict:
        img_path = results.get('img_path')
        if img_path is None:
            raise KeyError('LoadTokenLabel needs results["img_path"] (load images from files)')
        path = self.label_path(img_path)
        if not osp.isfile(path):
            if not osp.isdir(self.label_root):
                raise FileNotFoundError(f'token label folder not found: {self.label_root} (needed for {path})')
            raise FileNotFoundError(f'token label map not found: {path} (for image {img_path})')
        data = torch.load(path, map_location='cpu', weights_only=True)
        if not isinstance(data, torch.Tensor) or data.dim() != 4 or data.shape[0] != 2:
            shape = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
            raise ValueError(f'{path}: expected a tensor of shape [2, k, H, W] (top-k scores, indices), got {shape}')
        label = data.float().numpy()
        idx = label[1]
        if (idx < 0).any() or (idx != np.round(idx)).any():
            raise ValueError(f'{path}: class indices (second slice) must be non-negative integers')
        if self.num_classes is not None and idx.max() >= self.num_classes:
            raise ValueError(f'{path}: class index {int(idx.max())} >= num_classes {self.num_classes}')
        results['token_label'] = label
        results['token_label_box'] = np.array([0., 0., 1., 1.], dtype=np.float32)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(label_root={self.label_root!r}, suffix={self.suffix!r})'


@TRANSFORMS.register_module()
class TokenLabelRandomResizedCrop(RandomResizedCrop):
    """mmpretrain's ``RandomResizedCrop`` (same arguments, same randomness) that also moves the token label box.

    Works without a token label too (then it is exactly ``RandomResizedCrop``).
    """

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        offset_h, offset_w, target_h, target_w = self.rand_crop_params(img)
        img = mmcv.imcrop(img, bboxes=np.array([offset_w, offset_h, offset_w + target_w - 1,
                                                offset_h + target_h - 1]))
        results['img'] = mmcv.imresize(img, tuple(self.scale[::-1]), interpolation=self.interpolation,
                                       backend=self.backend)
        results['img_shape'] = results['img'].shape
        if 'token_label_box' in results:
            x1, y1, x2, y2 = (float(v) for v in results['token_label_box'])
            u0, u1 = offset_w / w, (offset_w + target_w) / w  # crop in [0, 1] coordinates of the current image
            v0, v1 = offset_h / h, (offset_h + target_h) / h
            results['token_label_box'] = np.array(
                [x1 + (x2 - x1) * u0, y1 + (y2 - y1) * v0, x1 + (x2 - x1) * u1, y1 + (y2 - y1) * v1],
                dtype=np.float32)
        return results


@TRANSFORMS.register_module()
class TokenLabelRandomFlip(RandomFlip):
    """mmcv's ``RandomFlip`` (same arguments) that also flips the token label box.

    Horizontal and vertical flips are supported; a diagonal flip raises ``ValueError``.
    """

    def _flip(self, results: dict) -> None:
        super()._flip(results)
        if 'token_label_box' not in results:
            return
        x1, y1, x2, y2 = (float(v) for v in results['token_label_box'])
        direction = results['flip_direction']
        if direction == 'horizontal':
            x1, x2 = x2, x1
        elif direction == 'vertical':
            y1, y2 = y2, y1
        else:
            raise ValueError(f'TokenLabelRandomFlip: flip direction {direction!r} is not supported with token '
                             'labels (use horizontal or vertical)')
        results['token_label_box'] = np.array([x1, y1, x2, y2], dtype=np.float32)
