"""Import the official Wave-ViT (github YehLi/ImageNetModel, ``classification/wavevit.py``) from a checkout.

Nothing of the official code is part of this project: the user points ``--official-src`` at a checkout (the
repository root or its ``classification/`` folder), and :func:`import_official` imports its ``wavevit.py`` and
``torch_wavelets.py`` as they are. Their imports need timm 0.4.5 and PyWavelets, which this project does not
depend on, so for the duration of that one import ``sys.modules`` holds small stand-ins for the five timm names
they use (``DropPath``, ``to_2tuple``, ``trunc_normal_``, ``register_model``, ``_cfg``) and for
``pywt.Wavelet('haar')``; the previous ``sys.modules`` entries are put back afterwards. The module's ``np`` also
gets ``np.int`` (removed in numpy 1.24; MixToken's ``rand_bbox`` uses it), without touching numpy itself.

The official model stores its Haar filters as float16 buffers, so a plain float32 forward fails;
:func:`build_official` casts them to float32 (``model.float()``).

How our weights get into it: :func:`load_into_ours` maps the official state dict with the project's own key
mapping (:mod:`wavevit_mm.models.ckpt_convert`) into a ``wavevit_mm`` classifier or backbone, so both models hold
the same weights, and the benchmark checks that their outputs agree before it times anything.
"""
import contextlib
import importlib.util
import math
import os
import sys
import types
from typing import Iterator, Tuple

import numpy
from torch import Tensor, nn

#: 1/sqrt(2): PyWavelets' Haar filter taps
_R2 = 1 / math.sqrt(2)


def find_source(path: str) -> str:
    """The folder holding the official ``wavevit.py`` and ``torch_wavelets.py``: ``path`` or its ``classification/``."""
    for folder in (path, os.path.join(path, 'classification')):
        if all(os.path.isfile(os.path.join(folder, f)) for f in ('wavevit.py', 'torch_wavelets.py')):
            return os.path.abspath(folder)
    raise FileNotFoundError(
        f'--official-src {path}: no wavevit.py and torch_wavelets.py there or in its classification/ folder; '
        'give a checkout of github.com/YehLi/ImageNetModel (its root or its classification/ folder)')


def _stand_ins() -> dict:
    """Modules that answer the official code's imports of timm 0.4.5 and PyWavelets."""
    from mmcv.cnn.bricks import DropPath  # same drop-path semantics as timm's (per-sample, rescaled)

    def module(name: str, **attrs) -> types.ModuleType:
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        return mod

    layers = module('timm.models.layers', DropPath=DropPath, trunc_normal_=nn.init.trunc_normal_,
                    to_2tuple=lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x, x))
    registry = module('timm.models.registry', register_model=lambda fn: fn)
    vit = module('timm.models.vision_transformer', _cfg=lambda url='', **kwargs: dict(url=url, **kwargs))
    models = module('timm.models', layers=layers, registry=registry, vision_transformer=vit)
    wavelet = types.SimpleNamespace(dec_lo=[_R2, _R2], dec_hi=[-_R2, _R2], rec_lo=[_R2, _R2], rec_hi=[_R2, -_R2])

    def haar_only(name: str) -> types.SimpleNamespace:
        if name != 'haar':
            raise ValueError(f'the pywt stand-in of the benchmark knows the Haar wavelet only, not {name!r}')
        return wavelet

    return {'timm': module('timm', models=models), 'timm.models': models, 'timm.models.layers': layers,
            'timm.models.registry': registry, 'timm.models.vision_transformer': vit,
            'pywt': module('pywt', Wavelet=haar_only)}


@contextlib.contextmanager
def _modules(entries: dict, also: Tuple[str, ...] = ()) -> Iterator[None]:
    """``sys.modules`` holds ``entries`` inside the block; whatever was there before under those names and the
    names ``also`` (modules the block imports) is put back after it."""
    missing = object()
    saved = {name: sys.modules.get(name, missing) for name in (*entries, *also)}
    sys.modules.update(entries)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is missing:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


class _NumpyWithInt(types.ModuleType):
    """numpy, plus the ``np.int`` alias that numpy 1.24 removed (only for the official module's globals)."""
    int = int

    def __getattr__(self, name: str):
        return getattr(numpy, name)


def import_official(src: str) -> types.ModuleType:
    """Import the official ``wavevit.py`` (and its ``torch_wavelets.py``) from a checkout; see the module doc."""
    folder = find_source(src)
    loaded = {}
    names = ('torch_wavelets', 'wavevit')  # wavevit.py does `from torch_wavelets import ...`
    with _modules(_stand_ins(), also=names):
        for name in names:
            spec = importlib.util.spec_from_file_location(name, os.path.join(folder, f'{name}.py'))
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
            loaded[name] = mod
    official = loaded['wavevit']
    official.np = _NumpyWithInt('numpy')
    return official


def build_official(src: str, arch: str = 's', drop_path_rate: float = 0.) -> nn.Module:
    """The official classifier ``wavevit_{arch}`` (token labeling head included), in float32, MixToken off.

    MixToken is switched off so that a training step is the plain forward / backward that ours is timed with
    (MixToken itself is a clone of the stem's tokens: no measurable time).
    """
    official = import_official(src)
    model = getattr(official, f'wavevit_{arch}')(drop_path_rate=drop_path_rate).float()
    model.mix_token = False
    return model


class OfficialDense(nn.Module):
    """The official dense backbone: its classification trunk with ``norm{i}`` after every stage, four maps.

    This is what the official detection / segmentation code computes (patch embedding, blocks and norm per
    stage), run on the modules of the official classifier given here.
    """

    def __init__(self, official: nn.Module) -> None:
        super().__init__()
        self.official = official

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        outs = []
        for i in range(1, 5):
            x, H, W = getattr(self.official, f'patch_embed{i}')(x)
            for blk in getattr(self.official, f'block{i}'):
                x = blk(x, H, W)
            x = getattr(self.official, f'norm{i}')(x)
            x = x.reshape(x.shape[0], H, W, -1).permute(0, 3, 1, 2).contiguous()
            outs.append(x)
        return tuple(outs)




def load_into_ours(official: nn.Module, ours: nn.Module) -> None:
    """Load the official model's weights into ours through the project's key mapping (strict).

    ``ours`` is a ``wavevit_mm`` ``ImageClassifier`` (official -> mmpretrain layout) or a ``WaveViT`` backbone.
    """
    from wavevit_mm.models.ckpt_convert import official_to_mmpretrain, to_backbone_state_dict
    state = official.state_dict()
    if hasattr(ours, 'backbone'):
        ours.load_state_dict(official_to_mmpretrain(state), strict=True)
    else:
        ours.load_state_dict(to_backbone_state_dict(state), strict=True)
