"""Semantic segmentation data transforms (mmseg 1.x).

:class:`CheckSegLabels` catches a label file whose class indices do not fit the model's ``num_classes``
right where it is loaded, and names the file. Without it such a file surfaces much later, as an
``IndexError: Target ... is out of bounds`` deep inside the loss on CPU, an opaque device-side assert on
GPU, or, during evaluation, as values that ``IoUMetric`` silently drops.
"""
from typing import Dict, List, Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

__all__ = ['CheckSegLabels']


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
