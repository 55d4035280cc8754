"""Single-level 2-D Haar wavelet transform and its exact inverse.

For every 2x2 patch ``[[a, b], [c, d]]`` of every channel the forward transform gives four sub-bands::

    LL = (a + b + c + d) / 2      low-pass along H and W
    LH = (a + b - c - d) / 2      high-pass along H
    HL = (a - b + c - d) / 2      high-pass along W
    HH = (a - b - c + d) / 2      high-pass along both

and stacks them band-major, ``[LL | LH | HL | HH]``, so an input of ``C`` channels at ``H x W`` becomes
``4C`` channels at ``H/2 x W/2`` (the layout of the official Wave-ViT release). The 4x4 matrix behind it is
orthonormal and symmetric, so it is its own inverse: :func:`haar_idwt2d` applies the same butterfly to the
sub-bands and interleaves the results back into 2x2 patches.

Both are written as strided views, additions and one scaling by 0.5 (exact in every floating point format,
so scaling the input first gives bit for bit the same result as scaling each sub-band), so dtype and device
follow the input, autograd needs no custom ``Function``, and ``torch.compile`` / ONNX export see plain tensor
ops. Channels-last inputs (what Wave-ViT's convolutions produce) give channels-last outputs, so turning the
result into ``B x HW x C`` tokens is a view, not a transposing copy.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _butterfly(a: Tensor, b: Tensor, c: Tensor, d: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """The 4-point Haar butterfly without its factor 1/2 (the callers scale the input by 0.5 once)."""
    s_top, d_top = a + b, a - b
    s_bot, d_bot = c + d, c - d
    return s_top + s_bot, s_top - s_bot, d_top + d_bot, d_top - d_bot


def _is_channels_last(x: Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def haar_dwt2d(x: Tensor) -> Tensor:
    """Haar DWT of a ``B x C x H x W`` tensor with even ``H`` and ``W``.

    Returns:
        Tensor: ``B x 4C x H/2 x W/2``, sub-bands ordered ``[LL | LH | HL | HH]``.
    """
    if x.dim() != 4:
        raise ValueError(f'haar_dwt2d expects a B x C x H x W tensor, got shape {tuple(x.shape)}')
    B, C, H, W = x.shape
    if H % 2 or W % 2:
        raise ValueError(f'haar_dwt2d needs an even height and width, got {H} x {W} (pad the input first)')
    x = (x * 0.5).reshape(B, C, H // 2, 2, W // 2, 2)
    bands = _butterfly(x[:, :, :, 0, :, 0], x[:, :, :, 0, :, 1], x[:, :, :, 1, :, 0], x[:, :, :, 1, :, 1])
    return torch.cat(bands, dim=1)


def haar_idwt2d(x: Tensor) -> Tensor:
    """Inverse of :func:`haar_dwt2d`: ``B x 4C x h x w`` sub-bands to a ``B x C x 2h x 2w`` tensor."""
    if x.dim() != 4 or x.shape[1] % 4:
        raise ValueError('haar_idwt2d expects a B x 4C x h x w tensor of stacked sub-bands, '
                         f'got shape {tuple(x.shape)}')
    B, C4, h, w = x.shape
    channels_last = _is_channels_last(x)
    a, b, c, d = _butterfly(*(x * 0.5).chunk(4, dim=1))
    if channels_last:  # interleave in B x h x 2 x w x 2 x C order: the result is a channels-last map
        a, b, c, d = (t.permute(0, 2, 3, 1) for t in (a, b, c, d))
        top = torch.stack((a, b), dim=3)  # B x h x w x 2 x C
        bottom = torch.stack((c, d), dim=3)
        return torch.stack((top, bottom), dim=2).reshape(B, 2 * h, 2 * w, C4 // 4).permute(0, 3, 1, 2)
    top = torch.stack((a, b), dim=-1)  # B x C x h x w x 2
    bottom = torch.stack((c, d), dim=-1)
    return torch.stack((top, bottom), dim=3).reshape(B, C4 // 4, 2 * h, 2 * w)


def pad_to_even(x: Tensor) -> Tensor:
    """Zero-pad the bottom / right edge of a ``B x C x H x W`` map so that H and W are even.

    Returns the input itself when both are already even, so even sizes are computed exactly as before.
    """
    pad_h, pad_w = x.shape[-2] % 2, x.shape[-1] % 2
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    return x


class HaarDWT2d(nn.Module):
    """Module form of :func:`haar_dwt2d` (no parameters, no buffers)."""

    def forward(self, x: Tensor) -> Tensor:
        return haar_dwt2d(x)


class HaarIDWT2d(nn.Module):
    """Module form of :func:`haar_idwt2d` (no parameters, no buffers)."""

    def forward(self, x: Tensor) -> Tensor:
        return haar_idwt2d(x)
