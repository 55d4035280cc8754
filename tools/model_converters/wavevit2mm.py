#!/usr/bin/env python
"""Convert an official Wave-ViT checkpoint (github YehLi/ImageNetModel) to an mmpretrain classifier checkpoint.

    python tools/model_converters/wavevit2mm.py wavevit_s.pth.tar wavevit-s_in1k.pth

The output is ``{'meta': {...}, 'state_dict': ...}`` for ``ImageClassifier`` with a ``WaveViT`` backbone
(``final_norm=False``) and a ``WaveViTClsHead``; it loads with ``strict=True`` into the matching config under
``configs/classification/``, and its ``backbone.`` part initialises the detection / segmentation backbones
(``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``).

Accepted inputs: a bare state dict, ``{'state_dict': ...}``, ``{'model': ...}`` (the official training
checkpoints, with ``optimizer``, ``args`` (an ``argparse.Namespace``) and so on), ``module.`` prefixes. The file
is read with ``torch.load(weights_only=True)``; one that would need arbitrary unpickling is refused. A file that lacks
tensors of a Wave-ViT (its variant is read from the shapes) or holds NaN / infinite values is not converted: the
error names the tensors.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Optional, Tuple

import torch

from wavevit_mm.models.ckpt_convert import (drop_haar_buffers, format_examples, is_converted, is_official,
                                            official_to_mmpretrain, unusable_values, unwrap_state_dict)
from wavevit_mm.utils import CheckpointError, load_checkpoint_file
from wavevit_mm.utils.atomic_io import atomic_write


def infer_settings(state_dict) -> dict:
    """The classifier an official state dict is for, from its tensor shapes: the backbone's ``arch`` dict and the
    head's ``num_classes``, ``mlp_ratio`` and ``aux_head``. ``num_heads`` changes no shape and is left at 1.

    Raises:
        KeyError: a tensor the settings are read from is missing (named).
    """
    def get(key):
        if key not in state_dict:
            raise KeyError(key)
        return state_dict[key]

    def first_in_stage(i, suffix):
        for key in state_dict:
            if key.startswith(f'block{i}.') and key.endswith(suffix):
                return state_dict[key]
        return None

    dims = [get(f'patch_embed{i}.proj.weight').shape[0] for i in range(1, 5)]
    depths = [len({k.split('.')[1] for k in state_dict if k.startswith(f'block{i}.')}) for i in range(1, 5)]
    mlp_ratios, sr_ratios = [], []
    for i, dim in enumerate(dims, 1):
        fc1 = first_in_stage(i, '.mlp.fc1.weight')
        if fc1 is None:
            raise KeyError(f'block{i}.*.mlp.fc1.weight')
        mlp_ratios.append(fc1.shape[0] // dim)
        kv_embed = first_in_stage(i, '.attn.kv_embed.weight')  # the wavelet attention's stride-sr convolution
        sr_ratios.append(1 if kv_embed is None else kv_embed.shape[-1])
    arch = dict(stem_channels=get('patch_embed1.conv.0.weight').shape[0], embed_dims=dims, num_heads=[1] * 4,
                depths=depths, mlp_ratios=mlp_ratios, sr_ratios=sr_ratios)
    return dict(arch=arch, num_classes=get('head.weight').shape[0],
                mlp_ratio=get('post_network.0.mlp.fc1.weight').shape[0] / dims[-1],
                aux_head='aux_head.weight' in state_dict)


def arch_name(arch: dict) -> str:
    """``'s'``, ``'b'`` or ``'l'`` for the published variants, else ``'custom'``."""
    from wavevit_mm.models.backbones.wavevit import WaveViT
    keys = ('stem_channels', 'embed_dims', 'depths', 'mlp_ratios', 'sr_ratios')
    for name in ('s', 'b', 'l'):
        if all(WaveViT.arch_zoo[name][k] == arch[k] for k in keys):
            return name
    return 'custom'


def expected_tensors(settings: dict) -> dict:
    """The state dict (names, shapes, dtypes) of the mmpretrain classifier the converted file is for."""
    from mmpretrain.registry import MODELS
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='WaveViT', arch=settings['arch'], out_indices=(3, ), final_norm=False),
        head=dict(type='WaveViTClsHead', num_classes=settings['num_classes'],
                  in_channels=settings['arch']['embed_dims'][-1], num_heads=1, mlp_ratio=settings['mlp_ratio'],
                  aux_head=settings['aux_head'])))
    return model.state_dict()


def check_complete(src: str, state_dict, converted) -> Tuple[list, Optional[dict]]:
    """Problems that make the conversion unusable (missing tensors, shapes, non-finite or non-tensor values), and
    the settings read from the shapes (None when a tensor they are read from is missing)."""
    problems = [f'{src}: {line}' for line in unusable_values(state_dict)]
    try:
        settings = infer_settings(state_dict)
    except KeyError as exc:
        return problems + [f'{src} lacks {exc.args[0]}, which every Wave-ViT checkpoint holds'], None
    expected = expected_tensors(settings)
    missing = [k for k in expected if k not in converted]
    shapes = [f'{k}: {tuple(converted[k].shape)} vs {tuple(v.shape)}' for k, v in expected.items()
              if k in converted and isinstance(converted[k], torch.Tensor) and converted[k].shape != v.shape]
    if missing:
        problems.append(f'{src} lacks {len(missing)} tensors of a Wave-ViT with its settings: '
                        f'{format_examples(missing)}')
    if shapes:
        problems.append(f'{src}: {len(shapes)} tensors have shapes that do not fit the others: '
                        f'{format_examples(shapes, 3)}')
    return problems, settings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='official checkpoint (.pth / .pth.tar)')
    parser.add_argument('dst', help='output path of the mmpretrain checkpoint')
    args = parser.parse_args(argv)

    if not osp.isfile(args.src):
        parser.error(f'no such file: {args.src}')
    try:
        state_dict = unwrap_state_dict(load_checkpoint_file(args.src))
    except (CheckpointError, ValueError) as exc:
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
    problems, settings = check_complete(args.src, drop_haar_buffers(state_dict), converted)
    if problems:
        print('error: not converted, the checkpoint is incomplete or damaged:\n  ' + '\n  '.join(problems),
              file=sys.stderr)
        return 1
    arch, aux = arch_name(settings['arch']), settings['aux_head']
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    checkpoint = {'meta': {'arch': arch, 'aux_head': aux, 'source': osp.basename(args.src),
                           'converter': 'wavevit_mm/tools/model_converters/wavevit2mm.py'},
                  'state_dict': converted}
    atomic_write(args.dst, lambda f: torch.save(checkpoint, f))
    print(f'converted {len(state_dict)} official tensors to {len(converted)} mmpretrain tensors '
          f'(arch {arch!r}, token-labeling aux head: {aux}) -> {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
