#!/usr/bin/env python
"""Class-activation map of a Wave-ViT classifier on one image (pytorch-grad-cam), written as a PNG.

    python tools/visualization/vis_cam.py demo/demo.jpg wavevit-s_8xb128_in1k-tokenlabel \\
        --checkpoint checkpoints/wavevit-s_in1k.pth --out-file cam.png
    python tools/visualization/vis_cam.py IMAGE CONFIG [--checkpoint CKPT] [--target-layers NAME ...]
        [--method gradcam|gradcam++|xgradcam|eigencam|layercam|...] [--target-category K] [--eigen-smooth]

MODEL is a classification config file or a model name of the project (``wavevit_mm.apis.list_models()``);
CHECKPOINT a file or a ``wavevit-mm://`` address, loaded with ``strict=True`` (without one the weights are
random, and the figure title says so). The image goes through the config's test pipeline; the figure shows the
network input and the map over it, for the predicted class (or ``--target-category``).

Target layers: Wave-ViT's blocks return tokens, ``B x N x C``; the tool reshapes them to the stage's map,
``B x C x h x w`` with ``h x w = ceil(H / 2^(i+1)) x ceil(W / 2^(i+1))`` for stage ``i`` (1-4) of an ``H x W``
input, so any input size works. The default layer is the last block of stage 4 (``backbone.block4.2`` for S:
7 x 7 at 224), the tokens the class-attention head reads, as a CNN's last feature map. ``backbone.block3.5``
(S; 14 x 14) gives a finer, less class-specific map. The head's layers hold no spatial map (class token).
Requires ``pip install grad-cam`` (requirements/tests.txt).
"""
import argparse
import math
import os
import os.path as osp
import sys
from typing import List, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import DictAction

from wavevit_mm.apis import check_weights
from wavevit_mm.utils.model_utils import load_config

try:
    import pytorch_grad_cam
    from pytorch_grad_cam.base_cam import BaseCAM
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError('tools/visualization/vis_cam.py needs pytorch-grad-cam: pip install grad-cam') from exc

#: CAM methods by lower-case name (mmpretrain's vis_cam.py offers the same set)
METHODS = {'gradcam++': pytorch_grad_cam.GradCAMPlusPlus,
           **{cls.__name__.lower(): cls for cls in BaseCAM.__subclasses__()}}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('img', help='image file')
    parser.add_argument('model', help='classification config file or model name')
    parser.add_argument('--checkpoint', help='checkpoint file or wavevit-mm:// address; none: random weights')
    parser.add_argument('--target-layers', nargs='+', default=[],
                        help='module names (default: the last block of the last stage, backbone.block4.<last>)')
    parser.add_argument('--method', default='gradcam', help=f'one of {sorted(METHODS)}')
    parser.add_argument('--target-category', type=int, help='class index to explain (default: the predicted one)')
    parser.add_argument('--eigen-smooth', action='store_true', help="first principal component of cam x activations")
    parser.add_argument('--aug-smooth', action='store_true', help='average over flips and scales (test-time aug.)')
    parser.add_argument('--out-file', default='cam.png', help='output PNG (default: cam.png)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings, key=value')
    args = parser.parse_args(argv)
    if args.method.lower() not in METHODS:
        parser.error(f'unknown --method {args.method!r}; choose from {sorted(METHODS)}')
    return args


def stage_grids(height: int, width: int, num_stages: int = 4) -> List[Tuple[int, int]]:
    """The token grid of each Wave-ViT stage for an ``height x width`` input (strides 4, 8, 16, 32)."""
    return [(math.ceil(height / 2**(i + 2)), math.ceil(width / 2**(i + 2))) for i in range(num_stages)]


def tokens_to_map(tensor: torch.Tensor, grids: Sequence[Tuple[int, int]]) -> torch.Tensor:
    """pytorch-grad-cam ``reshape_transform``: ``B x N x C`` stage tokens -> ``B x C x h x w`` (maps pass)."""
    if tensor.dim() == 4:
        return tensor
    grid = None if tensor.dim() != 3 else next(((h, w) for h, w in grids if h * w == tensor.shape[1]), None)
    if grid is None:
        raise ValueError(f'target layer output of shape {tuple(tensor.shape)} is no stage token map of this input '
                         f'(stage grids {list(grids)}): choose a block or norm of the backbone')
    return tensor.transpose(1, 2).reshape(tensor.shape[0], tensor.shape[2], *grid)


def target_layers(model, names: Sequence[str]) -> List[Tuple[str, torch.nn.Module]]:
    modules = dict(model.named_modules())
    if not names:
        last_stage = [n for n in modules if n.startswith('backbone.block') and n.count('.') == 2]
        names = [max(last_stage, key=lambda n: (int(n.split('.')[1][len('block'):]), int(n.split('.')[2])))]
    unknown = [n for n in names if n not in modules]
    if unknown:
        candidates = [n for n in modules if n.startswith('backbone.') and n.count('.') <= 2]
        raise ValueError(f'no module {unknown} in the model; blocks and norms: {candidates}')
    return [(n, modules[n]) for n in names]


def load_model(args):
    """The classifier of ``args.model`` in eval mode, with the checkpoint loaded strictly."""
    from mmengine.runner import load_checkpoint
    from mmpretrain import get_model
    cfg = load_config(args.model, args.cfg_options)
    if cfg.get('default_scope') != 'mmpretrain':
        raise ValueError(f'{cfg.filename} is no classification (mmpretrain) config: vis_cam explains class scores')
    if args.checkpoint:
        check_weights(args.checkpoint)
    model = get_model(cfg, device=args.device)
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True)
    return model.eval(), cfg


def input_batch(model, cfg, img: str) -> Tuple[torch.Tensor, np.ndarray]:
    """The preprocessed input (``1 x 3 x H x W``) and the RGB image it was made from, as the test pipeline
    resizes and crops it."""
    from mmcv.transforms import Compose
    from mmengine.dataset import default_collate
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import TRANSFORMS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        pipeline = Compose([TRANSFORMS.build(t) for t in cfg.test_dataloader.dataset.pipeline])
    data = pipeline(dict(img_path=img))
    shown = data['inputs'].numpy().transpose(1, 2, 0)[..., ::-1]  # the pipeline keeps mmcv's BGR order
    return model.data_preprocessor(default_collate([data]), False)['inputs'], np.ascontiguousarray(shown)


def save_figure(image: np.ndarray, overlay: np.ndarray, title: str, out_file: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.6))
    for ax, panel, name in zip(axes, (image, overlay), ('network input', 'class-activation map')):
        ax.imshow(panel)
        ax.set_title(name, fontsize=9)
        ax.axis('off')
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if not osp.isfile(args.img):
            raise FileNotFoundError(f'image not found: {args.img}')
        model, cfg = load_model(args)
        layers = target_layers(model, args.target_layers)
    except (FileNotFoundError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    inputs, image = input_batch(model, cfg, args.img)
    with torch.no_grad():
        scores = model(inputs).softmax(-1)[0]
    category = int(scores.argmax()) if args.target_category is None else args.target_category
    grids = stage_grids(*inputs.shape[2:])
    cam = METHODS[args.method.lower()](model=model, target_layers=[m for _, m in layers],
                                       reshape_transform=lambda t: tokens_to_map(t, grids))
    try:
        grayscale = cam(input_tensor=inputs, targets=[ClassifierOutputTarget(category)],
                        eigen_smooth=args.eigen_smooth, aug_smooth=args.aug_smooth)[0]
    except ValueError as exc:  # a target layer without a spatial map
        print(f'error: {exc}', file=sys.stderr)
        return 1
    overlay = show_cam_on_image(image.astype(np.float32) / 255, grayscale, use_rgb=True)

    classes = getattr(model, '_dataset_meta', {}).get('classes')
    name = f' {classes[category]}' if classes and category < len(classes) else ''
    weights = args.checkpoint or 'RANDOM weights (no --checkpoint)'
    layer_names = ', '.join(n for n, _ in layers)
    title = (f'{args.method} for class {category}{name} (p {scores[category]:.3f}) at {layer_names}\n'
             f'{osp.basename(args.img)} | {weights}')
    save_figure(image, overlay, title, args.out_file)
    print(title.replace('\n', ' | '))
    print(f'map {grayscale.shape[1]} x {grayscale.shape[0]} (from {", ".join(f"{h} x {w}" for h, w in grids)} stage '
          f'grids); saved {args.out_file}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
