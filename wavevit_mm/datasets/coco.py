"""mmdet's ``CocoDataset`` with an annotation file that is checked instead of trusted.

mmdet drops what it cannot use without a word: boxes with a negative width or height, annotations whose
``category_id`` is not among the file's categories, images smaller than ``filter_cfg.min_size``; when nothing is
left, training fails much later with "need at least one array to concatenate". :class:`CheckedCocoDataset` takes
the same arguments and gives the same samples, and

- refuses boxes with a negative width or height (a malformed file: ``[x, y, w, h]`` written as ``[x1, y1, x2, y2]``
  gone wrong, or corrupted), naming the annotation file, the annotation ids and the images;
- warns, with counts and examples, about annotations of category ids the file does not define and about
  degenerate boxes (under 1 pixel wide or high, or outside their image), which mmdet skips;
- when training (``test_mode=False``) and no image is left after filtering, refuses with what removed them: no
  annotations at all, only unusable annotations, or smaller than ``min_size``.

Categories left out on purpose (``metainfo.classes`` a subset of the file's) are skipped silently, as by mmdet.
"""
import logging
from typing import Dict, List, Union

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from mmengine.logging import print_log

from ..models.ckpt_convert import format_examples


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """``CocoDataset`` (same arguments) that checks its annotation file (see the module docstring)."""

    def load_data_list(self) -> List[dict]:
        self._negative: List[str] = []
        self._unknown: Dict[int, int] = {}
        self._degenerate: List[str] = []
        self._unusable_images = 0
        data_list = super().load_data_list()
        if self._negative:
            raise ValueError(
                f'annotation file {self.ann_file}: {len(self._negative)} boxes have a negative width or height '
                f'(COCO boxes are [x, y, width, height]): {format_examples(self._negative)}. Fix the file.')
        if self._unknown:
            unknown = [f'{cat} ({n} annotations)' for cat, n in sorted(self._unknown.items())]
            print_log(f'annotation file {self.ann_file}: {sum(self._unknown.values())} annotations have category '
                      f'ids the file does not define, skipped: {format_examples(unknown)}', logger='current',
                      level=logging.WARNING)
        if self._degenerate:
            print_log(f'annotation file {self.ann_file}: {len(self._degenerate)} boxes are under 1 pixel wide or '
                      f'high, or outside their image, skipped: {format_examples(self._degenerate)}',
                      logger='current', level=logging.WARNING)
        return data_list

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        img_info, anns = raw_data_info['raw_img_info'], raw_data_info['raw_ann_info']
        usable = 0
        for ann in anns:
            if ann.get('ignore', False):
                continue
            x, y, w, h = ann['bbox']
            where = f"id {ann.get('id')} in {img_info.get('file_name')}"
            if w < 0 or h < 0:
                self._negative.append(f'{where}: {ann["bbox"]}')
            elif ann['category_id'] not in self.coco.cats:
                self._unknown[ann['category_id']] = self._unknown.get(ann['category_id'], 0) + 1
            elif (ann.get('area', w * h) <= 0 or w < 1 or h < 1
                  or min(x + w, img_info['width']) <= max(x, 0) or min(y + h, img_info['height']) <= max(y, 0)):
                self._degenerate.append(f'{where}: {ann["bbox"]}')
            else:
                usable += 1
        if anns and not usable:
            self._unusable_images += 1
        return super().parse_data_info(raw_data_info)

    def filter_data(self) -> List[dict]:
        valid = super().filter_data()
        if valid or self.test_mode:
            return valid
        if not self.data_list:
            raise ValueError(f'annotation file {self.ann_file} lists no images: check that it is the right file '
                             '(its "images" list)')
        min_size = (self.filter_cfg or {}).get('min_size', 0)
        small = sum(min(d['width'], d['height']) < min_size for d in self.data_list)
        empty = sum(not d['instances'] for d in self.data_list)
        raise ValueError(
            f'annotation file {self.ann_file}: none of its {len(self.data_list)} images is usable for training '
            f'with filter_cfg={self.filter_cfg}: {empty} have no usable annotation of the classes '
            f'{self.metainfo["classes"][:5]}{" ..." if len(self.metainfo["classes"]) > 5 else ""} '
            f'({self._unusable_images} of them only annotations that were skipped, see the warnings above), '
            f'{small} are smaller than min_size={min_size} pixels. Check the file (its categories against the '
            'classes, the boxes) and filter_cfg.')
