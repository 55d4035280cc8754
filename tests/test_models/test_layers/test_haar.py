import pytest
import torch

from wavevit_mm.models.layers import HaarDWT2d, HaarIDWT2d, haar_dwt2d, haar_idwt2d, pad_to_even


def brute_force_dwt(x):
    """The definition, one 2x2 patch at a time."""
    B, C, H, W = x.shape
    out = torch.empty(B, 4 * C, H // 2, W // 2, dtype=x.dtype)
    for i in range(H // 2):
        for j in range(W // 2):
            a, b = x[:, :, 2 * i, 2 * j], x[:, :, 2 * i, 2 * j + 1]
            c, d = x[:, :, 2 * i + 1, 2 * j], x[:, :, 2 * i + 1, 2 * j + 1]
            out[:, 0 * C:1 * C, i, j] = (a + b + c + d) / 2
            out[:, 1 * C:2 * C, i, j] = (a + b - c - d) / 2
            out[:, 2 * C:3 * C, i, j] = (a - b + c - d) / 2
            out[:, 3 * C:4 * C, i, j] = (a - b - c + d) / 2
    return out


@pytest.mark.parametrize('shape', [(1, 1, 2, 2), (2, 3, 6, 8), (3, 5, 10, 4)])
def test_dwt_matches_definition(shape):
    x = torch.randn(shape, dtype=torch.float64)
    torch.testing.assert_close(haar_dwt2d(x), brute_force_dwt(x), rtol=0, atol=1e-12)


def test_single_patch_values():
    x = torch.tensor([[[[1., 2.], [3., 4.]]]])  # a, b, c, d
    assert haar_dwt2d(x).flatten().tolist() == [5.0, -2.0, -1.0, 0.0]


@pytest.mark.parametrize('shape', [(2, 4, 8, 8), (1, 7, 12, 6), (5, 1, 2, 4)])
def test_perfect_reconstruction(shape):
    x = torch.randn(shape, dtype=torch.float64)
    torch.testing.assert_close(haar_idwt2d(haar_dwt2d(x)), x, rtol=0, atol=1e-12)
    bands = torch.randn(shape[0], 4 * shape[1], shape[2], shape[3], dtype=torch.float64)
    torch.testing.assert_close(haar_dwt2d(haar_idwt2d(bands)), bands, rtol=0, atol=1e-12)


def test_energy_preserved():
    x = torch.randn(2, 3, 8, 10, dtype=torch.float64)
    torch.testing.assert_close(haar_dwt2d(x).square().sum(), x.square().sum())


def test_gradcheck_float64():
    x = torch.randn(2, 3, 4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(haar_dwt2d, (x, ))
    y = torch.randn(2, 8, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(haar_idwt2d, (y, ))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtype_follows_input(dtype):
    x = torch.randn(2, 3, 8, 8).to(dtype)
    y = haar_dwt2d(x)
    assert y.dtype == dtype and y.shape == (2, 12, 4, 4)
    assert haar_idwt2d(y).dtype == dtype
    # multiplications by 0.5 are exact, so low precision only rounds the additions
    torch.testing.assert_close(y.double(), brute_force_dwt(x.double()), rtol=2e-2, atol=2e-2)


def test_modules_have_no_state():
    assert not list(HaarDWT2d().state_dict()) and not list(HaarIDWT2d().state_dict())
    x = torch.randn(1, 2, 4, 4)
    torch.testing.assert_close(HaarIDWT2d()(HaarDWT2d()(x)), x)


def test_pad_to_even():
    x = torch.randn(1, 2, 4, 6)
    assert pad_to_even(x) is x
    y = pad_to_even(torch.randn(1, 2, 5, 7))
    assert y.shape == (1, 2, 6, 8) and y[..., 5, :].abs().sum() == 0 and y[..., :, 7].abs().sum() == 0


def test_bad_inputs():
    with pytest.raises(ValueError, match='even height and width'):
        haar_dwt2d(torch.randn(1, 1, 3, 4))
    with pytest.raises(ValueError, match='B x C x H x W'):
        haar_dwt2d(torch.randn(3, 4))
    with pytest.raises(ValueError, match='B x 4C'):
        haar_idwt2d(torch.randn(1, 6, 2, 2))
