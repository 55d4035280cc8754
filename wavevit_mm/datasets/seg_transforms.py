"""Semantic segmentation data transforms (mmseg 1.x): label files checked where they are loaded, errors naming them.

- :class:`LoadSegAnnotations`: mmseg's ``LoadAnnotations`` (same arguments) that reads a label map at its real bit
  depth (mmseg casts to uint8, so a 16-bit label holding 300 silently becomes class 43) and refuses one that is
  not a single-channel map of its image's size (mmseg trains on a larger map silently misaligned, and a smaller,
  transposed or RGB one fails later with "stack expects each tensor to be equal size", no file named).
- :class:`CheckSegLabels`: refuses class indices that do not fit the model's ``num_classes`` (otherwise an
  ``IndexError: Target ... is out of bounds`` deep inside the loss on CPU, an opaque device-side assert on GPU,
  or values ``IoUMetric`` silently drops), and checks shape and size too when the map was loaded by mmseg's
  ``LoadAnnotations``.
"""
from typing import Dict, List, Optional, Sequence

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

__all__ = ['CheckSegLabels', 'LoadSegAnnotations', 'check_label_map_shape']


def check_label_map_shape(gt: np.ndarray, results: Dict, sizes: Sequence[str] = ('ori_shape', )) -> None:
    """Raise ``ValueError`` unless ``gt`` is a 2-D map of integers of its image's size: one of ``results[k]`` for
    ``k`` in ``sizes`` (``ori_shape``: the image as loaded), when known. The message names the label file, the
    image and the fix."""
    path = results.get('seg_map_path', '<label map without a seg_map_path>')
    image = results.get('img_path', 'its image')
    if gt.ndim != 2:
        channels = f'{gt.shape[-1]} channels' if gt.ndim == 3 else f'shape {gt.shape}'
        raise ValueError(
            f'label file {path} has {channels}: a segmentation label must be a single-channel image of class '
            'indices (one value per pixel), not an RGB / colour-coded picture. Convert the colours to indices '
            '(e.g. a palette PNG, mode "P", or an 8-bit grayscale PNG).')
    if not np.issubdtype(gt.dtype, np.integer):
        raise ValueError(f'label file {path} holds {gt.dtype} values; class indices must be integers (an 8- or '
                         '16-bit PNG)')
    known = [tuple(results[k][:2]) for k in sizes if results.get(k) is not None]
    if known and tuple(gt.shape) not in known:
        h, w = known[0]
        hint = (' (transposed: width and height swapped)' if tuple(gt.shape) == (w, h) and h != w else
                ' (larger than the image: it would be cropped out of alignment)' if gt.shape[0] >= h and
                gt.shape[1] >= w else '')
        raise ValueError(f'label file {path} is {gt.shape[0]} x {gt.shape[1]} (height x width), but its image '
                         f'{image} is {h} x {w}{hint}. A label must have its image\'s size, pixel for pixel: '
                         'check the pairing of images and labels, or resize the label with nearest-neighbour '
                         'interpolation.')


@TRANSFORMS.register_module()
class LoadSegAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` (same arguments and outputs) reading label maps at their real bit depth and
    checking them against their image (:func:`check_label_map_shape`); use it in its place.

    A map whose values fit in 8 bits is stored as uint8, as mmseg's; a 16-bit one with larger values keeps them
    (int64), so that :class:`CheckSegLabels` or the model sees the class the file holds, not a wrapped one.
    ``reduce_zero_label`` and the dataset's ``label_map`` are applied as by mmseg. Without a ``seg_map_path``
    (an image to predict on) it does nothing.
    """

    def _load_seg_map(self, results: dict) -> None:
        if results.get('seg_map_path') is None:
            # inference on an image alone (mmseg's Inferencer and inference_model drop the step named
            # LoadAnnotations from the test pipeline, not this one): nothing to load
            return
        img_bytes = fileio.get(results['seg_map_path'], backend_args=self.backend_args)
        gt = mmcv.imfrombytes(img_bytes, flag='unchanged', backend=self.imdecode_backend).squeeze()
        check_label_map_shape(gt, results)
        gt = gt.astype(np.uint8 if gt.size == 0 or (gt.min() >= 0 and gt.max() <= 255) else np.int64)
        if self.reduce_zero_label is None:
            self.reduce_zero_label = results['reduce_zero_label']
        if self.reduce_zero_label != results['reduce_zero_label']:
            raise ValueError(f'{type(self).__name__}(reduce_zero_label={self.reduce_zero_label}) but the dataset '
                             f'has reduce_zero_label={results["reduce_zero_label"]}: set the same in both')
        if self.reduce_zero_label:  # 0 (other) -> 255 (ignored), the classes 1.. -> 0..
            gt[gt == 0] = 255
            gt = gt - 1
            gt[gt == 254] = 255
        if results.get('label_map') is not None:
            original = gt.copy()
            for old_id, new_id in results['label_map'].items():
                gt[original == old_id] = new_id
        results['gt_seg_map'] = gt
        results['seg_fields'].append('gt_seg_map')


@TRANSFORMS.register_module()
class CheckSegLabels(BaseTransform):
    """Raise a clear ``ValueError`` for a segmentation map with class indices out of range.

    Place it right after ``LoadAnnotations``. It reads ``results['gt_seg_map']`` as that transform left it,
    i.e. after ``reduce_zero_label`` and the dataset's ``label_map`` were applied, and accepts the values
    ``0 .. num_classes - 1`` and ``ignore_index``. The error names the file, the offending values and the
    valid range. For ``reduce_zero_label=True`` datasets (ADE20K) the offending values are also given as
    stored in the file (loaded value + 1): there the file may hold 0 (``other``, ignored),
    ``1 .. num_classes`` and 255.

    Samples without a loaded map (the inference pipelines of ``MMSegInferencer`` and
    ``mmseg.apis.inference_model``, which drop ``LoadAnnotations``) pass through unchanged: there is
    nothing to check.

    Required keys: ``gt_seg_map`` (optional), ``seg_map_path`` (optional, for the message),
    ``reduce_zero_label`` (optional), ``label_map`` (optional).

    Args:
        num_classes (int): Number of classes of the model (ADE20K: 150).
        ignore_index (int): Label value the loss and the metric ignore (mmseg's default 255).
        reduce_zero_label (bool, optional): Whether the loaded map had ``reduce_zero_label`` applied.
            ``None`` (default) takes ``results['reduce_zero_label']``, which mmseg datasets set; it only
            changes how the offending values are reported.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255,
                 reduce_zero_label: Optional[bool] = None) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'num_classes must be a positive int, got {num_classes!r}')
        if num_classes > 255:
            raise ValueError(f'num_classes={num_classes}: mmseg loads label maps as uint8, so at most 255 '
                             'classes can be told apart from each other and from ignore_index')
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.reduce_zero_label = reduce_zero_label

    def transform(self, results: Dict) -> Dict:
        """Check ``results['gt_seg_map']``; return ``results`` unchanged or raise ``ValueError``."""
        gt = results.get('gt_seg_map')
        if gt is None:
            return results
        gt = np.asarray(gt)
        check_label_map_shape(gt, results, sizes=('ori_shape', 'img_shape'))  # as loaded, or as transformed
        if gt.size == 0 or (gt.min() >= 0 and gt.max() < self.num_classes):
            return results  # fast path: the common case needs one min and one max
        bad_mask = ((gt < 0) | (gt >= self.num_classes)) & (gt != self.ignore_index)
        if not bad_mask.any():
            return results
        bad: List[int] = np.unique(gt[bad_mask]).astype(np.int64).tolist()
        raise ValueError(self._message(results, bad, int(bad_mask.sum()), gt.size))

    def _message(self, results: Dict, bad: List[int], n_bad: int, n_total: int) -> str:
        path = results.get('seg_map_path', '<label map without a seg_map_path>')
        reduce_zero = self.reduce_zero_label
        if reduce_zero is None:
            reduce_zero = bool(results.get('reduce_zero_label', False))
        shown = bad if len(bad) <= 20 else bad[:20] + ['...']
        msg = (f'label file {path}: {n_bad} of {n_total} pixels have class indices out of range, values '
               f'{shown} (as loaded); valid are [0, {self.num_classes}) for num_classes={self.num_classes} '
               f'and ignore_index={self.ignore_index}.')
        if results.get('label_map'):
            msg += ' (The values are after the dataset\'s label_map.)'
        elif reduce_zero:
            stored = [v + 1 for v in bad[:20]] + (['...'] if len(bad) > 20 else [])
            msg += (f' With reduce_zero_label=True these are the values {stored} in the file, which may '
                    f'hold 0 (ignored), 1..{self.num_classes} (classes 0..{self.num_classes - 1}) and 255 '
                    '(ignored).')
        msg += (' Check that the dataset, the annotation files and the model\'s num_classes match (and '
                'reduce_zero_label).')
        return msg

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, ignore_index={self.ignore_index}, '
                f'reduce_zero_label={self.reduce_zero_label})')
