import os
import sys

import pytest
import torch

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
sys.path.insert(0, TESTS_DIR)  # reference_wavevit and fixture helpers

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

#: a small arch for fast tests: every code path of the real ones (wavelet stages with sr 4 and 2, plain
#: attention stages) at a fraction of the cost
TINY_ARCH = dict(stem_channels=8, embed_dims=[16, 32, 48, 64], num_heads=[1, 2, 3, 4], depths=[1, 1, 2, 1],
                 mlp_ratios=[8, 8, 4, 4], sr_ratios=[4, 2, 1, 1])
#: the same arch in the reference's notation
TINY_REF = dict(stem=8, dims=[16, 32, 48, 64], heads=[1, 2, 3, 4], depths=[1, 1, 2, 1])


@pytest.fixture(scope='module')
def one_torch_thread():
    """Run a module's tests with one intra-op thread (restored afterwards): models of many small ops on tiny
    inputs gain little from a second thread on an idle machine and lose several times on a busy one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def randomize_norm_stats(model):
    """Give BatchNorm layers non-trivial running statistics and affine parameters (eval-mode tests)."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
        elif isinstance(m, torch.nn.LayerNorm):
            m.weight.data.copy_(torch.rand(m.normalized_shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.normalized_shape, generator=g) * 0.1)
    return model
