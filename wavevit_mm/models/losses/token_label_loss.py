"""Token-labeling targets and loss: soft-target cross entropy on the class output plus a weighted soft-target
cross entropy on every patch token's output (Jiang et al., "All Tokens Matter", NeurIPS 2021)."""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor, nn


def soft_target_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Mean over all rows of ``-sum_k target_k * log_softmax(logits)_k`` (last axis = classes)."""
    if logits.shape != target.shape:
        raise ValueError(f'logits {tuple(logits.shape)} and soft targets {tuple(target.shape)} differ in shape')
    return torch.sum(-target * F.log_softmax(logits, dim=-1), dim=-1).mean()


def smoothed_one_hot(labels: Tensor, num_classes: int, smoothing: float = 0.) -> Tensor:
    """``(1 - smoothing) * one_hot + smoothing / num_classes``, ``B x num_classes``."""
    one_hot = F.one_hot(labels.long().view(-1), num_classes).float()
    return one_hot * (1. - smoothing) + smoothing / num_classes


def _roi_align(maps: Tensor, rois: Tensor, out_hw: Tuple[int, int]) -> Tensor:
    from mmcv.ops import roi_align
    # aligned=True: box corners are continuous pixel coordinates (0 = left edge of the first cell)
    return roi_align(maps, rois, out_hw, 1.0, 0, 'avg', True)


def token_label_targets(token_label: Tensor, boxes: Tensor, num_classes: int, out_hw: Tuple[int, int],
                        smoothing: float = 0.) -> Tuple[Tensor, Tensor]:
    """Dense soft targets for the model's output grid from top-k label maps and crop boxes.

    For each image: the top-k scores are scattered into a dense ``num_classes x H x W`` map (0 for the other
    classes), the region ``box`` of it is resampled (RoIAlign, average of bilinear samples) to ``out_hw`` for
    the patch tokens and to ``1 x 1`` for the class output, mirrored where the box is mirrored (flips),
    turned into distributions by a softmax over classes, and label-smoothed. This is how the TokenLabeling
    project turns its maps into targets, except that the box here is in proper ``(x, y)`` order and flips
    move the targets with the image.

    Args:
        token_label (Tensor): ``B x 2 x k x H x W``: top-k scores and class indices.
        boxes (Tensor): ``B x 4`` normalised ``(x1, y1, x2, y2)`` of the final image in the original one;
            ``x1 > x2`` / ``y1 > y2`` for a horizontally / vertically flipped image.
        num_classes (int): Number of classes.
        out_hw (tuple[int, int]): The output grid (the last stage's ``H x W``).
        smoothing (float): Label smoothing. Defaults to 0.

    Returns:
        tuple[Tensor, Tensor]: class targets ``B x num_classes`` and dense targets ``B x (h*w) x num_classes``.
    """
    if token_label.dim() != 5 or token_label.shape[1] != 2:
        raise ValueError(f'token_label must be B x 2 x k x H x W, got {tuple(token_label.shape)}')
    B, _, _, H, W = token_label.shape
    scores, index = token_label[:, 0].float(), token_label[:, 1].round().long()
    if index.min() < 0 or index.max() >= num_classes:
        raise ValueError(f'token label class indices must be in [0, {num_classes}), got '
                         f'[{int(index.min())}, {int(index.max())}]')
    dense = scores.new_zeros(B, num_classes, H, W).scatter_(1, index, scores)
    boxes = boxes.to(dense)
    flip_x, flip_y = boxes[:, 0] > boxes[:, 2], boxes[:, 1] > boxes[:, 3]
    x1, x2 = torch.minimum(boxes[:, 0], boxes[:, 2]) * W, torch.maximum(boxes[:, 0], boxes[:, 2]) * W
    y1, y2 = torch.minimum(boxes[:, 1], boxes[:, 3]) * H, torch.maximum(boxes[:, 1], boxes[:, 3]) * H
    rois = torch.stack([torch.arange(B, dtype=dense.dtype, device=dense.device), x1, y1, x2, y2], dim=1)
    grid = _roi_align(dense, rois, tuple(out_hw))  # B x K x h x w
    grid = torch.where(flip_x.view(B, 1, 1, 1), grid.flip(3), grid)
    grid = torch.where(flip_y.view(B, 1, 1, 1), grid.flip(2), grid)
    whole = _roi_align(dense, rois, (1, 1)).view(B, num_classes)
    dense_t = F.softmax(grid.flatten(2).transpose(1, 2), dim=-1)
    cls_t = F.softmax(whole, dim=-1)
    return cls_t * (1. - smoothing) + smoothing / num_classes, dense_t * (1. - smoothing) + smoothing / num_classes


@MODELS.register_module()
class TokenLabelCrossEntropy(nn.Module):
    """``cls_weight * CE(cls_logits, cls_target) + dense_weight * CE(token_logits, dense_target)`` with soft targets.

    Args:
        cls_weight (float): Weight of the class-output loss. Defaults to 1.
        dense_weight (float): Weight of the dense (per-token) loss. Defaults to 0.5 (Wave-ViT).
    """

    def __init__(self, cls_weight: float = 1.0, dense_weight: float = 0.5) -> None:
        super().__init__()
        if cls_weight < 0 or dense_weight < 0 or cls_weight + dense_weight <= 0:
            raise ValueError(f'need non-negative weights with a positive sum, got {cls_weight}, {dense_weight}')
        self.cls_weight = cls_weight
        self.dense_weight = dense_weight

    def forward(self, cls_logits: Tensor, dense_logits: Optional[Tensor], cls_target: Tensor,
                dense_target: Optional[Tensor]) -> Dict[str, Tensor]:
        """Returns ``dict(loss_cls=..., loss_dense=...)`` (weighted; ``loss_dense`` only with dense logits).

        Args:
            cls_logits (Tensor): ``B x K``.
            dense_logits (Tensor, optional): ``B x N x K``.
            cls_target (Tensor): ``B x K`` distributions.
            dense_target (Tensor, optional): ``B x N x K`` distributions.
        """
        losses = dict(loss_cls=self.cls_weight * soft_target_cross_entropy(cls_logits, cls_target))
        if dense_logits is not None and self.dense_weight > 0:
            if dense_target is None:
                raise ValueError('dense logits given without dense targets')
            losses['loss_dense'] = self.dense_weight * soft_target_cross_entropy(dense_logits, dense_target)
        return losses
