#!/usr/bin/env python
"""Run a Wave-ViT model of any of the three tasks on one image and write the painted prediction as a PNG.

    python demo/image_demo.py demo/demo.jpg wavevit-s_8xb128_in1k-tokenlabel \\
        --checkpoint wavevit-mm://wavevit-s_in1k.pth
    python demo/image_demo.py demo/demo.jpg mask-rcnn_wavevit-s_fpn_1x_coco --checkpoint work_dirs/.../epoch_12.pth
    python demo/image_demo.py demo/demo.jpg configs/segmentation/upernet_wavevit-s_8xb2-160k_ade20k-512x512.py \\
        --checkpoint work_dirs/.../iter_160000.pth

MODEL is a config file or a model name of the project's index (``wavevit_mm.apis.list_models()``). The task
follows from the config's ``default_scope``: classification (mmpretrain) prints and draws the top-k classes,
detection (mmdet) draws the boxes and masks scoring at least ``--score-thr``, segmentation (mmseg) overlays the
class map. The libraries' own Inferencers run the model and their visualizers draw.

CHECKPOINT is a file or a ``wavevit-mm://`` address (docs/converting_weights.md). Without one the model keeps
its random initialisation, and both the printed summary and the picture say so (``RANDOM WEIGHTS``): that
run shows the pipeline works, not what the model predicts.
"""
import argparse
import os.path as osp
import sys
from collections import Counter
from typing import List, Optional, Tuple

import mmcv
import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import DefaultScope

from wavevit_mm.apis import check_weights
from wavevit_mm.utils import model_utils

RANDOM_LABEL = 'RANDOM WEIGHTS (no --checkpoint)'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('img', help='image file')
    parser.add_argument('model', help='config file or model name (e.g. mask-rcnn_wavevit-s_fpn_1x_coco)')
    parser.add_argument('--checkpoint', help='checkpoint file or wavevit-mm:// address; none: random weights')
    parser.add_argument('--out-file', help='output PNG (default: outputs/<image>_<model>.png)')
    parser.add_argument('--device', default='cuda:0' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--topk', type=int, default=5, help='classification: classes to print and draw')
    parser.add_argument('--score-thr', type=float, default=0.3, help='detection: lowest score drawn')
    parser.add_argument('--opacity', type=float, default=0.5, help='segmentation: opacity of the class map')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings, key=value')
    return parser.parse_args(argv)


def load_config(model: str, cfg_options: Optional[dict] = None) -> Config:
    """The config of a config file or of a model name of the project's index, of one of the three libraries."""
    cfg = model_utils.load_config(model, cfg_options)
    model_utils.config_scope(cfg)
    return cfg


def dataset_meta_of(cfg: Config, datasets) -> dict:
    """Class names (and palette) of the config's test set, for a model without a checkpoint that has them."""
    return dict(datasets.get(cfg.test_dataloader.dataset.type).METAINFO)


def classify(cfg: Config, img: str, checkpoint: Optional[str], args) -> Tuple[np.ndarray, List[str]]:
    from mmpretrain.apis import ImageClassificationInferencer
    from mmpretrain.visualization import UniversalVisualizer
    inferencer = ImageClassificationInferencer(cfg, pretrained=checkpoint or False, device=args.device)
    sample = inferencer(img, return_datasamples=True)[0]
    scores, labels = sample.pred_score.topk(args.topk)
    classes = inferencer.classes or [str(i) for i in range(len(sample.pred_score))]
    sample.set_pred_label(labels)  # the visualizer draws every predicted label with its score
    visualizer = UniversalVisualizer()
    visualizer.visualize_cls(mmcv.imread(img, channel_order='rgb'), sample, classes=classes, draw_gt=False)
    lines = [f'top-{args.topk} classes:']
    for rank, (label, score) in enumerate(zip(labels.tolist(), scores.tolist()), 1):
        lines.append(f'  {rank}. {label:4d} {classes[label]:<40s} {100 * score:6.2f} %')
    return visualizer.get_image(), lines


def detect(cfg: Config, img: str, checkpoint: Optional[str], args) -> Tuple[np.ndarray, List[str]]:
    from mmdet.apis import DetInferencer
    from mmdet.registry import DATASETS
    inferencer = DetInferencer(model=cfg, weights=checkpoint, device=args.device, show_progress=False)
    if checkpoint is None:
        inferencer.model.dataset_meta = inferencer.visualizer.dataset_meta = dataset_meta_of(cfg, DATASETS)
    out = inferencer(img, return_vis=True, no_save_vis=True, no_save_pred=True, return_datasamples=True,
                     pred_score_thr=args.score_thr)
    pred = out['predictions'][0].pred_instances
    keep = pred.scores >= args.score_thr
    classes = inferencer.model.dataset_meta['classes']
    counts = Counter(classes[i] for i in pred.labels[keep].tolist())
    masks = ' and masks' if 'masks' in pred else ''
    lines = [f'{int(keep.sum())} boxes{masks} with score >= {args.score_thr} (of {len(pred)} detections)'
             + ''.join(f'{", " if i else ": "}{n} {name}' for i, (name, n) in enumerate(counts.most_common()))]
    return out['visualization'][0], lines


def segment(cfg: Config, img: str, checkpoint: Optional[str], args) -> Tuple[np.ndarray, List[str]]:
    from mmseg.apis import MMSegInferencer
    from mmseg.registry import DATASETS
    inferencer = MMSegInferencer(model=cfg, weights=checkpoint, device=args.device)
    inferencer.show_progress = False
    if checkpoint is None:
        meta = dataset_meta_of(cfg, DATASETS)
        inferencer.model.dataset_meta = dict(classes=meta['classes'], palette=meta['palette'])
    out = inferencer(img, return_vis=True, opacity=args.opacity)
    sem_seg = np.asarray(out['predictions'])
    classes = inferencer.model.dataset_meta['classes']
    ids, pixels = np.unique(sem_seg, return_counts=True)
    order = np.argsort(-pixels)[:5]
    lines = [f'{len(ids)} classes in the {sem_seg.shape[1]} x {sem_seg.shape[0]} map; largest: '
             + ', '.join(f'{classes[ids[i]]} {100 * pixels[i] / sem_seg.size:.1f} %' for i in order)]
    return out['visualization'], lines  # one image: mmseg returns its map and picture unlisted


def label_random(image: np.ndarray) -> np.ndarray:
    """Write RANDOM_LABEL across the bottom of an RGB image (a font size that fits its width)."""
    from mmengine.visualization import Visualizer
    visualizer = Visualizer(image=image)
    h, w = image.shape[:2]
    visualizer.draw_texts(RANDOM_LABEL, np.array([[4, h - 4]]), font_sizes=max(6, min(14, w // 25)), colors='red',
                          vertical_alignments='bottom', bboxes=dict(facecolor='white', alpha=0.85, pad=2))
    return visualizer.get_image()


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if not osp.isfile(args.img):
            raise FileNotFoundError(f'image not found: {args.img}')
        cfg = load_config(args.model, args.cfg_options)
        if args.checkpoint:
            check_weights(args.checkpoint)
    except (FileNotFoundError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    task = model_utils.task_of(cfg.default_scope)
    out_file = args.out_file or osp.join(
        'outputs', f'{osp.splitext(osp.basename(args.img))[0]}_{osp.splitext(osp.basename(cfg.filename))[0]}.png')
    run = dict(classification=classify, detection=detect, segmentation=segment)[task]
    with DefaultScope.overwrite_default_scope(cfg.default_scope):  # the pipelines are built in the current scope
        image, lines = run(cfg, args.img, args.checkpoint, args)
    if args.checkpoint is None:
        image = label_random(image)
        lines.insert(0, f'{RANDOM_LABEL}: the predictions are meaningless')
    mmcv.imwrite(np.ascontiguousarray(image[..., ::-1]), out_file)
    print(f'{task}: {cfg.filename} with {args.checkpoint or "random weights"} on {args.img}')
    print('\n'.join(lines))
    print(f'wrote {out_file} ({image.shape[1]} x {image.shape[0]})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
