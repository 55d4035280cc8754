"""A straightforward formulation of the Wave-ViT backbone, the baseline that ``bench_backbone.py`` compares
``wavevit_mm.WaveViT`` against.

It computes the same function as :class:`wavevit_mm.WaveViT` (same parameter names, so a state dict loads
into either), written the way the paper describes the maths rather than for speed:

* the Haar transform is four depthwise stride-2 convolutions with the fixed 2x2 filters (LL, LH, HL, HH),
  and its inverse a grouped transposed convolution with the same filters;
* attention is the explicit ``softmax(q k^T * scale) v`` with the score matrix materialised;
* tokens and feature maps are converted with plain ``permute`` / ``reshape`` / ``contiguous`` calls.

It only supports what the benchmark needs: inference and training in float32 or under autocast, input sides
divisible by 32, ``out_indices=(0, 1, 2, 3)`` with every stage normalised (the dense-prediction layout).
"""
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: the four 2x2 Haar filters, orthonormal (entries +-1/2), rows LL, LH (high-pass along H), HL, HH
HAAR_FILTERS = 0.5 * torch.tensor([
    [[1., 1.], [1., 1.]],
    [[1., 1.], [-1., -1.]],
    [[1., -1.], [1., -1.]],
    [[1., -1.], [-1., 1.]],
])


class ConvDWT(nn.Module):
    """Haar DWT as four depthwise stride-2 convolutions; sub-bands stacked ``[LL | LH | HL | HH]``."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer('filters', HAAR_FILTERS.clone(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        channels = x.shape[1]
        bands = []
        for k in range(4):
            weight = self.filters[k].to(x.dtype).expand(channels, 1, 2, 2)
            bands.append(F.conv2d(x, weight, stride=2, groups=channels))
        return torch.cat(bands, dim=1)


class ConvIDWT(nn.Module):
    """Inverse Haar DWT as a grouped stride-2 transposed convolution (one group per output channel)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer('filters', HAAR_FILTERS.clone(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        B, C4, h, w = x.shape
        C = C4 // 4
        # group c takes the four sub-bands of channel c: band-major -> channel-major order
        x = x.reshape(B, 4, C, h, w).permute(0, 2, 1, 3, 4).reshape(B, C4, h, w)
        weight = self.filters.to(x.dtype).unsqueeze(1).repeat(C, 1, 1, 1)  # 4C x 1 x 2 x 2
        return F.conv_transpose2d(x, weight, stride=2, groups=C)


def to_map(x: Tensor, H: int, W: int) -> Tensor:
    B, N, C = x.shape
    return x.permute(0, 2, 1).contiguous().reshape(B, C, H, W)


def to_tokens(x: Tensor) -> Tensor:
    B, C, H, W = x.shape
    return x.reshape(B, C, H * W).permute(0, 2, 1).contiguous()


def explicit_attention(q: Tensor, k: Tensor, v: Tensor, heads: int) -> Tensor:
    """``softmax(q k^T / sqrt(d)) v`` per head with the score matrix materialised; heads merged."""
    B, N, C = q.shape
    d = C // heads
    q = q.reshape(B, N, heads, d).permute(0, 2, 1, 3)
    k = k.reshape(B, -1, heads, d).permute(0, 2, 1, 3)
    v = v.reshape(B, -1, heads, d).permute(0, 2, 1, 3)
    scores = torch.matmul(q, k.transpose(-2, -1)) * (d ** -0.5)
    out = torch.matmul(scores.softmax(dim=-1), v)
    return out.permute(0, 2, 1, 3).reshape(B, N, C)


class NaiveStem(nn.Module):

    def __init__(self, in_channels: int, hidden: int, dim: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU())
        self.proj = nn.Conv2d(hidden, dim, 3, stride=2, padding=1)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tuple[Tensor, int, int]:
        x = self.proj(self.conv(x))
        return self.norm(to_tokens(x)), x.shape[2], x.shape[3]


class NaiveDownsample(nn.Module):

    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_dim, dim, 3, stride=2, padding=1)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tuple[Tensor, int, int]:
        x = self.proj(x)
        return self.norm(to_tokens(x)), x.shape[2], x.shape[3]


class NaiveWaveAttention(nn.Module):

    def __init__(self, dim: int, heads: int, sr: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.reduce = nn.Sequential(nn.Conv2d(dim, dim // 4, 1), nn.BatchNorm2d(dim // 4), nn.ReLU())
        self.dwt = ConvDWT()
        self.filter = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.BatchNorm2d(dim), nn.ReLU())
        self.idwt = ConvIDWT()
        self.kv_embed = nn.Conv2d(dim, dim, sr, stride=sr) if sr > 1 else nn.Identity()
        self.kv = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim))
        self.proj = nn.Linear(dim + dim // 4, dim)

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        bands = self.filter(self.dwt(self.reduce(to_map(x, H, W))))
        local = to_tokens(self.idwt(bands))
        k, v = self.kv(to_tokens(self.kv_embed(bands))).chunk(2, dim=-1)
        out = explicit_attention(self.q(x), k, v, self.heads)
        return self.proj(torch.cat([out, local], dim=-1))


class NaiveAttention(nn.Module):

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        k, v = self.kv(x).chunk(2, dim=-1)
        return self.proj(explicit_attention(self.q(x), k, v, self.heads))


class NaiveDWConv(nn.Module):

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        return to_tokens(self.dwconv(to_map(x, H, W)))


class NaiveMlp(nn.Module):

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = NaiveDWConv(hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        return self.fc2(F.gelu(self.dwconv(self.fc1(x), H, W)))


class NaiveBlock(nn.Module):

    def __init__(self, dim: int, heads: int, mlp_ratio: int, sr: int, wavelet: bool, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = NaiveWaveAttention(dim, heads, sr) if wavelet else NaiveAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = NaiveMlp(dim, dim * mlp_ratio)
        self.drop_path = drop_path

    def _drop(self, x: Tensor) -> Tensor:
        if not self.training or self.drop_path == 0:
            return x
        keep = 1 - self.drop_path
        mask = x.new_empty(x.shape[0], 1, 1).bernoulli_(keep)
        return x * mask / keep

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        x = x + self._drop(self.attn(self.norm1(x), H, W))
        return x + self._drop(self.mlp(self.norm2(x), H, W))


class NaiveWaveViT(nn.Module):
    """Straightforward Wave-ViT backbone returning the four normalised stage maps (strides 4-32).

    Args:
        settings (dict): ``stem_channels``, ``embed_dims``, ``num_heads``, ``depths``, ``mlp_ratios``,
            ``sr_ratios``, e.g. ``wavevit_mm.WaveViT.arch_zoo['s']``.
        drop_path_rate (float): stochastic depth, linear over all blocks.
    """

    def __init__(self, settings: dict, in_channels: int = 3, drop_path_rate: float = 0.) -> None:
        super().__init__()
        dims = settings['embed_dims']
        depths = settings['depths']
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        cur = 0
        for i in range(4):
            if i == 0:
                embed = NaiveStem(in_channels, settings['stem_channels'], dims[0])
            else:
                embed = NaiveDownsample(dims[i - 1], dims[i])
            blocks = nn.ModuleList([
                NaiveBlock(dims[i], settings['num_heads'][i], settings['mlp_ratios'][i], settings['sr_ratios'][i],
                           wavelet=i < 2, drop_path=rates[cur + j]) for j in range(depths[i])
            ])
            cur += depths[i]
            setattr(self, f'patch_embed{i + 1}', embed)
            setattr(self, f'block{i + 1}', blocks)
            setattr(self, f'norm{i + 1}', nn.LayerNorm(dims[i], eps=1e-6))

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        if x.shape[2] % 32 or x.shape[3] % 32:
            raise ValueError(f'NaiveWaveViT needs sides divisible by 32, got {tuple(x.shape[2:])}')
        outs: List[Tensor] = []
        for i in range(4):
            x, H, W = getattr(self, f'patch_embed{i + 1}')(x)
            for block in getattr(self, f'block{i + 1}'):
                x = block(x, H, W)
            x = to_map(getattr(self, f'norm{i + 1}')(x), H, W)
            outs.append(x)
        return tuple(outs)
