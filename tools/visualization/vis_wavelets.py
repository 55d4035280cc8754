#!/usr/bin/env python
"""Show what Wave-ViT's wavelet attention sees: the Haar sub-bands of an image, and a stage-1 feature map
next to the sub-bands and the local (inverse-DWT) branch of the first wavelet attention.

Usage::

    python tools/visualization/vis_wavelets.py IMAGE [--out PNG] [--size H [W]]
                                               [--config CONFIG | --arch {s,b,l}] [--checkpoint CKPT]

Row 1: the image (resized to ``--size``; default: the config's test input size, e.g. 224 x 224 for the
ImageNet configs, 512 x 512 for the ADE20K ones, else 224 x 224), the four Haar sub-bands of its luminance
(LL, LH = high-pass along H, HL = high-pass along W, HH), computed with ``wavevit_mm.models.layers.haar_dwt2d``,
and the inverse transform of those sub-bands (the transform is orthonormal, so it reproduces the image; the
title gives the largest absolute error).

Row 2: inside ``block1[0].attn`` (the first ``WaveAttention`` of stage 1, at stride 4) of the backbone of
``--config`` (any wavevit_mm config; default: a Wave-ViT of ``--arch``): its input feature map, the four
sub-bands after the attention's 3x3 filter (the tensor its keys / values are embedded from), and the local
branch, the inverse DWT of those filtered sub-bands, which is concatenated to the attention output.
The input and the local branch are shown as their first principal component over channels, the
sub-bands as the L2 norm over channels.

Every panel has a colour bar; the image's three detail sub-bands share one (symmetric) colour scale, and so
do the four filtered sub-bands, so their magnitudes compare. Without ``--checkpoint`` the weights are random
(the figure title says so); a converted checkpoint (``tools/model_converters/wavevit2mm.py``) or an official
one can be given (``WaveViT.load_pretrained`` tells the two layouts apart). It is loaded into the
backbone in its dense layout, so a classifier's final norm (``head.norm``) becomes the backbone's ``norm4``
and no key is left over.
"""
import argparse
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from wavevit_mm.models.backbones.wavevit import WaveAttention, WaveViT
from wavevit_mm.models.layers import haar_dwt2d, haar_idwt2d
from wavevit_mm.utils.model_utils import build_model, config_scope, default_shape, load_config

BANDS = ('LL', 'LH', 'HL', 'HH')
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def load_image(path: str, size: Union[int, Sequence[int]]) -> torch.Tensor:
    """RGB image as a ``1 x 3 x H x W`` float tensor in [0, 255], resized (bicubic) to ``size``: an int (a
    square) or ``(H, W)``."""
    from PIL import Image
    if not osp.isfile(path):
        raise FileNotFoundError(f'image not found: {path}')
    H, W = (size, size) if isinstance(size, int) else size
    img = Image.open(path).convert('RGB').resize((W, H), Image.BICUBIC)
    return torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1)[None]


def image_luma(img: torch.Tensor) -> torch.Tensor:
    """Luminance in [0, 1] of a ``1 x 3 x H x W`` RGB tensor in [0, 255], as ``H x W``."""
    return (0.299 * img[0, 0] + 0.587 * img[0, 1] + 0.114 * img[0, 2]) / 255.


def image_subbands(img: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Haar sub-bands of the luminance (``1 x 4 x H/2 x W/2``) and the reconstruction from them."""
    bands = haar_dwt2d(image_luma(img)[None, None])
    return bands, haar_idwt2d(bands)


def build_backbone(args: argparse.Namespace) -> Tuple[WaveViT, Tuple[float, ...], Tuple[float, ...],
                                                      Tuple[int, int]]:
    """The backbone (weights loaded when ``--checkpoint`` is given), the normalisation mean / std and the
    input size (``--size``, else the config's test input size, else 224 x 224)."""
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    size = tuple(args.size * 2 if len(args.size) == 1 else args.size) if args.size else (224, 224)
    if args.config:
        cfg = load_config(args.config)
        if not args.size:
            size = default_shape(cfg, config_scope(cfg))
        # the dense layout, every stage out and norm4 in the backbone: a classifier checkpoint's final norm
        # (head.norm) then loads as norm4 (ckpt_convert.to_backbone_state_dict), as a detector's does, and no
        # key is left over. Stage 1, which the figure shows, is the same either way.
        cfg.model.backbone.update(out_indices=(0, 1, 2, 3), final_norm=True)
        model = build_model(cfg, 'cpu')
        backbone = getattr(model, 'backbone', None)
        if not isinstance(backbone, WaveViT):
            raise TypeError(f'{args.config}: model.backbone is {type(backbone).__name__}, not WaveViT')
        pre = cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor') or {}
        mean, std = tuple(pre.get('mean', mean)), tuple(pre.get('std', std))
    else:
        backbone = WaveViT(arch=args.arch, out_indices=(0, 1, 2, 3))
        backbone.init_weights()
    if args.checkpoint:
        backbone.load_pretrained(args.checkpoint, prefix='backbone.')  # an official file loads as it is
    return backbone.eval(), mean, std, size


def attention_internals(backbone: WaveViT, x: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Run the backbone on ``x`` and capture, in ``block1[0].attn``: its input map, the filtered sub-bands
    and the local (inverse-DWT) branch, exactly as the attention computes them."""
    attn = backbone.block1[0].attn
    if not isinstance(attn, WaveAttention):
        raise TypeError(f'block1[0].attn is {type(attn).__name__}, expected WaveAttention')
    captured: Dict[str, torch.Tensor] = {}

    def pre_hook(module, inputs):
        tokens, (H, W) = inputs
        captured['hw'] = torch.tensor([H, W])
        captured['input'] = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, H, W)

    def filter_hook(module, inputs, output):
        captured['bands'] = output

    handles = [attn.register_forward_pre_hook(pre_hook), attn.filter.register_forward_hook(filter_hook)]
    try:
        with torch.no_grad():
            backbone(x)
    finally:
        for h in handles:
            h.remove()
    H, W = captured['hw'].tolist()
    captured['local'] = haar_idwt2d(captured['bands'])[:, :, :H, :W]
    return captured


def channel_norm(x: torch.Tensor) -> np.ndarray:
    """``1 x C x H x W`` -> ``H x W``: L2 norm over channels."""
    return x[0].float().norm(dim=0).numpy()


def first_component(x: torch.Tensor) -> np.ndarray:
    """``1 x C x H x W`` -> ``H x W``: projection on the first principal component over channels (the
    channel norm says little after a LayerNorm, which makes every position's norm nearly equal)."""
    C, H, W = x.shape[1:]
    v = x[0].float().reshape(C, H * W).T
    v = v - v.mean(dim=0, keepdim=True)
    _, _, vh = torch.linalg.svd(v, full_matrices=False)
    proj = v @ vh[0]
    if proj.abs().max() > 0 and proj.max() < -proj.min():  # sign: make the larger extreme positive
        proj = -proj
    return proj.reshape(H, W).numpy()


def _show(fig, ax, img: np.ndarray, title: str, **kwargs) -> Tuple[float, float]:
    """``imshow`` with a colour bar; returns the colour scale (vmin, vmax) used."""
    im = ax.imshow(img, **kwargs)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return im.get_clim()


def render(image: torch.Tensor, bands: torch.Tensor, recon: torch.Tensor, feats: Dict[str, torch.Tensor],
           title: str, out: str) -> Dict[str, Tuple[float, float]]:
    """Write the 2 x 6 figure; returns each panel's colour scale (vmin, vmax) by panel name.

    Every panel has a colour bar. Panels that show comparable quantities share one scale: the image's three
    detail sub-bands (LH, HL, HH: one symmetric scale, so their relative energy shows), and the four filtered
    sub-bands of the attention (one scale from 0).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    H, W = image.shape[2:]
    fig, axes = plt.subplots(2, 6, figsize=(21, 7.4 * max(0.6, min(1.6, H / W))))
    scales: Dict[str, Tuple[float, float]] = {}
    err = float((recon[0, 0] - image_luma(image)).abs().max())
    axes[0, 0].imshow(image[0].permute(1, 2, 0).clamp(0, 255).byte().numpy())
    axes[0, 0].set_title(f'image {H}x{W}', fontsize=9)
    axes[0, 0].set_xticks([])
    axes[0, 0].set_yticks([])
    band_np = bands[0].numpy()
    detail = float(np.percentile(np.abs(band_np[1:]), 99.5)) or 1.
    for i, name in enumerate(BANDS):
        shape = f'{band_np.shape[1]}x{band_np.shape[2]}'
        if i == 0:
            scales[name] = _show(fig, axes[0, 1], band_np[0], f'image {name} {shape}', cmap='gray')
        else:
            scales[name] = _show(fig, axes[0, 1 + i], band_np[i], f'image {name} {shape} (shared scale)',
                                 cmap='RdBu_r', vmin=-detail, vmax=detail)
    scales['inverse DWT'] = _show(fig, axes[0, 5], recon[0, 0].numpy(), f'inverse DWT (max err {err:.1e})',
                                  cmap='gray', vmin=0., vmax=1.)

    feat = first_component(feats['input'])
    scales['attn input'] = _show(fig, axes[1, 0], feat, f'stage-1 attn input (PC1, {feats["input"].shape[1]} ch) '
                                 f'{feat.shape[0]}x{feat.shape[1]}', cmap='viridis')
    norms = [channel_norm(c) for c in feats['bands'].chunk(4, dim=1)]
    top = float(max(n.max() for n in norms)) or 1.
    ch = feats['bands'].shape[1] // 4
    for i, (name, m) in enumerate(zip(BANDS, norms)):
        scales[f'filtered {name}'] = _show(fig, axes[1, 1 + i], m, f'filtered {name} (norm, {ch} ch) '
                                           f'{m.shape[0]}x{m.shape[1]} (shared scale)', cmap='magma',
                                           vmin=0., vmax=top)
    local = first_component(feats['local'])
    scales['local branch'] = _show(fig, axes[1, 5], local, f'local branch: IDWT (PC1, {feats["local"].shape[1]} '
                                   f'ch) {local.shape[0]}x{local.shape[1]}', cmap='viridis')
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return scales


def run(args: argparse.Namespace) -> dict:
    """Write the figure; returns ``out`` (its path), ``size`` (H, W) and ``scales`` (see :func:`render`)."""
    backbone, mean, std, size = build_backbone(args)
    image = load_image(args.image, size)
    bands, recon = image_subbands(image)
    x = (image - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    feats = attention_internals(backbone, x)
    source = args.config if args.config else f'WaveViT arch {args.arch!r}'
    weights = (f'weights: {osp.basename(args.checkpoint)}' if args.checkpoint
               else 'RANDOM weights (no --checkpoint)')
    title = f'{osp.basename(args.image)} | {osp.basename(source)} block1[0].attn | {weights}'
    out = args.out or osp.splitext(osp.basename(args.image))[0] + '_wavelets.png'
    if osp.dirname(out):
        os.makedirs(osp.dirname(out), exist_ok=True)
    scales = render(image, bands, recon, feats, title, out)
    err = float((recon[0, 0] - image_luma(image)).abs().max())
    origin = '--size' if args.size else "the config's input size" if args.config else 'default size'
    print(f'figure title: {title}\nimage {size[0]}x{size[1]} ({origin}); '
          f'sub-bands: max reconstruction error of the inverse DWT {err:.2e}\n'
          f'stage-1 attention: input {tuple(feats["input"].shape)}, filtered sub-bands '
          f'{tuple(feats["bands"].shape)}, local branch {tuple(feats["local"].shape)}\nsaved {out}')
    return dict(out=out, size=size, scales=scales)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Haar sub-bands of an image and of a Wave-ViT stage-1 map',
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('image', help='image file')
    parser.add_argument('--out', help='output PNG (default: IMAGE_NAME_wavelets.png in the current directory)')
    parser.add_argument('--size', type=int, nargs='+', metavar=('H', 'W'),
                        help='resize the image to H x W (one value: a square; even, >= 32). Default: the '
                        "config's test input size (its CenterCrop for classifiers, crop_size for segmentors, "
                        '800 x 1280 for detectors), else 224')
    parser.add_argument('--config', help='take the backbone from this config (any task)')
    parser.add_argument('--arch', default='s', help="backbone arch without --config ('s', 'b', 'l')")
    parser.add_argument('--checkpoint', help='converted or official checkpoint (default: random weights)')
    args = parser.parse_args(argv)
    if args.size is not None and (len(args.size) > 2 or any(s < 32 or s % 2 for s in args.size)):
        parser.error(f'--size takes H or H W, each even and >= 32, got {args.size}')
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    run(parse_args(argv))


if __name__ == '__main__':
    main()
