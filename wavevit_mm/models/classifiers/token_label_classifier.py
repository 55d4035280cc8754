"""Token-labeling training of Wave-ViT: MixToken and the class + dense soft-target loss, in an mmpretrain
``ImageClassifier`` (inference and ``mode='tensor'`` / ``'predict'`` are those of ``ImageClassifier``)."""
import math
from typing import List, Optional, Tuple

import numpy as np
import torch
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor

from ..losses.token_label_loss import smoothed_one_hot, token_label_targets

#: (y1, x1, y2, x2): a box of cells on the last stage's grid, half-open
Box = Tuple[int, int, int, int]


def rand_token_box(grid_hw: Tuple[int, int], lam: float, rng: Optional[np.random.Generator] = None) -> Box:
    """A CutMix box on a ``grid_hw`` grid covering about ``1 - lam`` of it (centre uniform, clipped).

    Args:
        grid_hw (tuple[int, int]): The grid (the last stage's ``H x W``).
        lam (float): The Beta sample; the box side is ``int(side * sqrt(1 - lam))``.
        rng (np.random.Generator, optional): Defaults to numpy's global generator (seeded by mmengine).
    """
    h, w = grid_hw
    ratio = math.sqrt(1. - lam)
    cut_h, cut_w = int(h * ratio), int(w * ratio)
    randint = rng.integers if rng is not None else np.random.randint
    cy, cx = int(randint(0, h)), int(randint(0, w))
    y1, y2 = min(max(cy - cut_h // 2, 0), h), min(max(cy + cut_h // 2, 0), h)
    x1, x2 = min(max(cx - cut_w // 2, 0), w), min(max(cx + cut_w // 2, 0), w)
    return y1, x1, y2, x2


def mix_stem_tokens(tokens: Tensor, stem_hw: Tuple[int, int], box: Box, cell: int) -> Tensor:
    """Replace the tokens under ``box`` (given on the grid whose cells are ``cell x cell`` stem tokens) by those
    of the batch flipped along its first axis. ``tokens``: ``B x N x C`` on ``stem_hw``; returns a new tensor."""
    B, N, C = tokens.shape
    h, w = stem_hw
    if N != h * w:
        raise ValueError(f'{N} tokens do not form a {h} x {w} grid')
    y1, x1, y2, x2 = box
    sy1, sy2, sx1, sx2 = min(y1 * cell, h), min(y2 * cell, h), min(x1 * cell, w), min(x2 * cell, w)
    grid = tokens.reshape(B, h, w, C)
    mixed = grid.clone()
    mixed[:, sy1:sy2, sx1:sx2] = grid.flip(0)[:, sy1:sy2, sx1:sx2]
    return mixed.reshape(B, N, C)


def unmix_tokens(tokens: Tensor, grid_hw: Tuple[int, int], box: Box) -> Tensor:
    """Undo :func:`mix_stem_tokens` on ``B x N x K`` outputs on the last stage's grid: the outputs under ``box``
    go back to the image they came from (the batch is flipped there again)."""
    B, N, K = tokens.shape
    h, w = grid_hw
    y1, x1, y2, x2 = box
    grid = tokens.reshape(B, h, w, K)
    out = grid.clone()
    out[:, y1:y2, x1:x2] = grid.flip(0)[:, y1:y2, x1:x2]
    return out.reshape(B, N, K)


@MODELS.register_module()
class TokenLabelImageClassifier(ImageClassifier):
    """``ImageClassifier`` trained with token labeling and MixToken (how the published Wave-ViT models were made).

    In ``mode='loss'``: the backbone runs in two parts (``forward_stem``, ``forward_stages``); with
    ``mix_token`` a box drawn with ``lam ~ Beta(mix_beta, mix_beta)`` on the last stage's grid (1/32) is
    cut-mixed at the stem output (1/4) with the batch flipped along its first axis; the head's dense outputs
    (``forward_dense``; the head needs ``aux_head=True``) are un-mixed, so every token's output is compared with
    the dense target of the image its position came from, while the class target is mixed with the effective
    ``lam = 1 - box area / grid area``. Targets come from the samples' token label maps (``token_label``,
    ``token_label_box``; see :mod:`wavevit_mm.datasets.transforms`) or, for samples without, from the
    ground-truth label (the same smoothed one-hot for every token).

    Args:
        backbone, neck, head, pretrained, train_cfg, data_preprocessor, init_cfg: As ``ImageClassifier``.
        token_label_loss (dict): The loss. Defaults to ``TokenLabelCrossEntropy`` with weights 1 and 0.5.
        mix_token (bool): Apply MixToken in training. Defaults to True.
        mix_beta (float): Beta parameter of MixToken's ``lam``. Defaults to 1.
        label_smoothing (float): Smoothing of all targets. Defaults to 0.1.
        cls_target (str): ``'token_label'`` (default, as the official Wave-ViT runs: the teacher's label of the
            whole crop) or ``'gt'`` (the dataset's label) for the class output.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 token_label_loss: dict = dict(type='TokenLabelCrossEntropy', cls_weight=1.0, dense_weight=0.5),
                 mix_token: bool = True,
                 mix_beta: float = 1.0,
                 label_smoothing: float = 0.1,
                 cls_target: str = 'token_label',
                 pretrained: Optional[str] = None,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if train_cfg is not None and train_cfg.get('augments'):
            raise ValueError('TokenLabelImageClassifier does its own mixing (MixToken); batch augments such as '
                             'Mixup / CutMix in train_cfg are not supported')
        super().__init__(backbone=backbone, neck=neck, head=head, pretrained=pretrained, train_cfg=train_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if neck is not None:
            raise ValueError('TokenLabelImageClassifier takes no neck (the head reads the last stage directly)')
        if cls_target not in ('token_label', 'gt'):
            raise ValueError(f"cls_target must be 'token_label' or 'gt', got {cls_target!r}")
        for name in ('forward_stem', 'forward_stages'):
            if not hasattr(self.backbone, name):
                raise TypeError(f'{type(self.backbone).__name__} has no {name}(); MixToken needs a backbone that '
                                'splits its forward (e.g. WaveViT)')
        if not hasattr(self.head, 'forward_dense') or getattr(self.head, 'aux_fc', None) is None:
            raise ValueError('TokenLabelImageClassifier needs a head with dense outputs: '
                             "WaveViTClsHead(..., aux_head=True)")
        self.token_label_loss = MODELS.build(token_label_loss)
        self.mix_token = mix_token
        self.mix_beta = mix_beta
        self.label_smoothing = label_smoothing
        self.cls_target = cls_target

    def _stem_to_last_stage_cell(self) -> int:
        return 2 ** (self.backbone.num_stages - 1)

    def _targets(self, data_samples: List[DataSample], grid_hw: Tuple[int, int], device) -> Tuple[Tensor, Tensor]:
        num_classes = self.head.num_classes
        has_tl = ['token_label' in s for s in data_samples]
        if any(has_tl) and not all(has_tl):
            raise ValueError('some samples of the batch have token label maps and some do not')
        gt = None
        if not all(has_tl) or self.cls_target == 'gt':
            if not all('gt_label' in s for s in data_samples):
                raise ValueError('samples need gt_label (or token_label maps) for the token-labeling loss')
            labels = torch.cat([s.gt_label.view(-1)[:1] for s in data_samples]).to(device)
            gt = smoothed_one_hot(labels, num_classes, self.label_smoothing)
        if all(has_tl):
            token_label = torch.stack([torch.as_tensor(s.token_label) for s in data_samples]).to(device)
            boxes = torch.stack([torch.as_tensor(s.token_label_box) for s in data_samples]).to(device)
            cls_t, dense_t = token_label_targets(token_label, boxes, num_classes, grid_hw, self.label_smoothing)
            if self.cls_target == 'gt':
                cls_t = gt
        else:
            cls_t = gt
            dense_t = gt.unsqueeze(1).expand(-1, grid_hw[0] * grid_hw[1], -1)
        return cls_t, dense_t

    def loss(self, inputs: Tensor, data_samples: List[DataSample]) -> dict:
        tokens, stem_hw = self.backbone.forward_stem(inputs)
        cell = self._stem_to_last_stage_cell()
        grid_hw = (math.ceil(stem_hw[0] / cell), math.ceil(stem_hw[1] / cell))
        box = None
        if self.training and self.mix_token and inputs.shape[0] > 1:
            lam = float(np.random.beta(self.mix_beta, self.mix_beta))
            box = rand_token_box(grid_hw, lam)
            tokens = mix_stem_tokens(tokens, stem_hw, box, cell)
        feats = self.backbone.forward_stages(tokens, stem_hw)
        if tuple(feats[-1].shape[2:]) != grid_hw:
            raise RuntimeError(f'last stage grid {tuple(feats[-1].shape[2:])} != expected {grid_hw}')
        cls_logits, dense_logits = self.head.forward_dense(feats)
        cls_t, dense_t = self._targets(data_samples, grid_hw, inputs.device)
        if box is not None:
            y1, x1, y2, x2 = box
            dense_logits = unmix_tokens(dense_logits, grid_hw, box)
            lam = 1. - (y2 - y1) * (x2 - x1) / (grid_hw[0] * grid_hw[1])
            cls_t = lam * cls_t + (1. - lam) * cls_t.flip(0)
        return self.token_label_loss(cls_logits, dense_logits, cls_t, dense_t)
