#!/usr/bin/env python
"""Convert an official Wave-ViT checkpoint (github YehLi/ImageNetModel) to an mmpretrain classifier checkpoint.

    python tools/model_converters/wavevit2mm.py wavevit_s.pth.tar wavevit-s_in1k.pth

The output is ``{'meta': {...}, 'state_dict': ...}`` for ``ImageClassifier`` with a ``WaveViT`` backbone
(``final_norm=False``) and a ``WaveViTClsHead``; it loads with ``strict=True`` into the matching config under
``configs/classification/``, and its ``backbone.`` part initialises the detection / segmentation backbones
(``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``).

Accepted inputs: a bare state dict, ``{'state_dict': ...}``, ``{'model': ...}`` (the official training
checkpoints, with ``optimizer``, ``args`` (an ``argparse.Namespace``) and so on), ``module.`` prefixes. The file
is read with ``torch.load(weights_only=True)``; one that would need arbitrary unpickling is refused.
"""
import argparse
import os
import os.path as osp
import sys

import torch

from wavevit_mm.models.ckpt_convert import is_converted, is_official, official_to_mmpretrain, unwrap_state_dict
from wavevit_mm.utils import UnsafeCheckpointError, load_checkpoint_file


def infer_arch(state_dict) -> str:
    """Name the variant of an official state dict from its tensor shapes (``s``, ``b``, ``l``), or ``'custom'``."""
    from wavevit_mm.models.backbones.wavevit import WaveViT
    try:
        dims = [state_dict[f'patch_embed{i}.proj.weight'].shape[0] for i in range(1, 5)]
        stem = state_dict['patch_embed1.conv.0.weight'].shape[0]
    except KeyError:
        return 'custom'
    depths = [len({k.split('.')[1] for k in state_dict if k.startswith(f'block{i}.')}) for i in range(1, 5)]
    for name in ('s', 'b', 'l'):
        arch = WaveViT.arch_zoo[name]
        if (arch['embed_dims'], arch['depths'], arch['stem_channels']) == (dims, depths, stem):
            return name
    return 'custom'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='official checkpoint (.pth / .pth.tar)')
    parser.add_argument('dst', help='output path of the mmpretrain checkpoint')
    args = parser.parse_args(argv)

    if not osp.isfile(args.src):
        parser.error(f'no such file: {args.src}')
    try:
        state_dict = unwrap_state_dict(load_checkpoint_file(args.src))
    except (UnsafeCheckpointError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    if is_converted(state_dict):
        print(f'{args.src} is already an mmpretrain Wave-ViT checkpoint (keys start with backbone. / head.); '
              'nothing to convert: use it as it is.', file=sys.stderr)
        return 1
    if not is_official(state_dict):
        print(f'error: {args.src} holds no Wave-ViT weights (no patch_embed*/block*/norm* keys)', file=sys.stderr)
        return 1
    try:
        converted = official_to_mmpretrain(state_dict)
    except KeyError as exc:
        print(f'error: {exc.args[0]}', file=sys.stderr)
        return 1
    arch = infer_arch(state_dict)
    aux = any(k.startswith('head.aux_fc.') for k in converted)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save({'meta': {'arch': arch, 'aux_head': aux, 'source': osp.basename(args.src),
                         'converter': 'wavevit_mm/tools/model_converters/wavevit2mm.py'},
                'state_dict': converted}, args.dst)
    print(f'converted {len(state_dict)} official tensors to {len(converted)} mmpretrain tensors '
          f'(arch {arch!r}, token-labeling aux head: {aux}) -> {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
