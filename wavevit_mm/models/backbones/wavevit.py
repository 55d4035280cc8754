"""Wave-ViT backbone (Yao et al., "Wave-ViT: Unifying Wavelet and Transformers for Visual Representation
Learning", ECCV 2022), for mmpretrain, mmdet and mmseg alike.

Module and parameter names follow the official release (``patch_embed{i}``, ``block{i}.{j}``, ``norm{i}``), so
official checkpoints load without renaming; see :mod:`wavevit_mm.models.ckpt_convert`.
"""
import contextlib
import math
from copy import deepcopy
from numbers import Integral, Real
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmengine.registry import MODELS
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..ckpt_convert import (CLS_ONLY_PREFIXES, HAAR_BUFFER_RE, to_backbone_state_dict, unusable_values,
                            unwrap_state_dict)
from ..layers.haar import haar_dwt2d, haar_idwt2d, pad_to_even
from ...utils.safe_load import load_checkpoint_file

try:  # mmpretrain / mmdet / mmseg all ship the same DropPath; mmcv's is always there
    from mmcv.cnn.bricks import DropPath
except ImportError:  # pragma: no cover
    from mmcv.cnn.bricks.drop import DropPath

HW = Tuple[int, int]

#: smallest input side: stage 4 is then 1 x 1 and every strided convolution still has an input to cover
MIN_INPUT_SIZE = 32

#: fraction of the backbone's tensors a pretrained checkpoint must provide before it counts as a fit
MIN_LOADED_FRACTION = 0.5


class GELU(nn.GELU):
    """The exact GELU, computed in place when no gradient is needed.

    In the MLP its input is the depthwise convolution's fresh output, which nothing else reads; at inference an
    in-place GELU saves allocating (and, for the large stage-1 maps, page-faulting) one more tensor of the
    block's largest size. With autograd recording (``x.requires_grad``) it is the standard out-of-place op.
    Note for forward hooks on ``mlp.dwconv``: at inference the tensor they receive as output is overwritten
    by the GELU afterwards (as with ``ReLU(inplace=True)``); clone it in the hook to keep it.
    """

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return F.gelu(x, approximate=self.approximate)
        return torch.ops.aten.gelu_(x, approximate=self.approximate)


def _check_int(name: str, value, minimum: int) -> int:
    """``value`` if it is an int (not a bool) of at least ``minimum``, else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f'{name} must be an int >= {minimum}, got {value!r}')
    return int(value)


def _layer_norm(dim: int, eps: float) -> nn.LayerNorm:
    return nn.LayerNorm(dim, eps=eps)


def _tokens_to_map(x: Tensor, hw: HW) -> Tensor:
    """``B x N x C`` tokens -> ``B x C x H x W`` map: a channels-last view of contiguous tokens.

    Written as ``reshape(B, H, W, C).permute``, so that the strides are channels-last ones for every batch size:
    ``transpose(1, 2).reshape(B, C, H, W)`` gives a batch of one an odd batch stride, which makes PyTorch treat
    the map as NCHW, so every convolution on it copies its input and output to and from that layout.
    """
    return x.reshape(x.shape[0], hw[0], hw[1], x.shape[2]).permute(0, 3, 1, 2)


class Stem(nn.Module):
    """Three conv-BN-ReLU layers (the first with stride 2), a stride-2 projection and a LayerNorm.

    Output tokens are at stride 4. Keys: ``conv.{0,1,3,4,6,7}``, ``proj``, ``norm``.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, norm_cfg: dict) -> None:
        super().__init__()
        layers: List[nn.Module] = []
        for i in range(3):
            layers += [
                nn.Conv2d(in_channels if i == 0 else hidden_channels, hidden_channels,
                          kernel_size=7 if i == 0 else 3, stride=2 if i == 0 else 1,
                          padding=3 if i == 0 else 1, bias=False),
                build_norm_layer(norm_cfg, hidden_channels)[1],
                nn.ReLU(inplace=True),
            ]
        self.conv = nn.Sequential(*layers)
        self.proj = nn.Conv2d(hidden_channels, out_channels, kernel_size=3, stride=2, padding=1)
        self.norm = nn.LayerNorm(out_channels)

    def forward(self, x: Tensor) -> Tuple[Tensor, HW]:
        # channels-last from the start: the convolutions at 1/2 resolution run faster so (oneDNN's NHWC kernels),
        # and the tokens after ``proj`` are a view of its output
        x = self.proj(self.conv(x.contiguous(memory_format=torch.channels_last)))
        hw = (x.shape[2], x.shape[3])
        return self.norm(x.flatten(2).transpose(1, 2)), hw


class Downsample(nn.Module):
    """Stride-2 3x3 convolution and a LayerNorm between stages. Keys: ``proj``, ``norm``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1)
        self.norm = nn.LayerNorm(out_channels)

    def forward(self, x: Tensor) -> Tuple[Tensor, HW]:
        x = self.proj(x)
        hw = (x.shape[2], x.shape[3])
        return self.norm(x.flatten(2).transpose(1, 2)), hw


class DWConv(nn.Module):
    """Depthwise 3x3 convolution over the token grid. Key: ``dwconv``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=1, groups=dim)

    def forward(self, x: Tensor, hw: HW) -> Tensor:
        return self.dwconv(_tokens_to_map(x, hw)).flatten(2).transpose(1, 2)


class Mlp(nn.Module):
    """Linear -> depthwise 3x3 conv -> GELU -> Linear (the PVTv2 FFN). Keys: ``fc1``, ``dwconv``, ``fc2``."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = DWConv(hidden_dim)
        self.act = GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor, hw: HW) -> Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x), hw)))


def _split_heads(x: Tensor, num_heads: int) -> Tensor:
    """``B x N x C`` -> ``B x heads x N x C/heads``."""
    B, N, C = x.shape
    return x.reshape(B, N, num_heads, C // num_heads).transpose(1, 2)


def _attend(q: Tensor, kv: Tensor, num_heads: int) -> Tensor:
    """Softmax attention of ``q`` (``B x N x C``) over ``kv`` (``B x M x 2C``, keys first), heads merged."""
    B, N, C = q.shape
    k, v = kv.reshape(B, kv.shape[1], 2, num_heads, C // num_heads).permute(2, 0, 3, 1, 4).unbind(0)
    out = F.scaled_dot_product_attention(_split_heads(q, num_heads), k, v)  # scale = head_dim ** -0.5
    return out.transpose(1, 2).reshape(B, N, C)


class WaveAttention(nn.Module):
    """Attention whose keys and values come from the Haar sub-bands of the input (stages 1 and 2).

    Queries keep full resolution. The input is reduced to C/4 channels, Haar-transformed (C channels at half
    resolution), filtered by a 3x3 conv; keys / values are a stride-``sr_ratio`` embedding of those sub-bands,
    and the inverse transform of the filtered sub-bands (C/4 channels at full resolution) is concatenated to
    the attention output before the projection. Odd feature sizes are zero-padded by one row / column for
    the transform and cropped back after it.

    Keys: ``q``, ``reduce.{0,1}``, ``filter.{0,1}``, ``kv_embed``, ``kv.{0,1}``, ``proj``.
    """

    def __init__(self, dim: int, num_heads: int, sr_ratio: int, norm_cfg: dict) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.reduce = nn.Sequential(
            nn.Conv2d(dim, dim // 4, kernel_size=1),
            build_norm_layer(norm_cfg, dim // 4)[1],
            nn.ReLU(inplace=True))
        self.filter = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=3, padding=1),
            build_norm_layer(norm_cfg, dim)[1],
            nn.ReLU(inplace=True))
        self.kv_embed = (nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
                         if sr_ratio > 1 else nn.Identity())
        self.kv = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * 2))
        self.proj = nn.Linear(dim + dim // 4, dim)

    def forward(self, x: Tensor, hw: HW) -> Tensor:
        H, W = hw
        bands = self.filter(haar_dwt2d(pad_to_even(self.reduce(_tokens_to_map(x, hw)))))
        local = haar_idwt2d(bands)
        if local.shape[2] != H or local.shape[3] != W:
            local = local[:, :, :H, :W]
        kv = self.kv(self.kv_embed(bands).flatten(2).transpose(1, 2))
        out = _attend(self.q(x), kv, self.num_heads)
        return self.proj(torch.cat([out, local.flatten(2).transpose(1, 2)], dim=-1))


class Attention(nn.Module):
    """Global multi-head softmax attention (stages 3 and 4). Keys: ``q``, ``kv``, ``proj``."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, dim * 2)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, hw: HW) -> Tensor:
        return self.proj(_attend(self.q(x), self.kv(x), self.num_heads))


class WaveViTBlock(nn.Module):
    """Pre-norm transformer block: ``x + drop_path(attn(norm1(x)))``, ``x + drop_path(mlp(norm2(x)))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, sr_ratio: int, wavelet: bool,
                 drop_path: float, norm_cfg: dict) -> None:
        super().__init__()
        self.norm1 = _layer_norm(dim, 1e-6)
        self.attn = (WaveAttention(dim, num_heads, sr_ratio, norm_cfg) if wavelet
                     else Attention(dim, num_heads))
        self.norm2 = _layer_norm(dim, 1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor, hw: HW) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), hw))
        return x + self.drop_path(self.mlp(self.norm2(x), hw))


@contextlib.contextmanager
def _no_running_stats_update(module: nn.Module) -> Iterator[None]:
    """Recompute a checkpointed block without updating BatchNorm running statistics a second time.

    The recomputation must run the same ops as the first pass (torch checks what is saved), so BN layers
    run as they did and their running statistics are put back afterwards.
    """
    saved = [(buf, buf.clone()) for m in module.modules()
             if isinstance(m, _BatchNorm) and m.training and m.track_running_stats
             for buf in (m.running_mean, m.running_var, m.num_batches_tracked) if buf is not None]
    try:
        yield
    finally:
        with torch.no_grad():
            for buf, value in saved:
                buf.copy_(value)


@MODELS.register_module()
class WaveViT(BaseModule):
    """Wave-ViT backbone.

    A convolutional stem and four stages of pre-norm transformer blocks at strides 4, 8, 16 and 32. The
    attention of stages 1 and 2 downsamples keys and values with a Haar wavelet transform and adds the
    inverse transform as a local branch; stages 3 and 4 use plain global attention. No positional embedding.

    Any input of at least 32 x 32 pixels works (the official code needs multiples of 16; a custom arch with
    larger ``sr_ratios`` needs :attr:`min_input_size`); the output of stage ``i`` (1-4) has
    ``ceil(H / 2**(i+1)) x ceil(W / 2**(i+1))`` positions, as channels-last maps. Stages after the last of
    ``out_indices`` are not run. A batch of 0 images gives empty maps in eval mode.

    Args:
        arch (str | dict): ``'s'``/``'small'``, ``'b'``/``'base'``, ``'l'``/``'large'``, or a dict with the
            keys ``stem_channels``, ``embed_dims``, ``num_heads``, ``depths``, ``mlp_ratios`` and
            ``sr_ratios`` (the last five are sequences of one value per stage; ``depths`` ints >= 0, the
            other counts ints >= 1, ``mlp_ratios`` positive numbers). Defaults to ``'s'``.
        in_channels (int): Input channels. Defaults to 3.
        out_indices (Sequence[int] | int): Stages (0-3, negative counts from the end) whose maps are returned.
            Defaults to ``(0, 1, 2, 3)``.
        final_norm (bool): Pass the last stage's output through ``norm4`` (the dense-prediction layout). The
            classifier sets ``False``: its head applies that norm after the class-attention block.
            Defaults to True.
        drop_path_rate (float): Stochastic depth in [0, 1), growing linearly from 0 over all blocks.
            Defaults to 0.
        frozen_stages (int): ``-1`` freezes nothing, ``0`` the stem, ``k`` the stem and stages 1..k (their
            downsampling, blocks and norm). Frozen parts stay in eval mode. Defaults to -1.
        norm_eval (bool): Keep the BatchNorm layers in eval mode while training. Defaults to False.
        with_cp (bool): Gradient checkpointing per block (less memory, same results). Defaults to False.
        norm_cfg (dict): The BatchNorm layers of the stem and the wavelet attention, e.g.
            ``dict(type='SyncBN')``. Defaults to ``dict(type='BN')``.
        init_cfg (dict | list[dict], optional): ``dict(type='Pretrained', checkpoint=PATH, prefix=...)``
            loads an official Wave-ViT checkpoint or a converted mmpretrain one (``prefix='backbone.'``);
            otherwise the official initialisation is applied. Defaults to None.
    """
    arch_zoo: Dict[str, dict] = {
        **dict.fromkeys(['s', 'small'], {
            'stem_channels': 32,
            'embed_dims': [64, 128, 320, 448],
            'num_heads': [2, 4, 10, 14],
            'depths': [3, 4, 6, 3],
            'mlp_ratios': [8, 8, 4, 4],
            'sr_ratios': [4, 2, 1, 1],
        }),
        **dict.fromkeys(['b', 'base'], {
            'stem_channels': 64,
            'embed_dims': [64, 128, 320, 512],
            'num_heads': [2, 4, 10, 16],
            'depths': [3, 4, 12, 3],
            'mlp_ratios': [8, 8, 4, 4],
            'sr_ratios': [4, 2, 1, 1],
        }),
        **dict.fromkeys(['l', 'large'], {
            'stem_channels': 64,
            'embed_dims': [96, 192, 384, 512],
            'num_heads': [3, 6, 12, 16],
            'depths': [3, 6, 18, 3],
            'mlp_ratios': [8, 8, 4, 4],
            'sr_ratios': [4, 2, 1, 1],
        }),
    }
    num_stages = 4
    #: stages (0-based) whose attention is the wavelet attention
    wavelet_stages = (0, 1)

    def __init__(self,
                 arch: Union[str, dict] = 's',
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3),
                 final_norm: bool = True,
                 drop_path_rate: float = 0.,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch_settings = self._parse_arch(arch)
        self.in_channels = _check_int('in_channels', in_channels, 1)
        self.out_indices = self._parse_out_indices(out_indices)
        if isinstance(drop_path_rate, bool) or not isinstance(drop_path_rate, Real) or not 0 <= drop_path_rate < 1:
            raise ValueError(f'drop_path_rate must be a number in [0, 1), got {drop_path_rate!r}')
        if isinstance(frozen_stages, bool) or not isinstance(frozen_stages, Integral) \
                or not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'frozen_stages must be an int in [-1, {self.num_stages}] (-1: nothing, 0: the stem, '
                             f'k: the stem and stages 1..k), got {frozen_stages!r}')
        self.frozen_stages = frozen_stages
        self.final_norm = final_norm
        self.norm_eval = norm_eval
        self.with_cp = with_cp

        s = self.arch_settings
        self.embed_dims: List[int] = list(s['embed_dims'])
        dpr = torch.linspace(0, drop_path_rate, sum(s['depths'])).tolist()
        cur = 0
        for i in range(self.num_stages):
            dim = self.embed_dims[i]
            if i == 0:
                patch_embed = Stem(in_channels, s['stem_channels'], dim, norm_cfg)
            else:
                patch_embed = Downsample(self.embed_dims[i - 1], dim)
            blocks = nn.ModuleList([
                WaveViTBlock(dim, s['num_heads'][i], s['mlp_ratios'][i], s['sr_ratios'][i],
                             wavelet=i in self.wavelet_stages, drop_path=dpr[cur + j], norm_cfg=norm_cfg)
                for j in range(s['depths'][i])
            ])
            cur += s['depths'][i]
            setattr(self, f'patch_embed{i + 1}', patch_embed)
            setattr(self, f'block{i + 1}', blocks)
            # norm1..3 sit between stages; norm4 only normalises the last output
            if i < self.num_stages - 1 or (final_norm and i in self.out_indices):
                setattr(self, f'norm{i + 1}', _layer_norm(dim, 1e-6))
        self.num_features = self.embed_dims
        self.register_load_state_dict_pre_hook(self._drop_foreign_keys)
        self._freeze_stages()

    # ------------------------------------------------------------------------------------------ arguments
    @classmethod
    def _parse_arch(cls, arch: Union[str, dict]) -> dict:
        if isinstance(arch, str):
            key = arch.lower()
            if key not in cls.arch_zoo:
                raise ValueError(f'unknown Wave-ViT arch {arch!r}; valid names: {sorted(cls.arch_zoo)}, '
                                 'or a dict with the keys ' + ', '.join(cls._arch_keys()))
            return deepcopy(cls.arch_zoo[key])
        if not isinstance(arch, dict):
            raise TypeError(f'arch must be a str or a dict, got {type(arch).__name__}')
        missing = [k for k in cls._arch_keys() if k not in arch]
        if missing:
            raise ValueError(f'custom arch dict is missing the keys {missing} '
                             f'(needed: {list(cls._arch_keys())})')
        extra = sorted(set(arch) - set(cls._arch_keys()))
        if extra:
            raise ValueError(f'custom arch dict has unknown keys {extra} (allowed: {list(cls._arch_keys())})')
        settings = deepcopy(arch)
        _check_int('arch[\'stem_channels\']', settings['stem_channels'], 1)
        for key in cls._arch_keys()[1:]:
            values = settings[key]
            if not isinstance(values, Sequence) or isinstance(values, str) or len(values) != cls.num_stages:
                raise ValueError(f'arch[{key!r}] needs one value per stage ({cls.num_stages}), got {values!r}')
            for i, value in enumerate(values):
                name = f'arch[{key!r}][{i}] (stage {i + 1})'
                if key == 'mlp_ratios':
                    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) \
                            or int(settings['embed_dims'][i] * value) < 1:
                        raise ValueError(f'{name} must be a positive number that leaves at least one hidden '
                                         f'channel (embed_dims x mlp_ratio >= 1), got {value!r}')
                else:  # depths may be 0 (a stage of downsampling and norm only); the rest must be positive
                    _check_int(name, value, 0 if key == 'depths' else 1)
        for i, (dim, heads) in enumerate(zip(settings['embed_dims'], settings['num_heads'])):
            if dim % heads:
                raise ValueError(f'stage {i + 1}: embed_dims {dim} is not divisible by num_heads {heads}')
            if i in cls.wavelet_stages and dim % 4:
                raise ValueError(f'stage {i + 1}: the wavelet attention needs embed_dims divisible by 4, '
                                 f'got {dim}')
        return settings

    @staticmethod
    def _arch_keys() -> Tuple[str, ...]:
        return ('stem_channels', 'embed_dims', 'num_heads', 'depths', 'mlp_ratios', 'sr_ratios')

    def _parse_out_indices(self, out_indices: Union[int, Sequence[int]]) -> Tuple[int, ...]:
        if isinstance(out_indices, Integral) and not isinstance(out_indices, bool):
            out_indices = [out_indices]
        if not isinstance(out_indices, Sequence) or not out_indices:
            raise TypeError(f'out_indices must be an int or a non-empty sequence of ints, got {out_indices!r}')
        parsed = []
        for index in out_indices:
            if isinstance(index, bool) or not isinstance(index, Integral):
                raise TypeError(f'out_indices must hold stage indices (ints), got {index!r} in {out_indices!r}')
            if not -self.num_stages <= index < self.num_stages:
                raise ValueError(f'out_indices {index} is out of range: valid are 0..{self.num_stages - 1} '
                                 f'or -{self.num_stages}..-1')
            parsed.append(index % self.num_stages)
        return tuple(sorted(set(parsed)))

    # ------------------------------------------------------------------------------------------ forward
    @property
    def min_input_size(self) -> int:
        """Smallest input side: 32 (stage 4 is then 1 x 1), or more where a wavelet stage's ``sr_ratio`` needs
        its sub-band grid (``ceil(side / 2**(i+3))`` for stage ``i`` = 0, 1) to cover one key-value patch."""
        sr = self.arch_settings['sr_ratios']
        return max([MIN_INPUT_SIZE] + [2**(i + 3) * (sr[i] - 1) + 1 for i in self.wavelet_stages])

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'WaveViT expects a B x {self.in_channels} x H x W tensor, '
                             f'got shape {tuple(x.shape)}')
        size = self.min_input_size
        if x.shape[2] < size or x.shape[3] < size:
            raise ValueError(f'WaveViT needs inputs of at least {size} x {size} pixels '
                             f'(any size from there on), got {x.shape[2]} x {x.shape[3]}')
        if x.shape[0] == 0 and any(m.training for m in self.modules() if isinstance(m, _BatchNorm)):
            raise ValueError('WaveViT got a batch of 0 images in training mode: its BatchNorm layers would '
                             'record NaN running statistics. Skip empty batches, or call eval() (an empty batch '
                             'then gives empty maps)')

    def _run_block(self, block: WaveViTBlock, x: Tensor, hw: HW) -> Tensor:
        if self.with_cp and self.training and x.requires_grad:
            return cp.checkpoint(block, x, hw, use_reentrant=False,
                                 context_fn=lambda: (contextlib.nullcontext(), _no_running_stats_update(block)))
        return block(x, hw)

    def forward_stem(self, x: Tensor) -> Tuple[Tensor, HW]:
        """Stem only: ``B x N x C`` tokens at stride 4 and their grid size (where MixToken mixes)."""
        self._check_input(x)
        return self.patch_embed1(x)

    def forward_stages(self, x: Tensor, hw: HW) -> Tuple[Tensor, ...]:
        """Stages 1-4 on the stem's tokens; returns the maps of ``out_indices``."""
        outs = []
        for i in range(self.out_indices[-1] + 1):  # stages after the last output are not run
            if i > 0:
                x, hw = getattr(self, f'patch_embed{i + 1}')(x)
            for block in getattr(self, f'block{i + 1}'):
                x = self._run_block(block, x, hw)
            norm = getattr(self, f'norm{i + 1}', None)
            if norm is not None:
                x = norm(x)
            x = _tokens_to_map(x, hw)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """``B x in_channels x H x W`` images -> tuple of ``B x C_i x H_i x W_i`` maps (see the class doc)."""
        return self.forward_stages(*self.forward_stem(x))

    # ------------------------------------------------------------------------------------------ training
    def _frozen_modules(self) -> List[nn.Module]:
        modules: List[nn.Module] = []
        if self.frozen_stages >= 0:
            modules.append(self.patch_embed1)
        for i in range(1, self.frozen_stages + 1):
            if i > 1:
                modules.append(getattr(self, f'patch_embed{i}'))
            modules.append(getattr(self, f'block{i}'))
            if hasattr(self, f'norm{i}'):
                modules.append(getattr(self, f'norm{i}'))
        return modules

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'WaveViT':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    # ------------------------------------------------------------------------------------------ weights
    def init_weights(self) -> None:
        """Load ``init_cfg``'s pretrained checkpoint, or apply the official initialisation."""
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            self.load_pretrained(cfg['checkpoint'], prefix=cfg.get('prefix', 'backbone.'),
                                 map_location=cfg.get('map_location', 'cpu'))
            self._is_init = True
            return
        if cfg is not None:  # other initialisers (Kaiming, TruncNormal, ...) as mmengine applies them
            super().init_weights()
            return
        self.apply(self._official_init)
        self._is_init = True

    @staticmethod
    def _official_init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def load_pretrained(self, checkpoint: str, prefix: str = 'backbone.', map_location: str = 'cpu') -> None:
        """Load an official Wave-ViT checkpoint or a converted mmpretrain one into this backbone.

        The file is read with ``weights_only=True``. Missing and unexpected keys are reported by name; a
        checkpoint that provides less than half of the backbone's tensors, tensors of the wrong shape (a
        checkpoint of another variant), or values that are not usable weights (not tensors, NaN / infinite, an
        integer dtype for a float one) is an error.
        """
        try:
            raw = load_checkpoint_file(checkpoint, map_location=map_location)
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f'{exc}. Wave-ViT ImageNet weights are made from the official release with '
                'python tools/model_converters/wavevit2mm.py OFFICIAL.pth.tar CONVERTED.pth '
                '(or pass the official file itself with prefix=\'\')') from None
        state_dict = to_backbone_state_dict(unwrap_state_dict(raw), prefix=prefix)
        own = self.state_dict()
        problems = unusable_values(state_dict, own)  # non-tensors, NaN / inf, integer tensors for float weights
        if problems:
            raise ValueError(f'{checkpoint} does not hold usable Wave-ViT weights: ' + '; '.join(problems))
        mismatched = [f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
                      for k, v in state_dict.items() if k in own and own[k].shape != v.shape]
        if mismatched:
            raise RuntimeError(f'{checkpoint} does not fit this Wave-ViT (another variant?); shape mismatches: '
                               + '; '.join(mismatched[:10]) + (' ...' if len(mismatched) > 10 else ''))
        missing, unexpected = self.load_state_dict(state_dict, strict=False)
        loaded = sum(k in own for k in state_dict)
        if loaded < MIN_LOADED_FRACTION * len(own):
            raise RuntimeError(
                f'{checkpoint} (prefix {prefix!r}) provides only {loaded} of the {len(own)} tensors of this '
                f'Wave-ViT backbone. Missing: {missing[:20]}{" ..." if len(missing) > 20 else ""}. '
                f'Unexpected: {unexpected[:20]}{" ..." if len(unexpected) > 20 else ""}')
        if missing or unexpected:
            print_log(f'loaded {checkpoint} into WaveViT with missing keys {missing} and unexpected keys '
                      f'{unexpected}', logger='current', level=30)
        else:
            print_log(f'loaded all {loaded} backbone tensors from {checkpoint}', logger='current')

    @staticmethod
    def _drop_foreign_keys(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
        """Load hook: official checkpoints carry float16 Haar filters (we need none) and classifier keys."""
        for key in list(state_dict):
            if not key.startswith(prefix):
                continue
            name = key[len(prefix):]
            if HAAR_BUFFER_RE.search(name) or name.startswith(CLS_ONLY_PREFIXES):
                del state_dict[key]
