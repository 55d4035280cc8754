"""Wave-ViT classification head for mmpretrain: class-attention block, final norm, linear classifier and
the optional token-labeling auxiliary classifier."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS
from torch import Tensor, nn


class ClassAttention(nn.Module):
    """Attention of the class token (query) over all tokens (keys / values). Keys: ``q``, ``kv``, ``proj``."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'in_channels {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, dim * 2)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        B, N, C = x.shape
        d = C // self.num_heads
        q = self.q(x[:, :1]).reshape(B, 1, self.num_heads, d).transpose(1, 2)
        k, v = self.kv(x).reshape(B, N, 2, self.num_heads, d).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)  # scale = d ** -0.5
        return self.proj(out.transpose(1, 2).reshape(B, 1, C))


class FFN(nn.Module):
    """Linear -> GELU -> Linear. Keys: ``fc1``, ``fc2``."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class ClassBlock(nn.Module):
    """Updates the class token (first token) only; the patch tokens pass through unchanged.

    Keys: ``norm1``, ``attn``, ``norm2``, ``mlp`` (the official ``post_network.0``).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = ClassAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = FFN(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        cls = x[:, :1] + self.attn(self.norm1(x))
        return cls + self.mlp(self.norm2(cls))


@MODELS.register_module()
class WaveViTClsHead(ClsHead):
    """Wave-ViT ImageNet head.

    The class token is the mean of the last stage's tokens (taken before the backbone's final norm, so
    build the backbone with ``final_norm=False``); one class-attention block updates it, ``norm`` (the
    official ``norm4``) normalises it, and ``fc`` classifies it. With ``aux_head=True`` (the token-labeling
    models) ``aux_fc`` also classifies every normalised patch token, and the score is
    ``fc(cls) + aux_weight * max over tokens of aux_fc(tokens)``, exactly as the official models evaluate.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the last stage.
        num_heads (int): Heads of the class attention (the last stage's).
        mlp_ratio (float): Hidden ratio of the class block's FFN. Defaults to 4.
        aux_head (bool): Build the token-labeling auxiliary classifier. Defaults to False.
        aux_weight (float): Weight of the auxiliary score. Defaults to 0.5.
        loss (dict): Classification loss. Defaults to ``CrossEntropyLoss``.
        topk (int | tuple): Accuracy top-k reported by ``loss`` in mmpretrain's ``ClsHead``.
        init_cfg (dict | list[dict]): Defaults to truncated-normal linear layers (std 0.02), as the official.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 num_heads: int,
                 mlp_ratio: float = 4.,
                 aux_head: bool = False,
                 aux_weight: float = 0.5,
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 topk: Union[int, Tuple[int]] = (1, ),
                 init_cfg: Optional[Union[dict, List[dict]]] = dict(
                     type='TruncNormal', layer='Linear', std=.02, bias=0.),
                 **kwargs) -> None:
        super().__init__(loss=loss, topk=topk, init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(f'num_classes must be positive, got {num_classes}')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.aux_weight = aux_weight
        self.cls_block = ClassBlock(in_channels, num_heads, mlp_ratio)
        self.norm = nn.LayerNorm(in_channels, eps=1e-6)
        self.fc = nn.Linear(in_channels, num_classes)
        self.aux_fc = nn.Linear(in_channels, num_classes) if aux_head else None

    @staticmethod
    def _last_tokens(feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        x = feats[-1] if isinstance(feats, (tuple, list)) else feats
        if x.dim() != 4:
            raise ValueError(f'WaveViTClsHead expects B x C x H x W maps, got shape {tuple(x.shape)}')
        return x.flatten(2).transpose(1, 2)

    def pre_logits(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """The normalised class token, ``B x C``."""
        tokens = self._last_tokens(feats)
        cls = self.cls_block(torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1))
        return self.norm(cls[:, 0])

    def forward_dense(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tuple[Tensor, Optional[Tensor]]:
        """Class logits ``B x K`` and, with the aux head, per-token logits ``B x N x K`` (else None)."""
        tokens = self._last_tokens(feats)
        cls = self.cls_block(torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1))
        logits = self.fc(self.norm(cls[:, 0]))
        if self.aux_fc is None:
            return logits, None
        return logits, self.aux_fc(self.norm(tokens))

    def forward(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        logits, aux = self.forward_dense(feats)
        if aux is None:
            return logits
        return logits + self.aux_weight * aux.max(dim=1)[0]
