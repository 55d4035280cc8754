#!/usr/bin/env python
"""Check a converted Wave-ViT ImageNet-1k checkpoint: load it strictly and print its top-5 classes on an image.

    python tools/model_converters/verify_wavevit.py checkpoints/wavevit-s_in1k.pth
    python tools/model_converters/verify_wavevit.py wavevit-mm://wavevit-b_in1k-384px.pth \\
        --config configs/classification/wavevit-b_8xb32_in1k-384px-tokenlabel.py

The checkpoint (a file or a ``wavevit-mm://`` address) is read weights-only and loaded with ``strict=True`` into
the classifier of ``--config`` (default: the 224 config of the variant the converter wrote into its ``meta``,
with the token-labeling head if the file has one). The image (default ``demo/demo.jpg``, a tabby cat) goes
through the config's test pipeline, and the top-k ImageNet-1k classes are printed with their names
(``mmpretrain.datasets.categories.IMAGENET_CATEGORIES``) and probabilities. For the default image the tool also
checks that a domestic-cat class (281-285: tabby, tiger cat, Persian, Siamese, Egyptian cat) is in the top 5, as
it is for a working ImageNet classifier; exit status 1 when it is not, or when the file does not load.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional, Tuple

import torch
from mmengine.config import DictAction

from wavevit_mm.apis import check_weights, local_weights_path
from wavevit_mm.utils.model_utils import load_config
from wavevit_mm.models.ckpt_convert import is_converted, is_official, unwrap_state_dict
from wavevit_mm.utils import UnsafeCheckpointError, load_checkpoint_file
from wavevit_mm.utils.paths import CONFIG_DIR, PROJECT_ROOT

DEMO_IMAGE = osp.join(PROJECT_ROOT, 'demo', 'demo.jpg')
#: ImageNet-1k indices of the domestic cats: what a working classifier ranks high for DEMO_IMAGE
CAT_CLASSES = range(281, 286)


class VerifyError(RuntimeError):
    """The checkpoint cannot be verified: the message says why and what to do."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint', help='converted checkpoint: a file or a wavevit-mm:// address')
    parser.add_argument('--config', help='classification config or model name (default: from the checkpoint meta)')
    parser.add_argument('--image', default=DEMO_IMAGE, help='image to classify (default: demo/demo.jpg)')
    parser.add_argument('--topk', type=int, default=5)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings, key=value')
    return parser.parse_args(argv)


def read_checkpoint(checkpoint: str) -> Tuple[dict, dict]:
    """``(state_dict, meta)`` of a converted checkpoint."""
    try:
        check_weights(checkpoint)
        raw = load_checkpoint_file(local_weights_path(checkpoint))
        state_dict = unwrap_state_dict(raw)
    except (FileNotFoundError, UnsafeCheckpointError, ValueError) as exc:
        raise VerifyError(str(exc)) from None
    if is_official(state_dict):
        raise VerifyError(f'{checkpoint} is an official checkpoint, not a converted one: convert it first with '
                          f'python tools/model_converters/wavevit2mm.py {checkpoint} checkpoints/CONVERTED.pth '
                          '(the file name of each variant: docs/converting_weights.md)')
    if not is_converted(state_dict):
        raise VerifyError(f'{checkpoint} holds no Wave-ViT classifier (no backbone.* keys)')
    return state_dict, dict(raw.get('meta') or {})


def default_config(meta: dict, checkpoint: str) -> str:
    arch = meta.get('arch')
    if arch not in ('s', 'b', 'l'):
        raise VerifyError(f'{checkpoint}: its meta names no S / B / L variant (arch {arch!r}); pass --config')
    suffix = '-tokenlabel' if meta.get('aux_head', True) else ''
    return osp.join(CONFIG_DIR, 'classification', f'wavevit-{arch}_8xb128_in1k{suffix}.py')


def build_strict(config: str, state_dict: dict, cfg_options: Optional[dict], device: str):
    """The config's classifier with every tensor of ``state_dict`` loaded (``strict=True``)."""
    from mmpretrain import get_model
    try:
        cfg = load_config(config, cfg_options)
    except (FileNotFoundError, ValueError) as exc:
        raise VerifyError(str(exc)) from None
    model = get_model(cfg, device=device)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise VerifyError(f'the checkpoint does not fit {config} (another variant, or a head with / without the '
                          f'token-labeling aux classifier? pass the matching --config):\n{exc}') from None
    return model


def top_classes(model, image: str, k: int) -> List[Tuple[int, str, float]]:
    """``(index, class name, probability)`` of the ``k`` best classes for ``image``."""
    from mmpretrain import ImageClassificationInferencer
    from mmpretrain.datasets.categories import IMAGENET_CATEGORIES
    scores = torch.as_tensor(ImageClassificationInferencer(model, pretrained=False)(image)[0]['pred_scores'])
    names = IMAGENET_CATEGORIES if len(scores) == len(IMAGENET_CATEGORIES) else [str(i) for i in range(len(scores))]
    probs, labels = scores.topk(k)
    return [(int(i), names[i], float(p)) for p, i in zip(probs, labels)]


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if not osp.isfile(args.image):
            raise VerifyError(f'image not found: {args.image}')
        state_dict, meta = read_checkpoint(args.checkpoint)
        config = args.config or default_config(meta, args.checkpoint)
        model = build_strict(config, state_dict, args.cfg_options, args.device)
    except VerifyError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    print(f'checkpoint: {args.checkpoint} (meta: {meta})')
    print(f'config: {config}: all {len(state_dict)} tensors loaded (strict)')
    top = top_classes(model, args.image, max(args.topk, 5))
    print(f'top-{args.topk} classes for {args.image}:')
    for rank, (index, name, prob) in enumerate(top[:args.topk], 1):
        print(f'  {rank}. {index:4d} {name:<45s} {100 * prob:6.2f} %')
    if osp.abspath(args.image) != DEMO_IMAGE:
        return 0
    if any(index in CAT_CLASSES for index, _, _ in top[:5]):
        print('ok: a domestic-cat class is in the top 5 for the demo image')
        return 0
    print('error: no domestic-cat class (281-285) in the top 5 for the demo image, a tabby cat: the weights do not '
          'classify ImageNet (a wrong or unconverted file, or weights of another config?)', file=sys.stderr)
    return 1


if __name__ == '__main__':
    sys.exit(main())
