#!/usr/bin/env python
"""Parameters and FLOPs of a wavevit_mm config's model (classification, detection or segmentation).

Usage::

    python tools/analysis_tools/get_flops.py CONFIG [--shape H [W]] [--macs-only] [--depth N]
                                                    [--device {auto,meta,cpu,cuda}] [--json OUT]
                                                    [--cfg-options k=v ...]

What is counted (``paper`` convention, the default):

- multiply-adds (MACs, one per multiply-add) of every convolution and matrix product (``nn.Linear``,
  ``torch.matmul``, ``bmm``, and the oneDNN linear / fused convolution kernels of CPU fast paths);
- the two attention products ``q k^T`` and ``attn v`` inside ``F.scaled_dot_product_attention``, counted
  from the shapes of q, k and v (``L * S * (E + Ev)`` per batch and head). mmengine's / fvcore's counters
  treat SDPA as an unknown op and count nothing for it, and torch's ``FlopCounterMode`` misses its CPU kernel;
- one operation per output element for every bias add (convolution and linear), two per element for every
  BatchNorm, one per element for every ReLU.

With this convention the classifiers (token-labeling head, as the official models evaluate) come out at
4.652 / 7.206 / 14.771 G at 224 and 15.104 / 23.453 / 47.478 G at 384 for S / B / L: the paper's
4.7 / 7.2 / 14.8 and 15.1 / 23.4 / 47.5, all within 0.06 G (5 of 6 to the paper's rounding). Variants:
``--macs-only`` (only the multiply-adds: 4.621 / 7.166 / 14.706 G) and the official release's
ptflops-style counter plus the attention products (no linear biases: 4.637 / 7.187 / 14.738 G) are
further off; the "by kind" line and ``--json`` give every term separately.

LayerNorm, GELU, softmax, interpolation, pooling and element-wise additions are not counted. ``--macs-only``
drops the bias / BatchNorm / ReLU terms and prints the pure multiply-add count.

The model runs once on a synthetic batch of one image. ``--device auto`` (default) runs it on the ``meta``
device (shapes only, no arithmetic, a fraction of a second even for Wave-ViT-L at 384) and falls back to a
real forward on CPU/GPU for models with data-dependent steps (the NMS of detectors). The forward is the
model's ``tensor`` mode (no post-processing), or ``predict`` mode for the few whose tensor mode needs ground
truth (Sparse R-CNN). Weights are random, initialised as the config says except that pretrained checkpoints
are not loaded. Detectors are counted on a random-noise image: backbone, neck and RPN / dense heads are
exact, while the RoI heads of two-stage detectors count the RoIs this run produced (separate table row).
The "of which attention" column counts ``F.scaled_dot_product_attention`` calls; attention written as
explicit matmuls (e.g. ``nn.MultiheadAttention`` in some mmdet heads) is in the ``matmul`` kind.

Default shapes: 224 x 224 for classifiers (the test pipeline's ``CenterCrop`` size if it has one),
1280 x 800 (W x H) for detectors, the config's ``crop_size`` (512 x 512) for segmentors.
"""
import argparse
import json
import math
from collections import defaultdict
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from wavevit_mm.utils.model_utils import build_model, config_scope, default_shape, load_config, make_batch, task_of  # noqa: E402

aten = torch.ops.aten

#: counted categories; ``--macs-only`` keeps the first three
MAC_KINDS = ('conv', 'matmul', 'attention')
EXTRA_KINDS = ('conv_bias', 'linear_bias', 'batchnorm', 'relu')

_MATMULS = {aten.mm, aten.bmm, aten.addmm, aten.baddbmm}
_BIASED_MATMULS = {aten.addmm, aten.baddbmm}
_RELUS = {aten.relu, aten.relu_}
_FUSED_LINEARS = {getattr(torch.ops.mkldnn, '_linear_pointwise', None)} - {None}
_FUSED_CONVS = {getattr(torch.ops.mkldnn, '_convolution_pointwise', None)} - {None}
_BATCH_NORMS = {
    aten.native_batch_norm, aten._native_batch_norm_legit, aten._native_batch_norm_legit_no_training,
    aten.cudnn_batch_norm, aten.miopen_batch_norm, aten._native_batch_norm_legit_functional
}


def sdpa_macs(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> int:
    """MACs of ``softmax(q k^T) v``: ``q k^T`` is ``L x S x E``, ``attn v`` is ``L x S x Ev`` per batch/head."""
    batch = math.prod(torch.broadcast_shapes(query.shape[:-2], key.shape[:-2]))
    L, E = query.shape[-2:]
    S, Ev = key.shape[-2], value.shape[-1]
    return batch * L * S * (E + Ev)


class FlopCounter:
    """Counts MACs and the extra element-wise terms of one forward, per category and per module.

    A ``TorchFunctionMode`` catches ``F.scaled_dot_product_attention`` and ``F.linear`` (counted from their
    arguments' shapes, whatever kernel runs them: SDPA's fused CPU kernel and the mkldnn linear are invisible to
    aten-level counters); a ``TorchDispatchMode`` counts the aten convolution / matmul / BatchNorm / ReLU ops
    (explicit ``matmul`` / ``bmm`` included); module hooks attribute every count to the modules that ran.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.totals: Dict[str, int] = defaultdict(int)
        self.per_module: Dict[str, Dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._stack: List[str] = []
        self._in_sdpa = 0
        self._handles: list = []

    # ---------------------------------------------------------------------------------------- bookkeeping
    def add(self, kind: str, value: int) -> None:
        if value <= 0:
            return
        self.totals[kind] += value
        names = set()
        for name in self._stack:  # a module and its ancestors (containers such as ModuleList never run)
            parts = name.split('.')
            names.update('.'.join(parts[:i]) for i in range(1, len(parts) + 1))
        for name in names:
            self.per_module[name][kind] += value

    def _push(self, name: str) -> Callable:
        def hook(module, args):
            self._stack.append(name)
        return hook

    def _pop(self, name: str) -> Callable:
        def hook(module, args, output):
            if self._stack and self._stack[-1] == name:
                self._stack.pop()
        return hook

    def __enter__(self) -> 'FlopCounter':
        for name, module in self.model.named_modules():
            self._handles.append(module.register_forward_pre_hook(self._push(name)))
            self._handles.append(module.register_forward_hook(self._pop(name), always_call=True))
        self._function_mode = _FunctionMode(self)
        self._dispatch_mode = _OpMode(self)
        self._function_mode.__enter__()
        self._dispatch_mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._dispatch_mode.__exit__(*exc)
        self._function_mode.__exit__(*exc)
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def total(self, macs_only: bool = False) -> int:
        kinds = MAC_KINDS if macs_only else MAC_KINDS + EXTRA_KINDS
        return sum(self.totals.get(k, 0) for k in kinds)

    def module_total(self, name: str, macs_only: bool = False) -> int:
        kinds = MAC_KINDS if macs_only else MAC_KINDS + EXTRA_KINDS
        return sum(self.per_module.get(name, {}).get(k, 0) for k in kinds)


class _FunctionMode(TorchFunctionMode):

    def __init__(self, counter: FlopCounter) -> None:
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            q = args[0] if len(args) > 0 else kwargs['query']
            k = args[1] if len(args) > 1 else kwargs['key']
            v = args[2] if len(args) > 2 else kwargs['value']
            self.counter.add('attention', sdpa_macs(q, k, v))
        elif func is F.linear:
            # counted here: on CPU torch may run it as mkldnn._linear_pointwise instead of aten.addmm
            x = args[0] if len(args) > 0 else kwargs['input']
            w = args[1] if len(args) > 1 else kwargs['weight']
            b = args[2] if len(args) > 2 else kwargs.get('bias')
            rows = x.numel() // w.shape[-1]
            self.counter.add('matmul', rows * w.shape[0] * w.shape[-1])
            if b is not None:
                self.counter.add('linear_bias', rows * w.shape[0])
        else:
            return func(*args, **kwargs)
        self.counter._in_sdpa += 1  # the kernels underneath are counted already
        try:
            return func(*args, **kwargs)
        finally:
            self.counter._in_sdpa -= 1


class _OpMode(TorchDispatchMode):

    def __init__(self, counter: FlopCounter) -> None:
        super().__init__()
        self.counter = counter

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.counter._in_sdpa:  # the kernel (or the math fallback) of an SDPA counted above
            return out
        packet = func.overloadpacket
        add = self.counter.add
        if packet in _MATMULS:
            a, b = (args[1], args[2]) if packet in _BIASED_MATMULS else (args[0], args[1])
            add('matmul', math.prod(a.shape) * b.shape[-1])
            if packet in _BIASED_MATMULS:
                add('linear_bias', out.numel())
        elif packet in _FUSED_LINEARS:  # oneDNN linear (x, weight [out, in], bias, ...), used by CPU fast paths
            x, weight, bias = args[0], args[1], args[2]
            rows = x.numel() // weight.shape[-1]
            add('matmul', rows * weight.shape[0] * weight.shape[-1])
            if bias is not None:
                add('linear_bias', rows * weight.shape[0])
        elif packet in _FUSED_CONVS:  # oneDNN conv + pointwise op: (x, weight, bias, ...) or binary (x, y, w, b)
            binary = 'binary' in func._overloadname
            weight, bias = (args[2], args[3]) if binary else (args[1], args[2])
            result = out[0] if isinstance(out, (tuple, list)) else out
            add('conv', result.numel() * math.prod(weight.shape[1:]))
            if bias is not None:
                add('conv_bias', result.numel())
        elif packet is aten.convolution:
            weight, bias, transposed = args[1], args[2], args[6]
            if transposed:  # every input element meets C_out/groups x kernel weights
                add('conv', args[0].numel() * math.prod(weight.shape[1:]))
            else:  # every output element needs C_in/groups x kernel multiply-adds
                add('conv', out.numel() * math.prod(weight.shape[1:]))
            if bias is not None:
                add('conv_bias', out.numel())
        elif packet in _BATCH_NORMS:
            add('batchnorm', 2 * args[0].numel())
        elif packet in _RELUS:
            add('relu', out.numel())
        return out


def count(model: nn.Module, data: Dict[str, Any]) -> Tuple[FlopCounter, str]:
    """Run ``model`` once on ``data`` under a :class:`FlopCounter`: in ``tensor`` mode (the network without
    post-processing), or in ``predict`` mode for models whose tensor mode needs ground truth (Sparse R-CNN's
    RoI head reads ``gt_instances``). Returns the counter and the mode used."""
    try:
        counter = FlopCounter(model)
        with torch.no_grad(), counter:
            model(data['inputs'], data['data_samples'], mode='tensor')
        return counter, 'tensor'
    except (AttributeError, KeyError) as tensor_error:  # a missing data-sample field
        counter = FlopCounter(model)
        try:
            with torch.no_grad(), counter:
                model(data['inputs'], data['data_samples'], mode='predict')
        except Exception:  # noqa: BLE001  report the first failure, it names the cause
            raise tensor_error
        return counter, 'predict'


def param_counts(model: nn.Module) -> Dict[str, int]:
    counts: Dict[str, int] = {'': sum(p.numel() for p in model.parameters())}
    for name, module in model.named_modules():
        if name:
            counts[name] = sum(p.numel() for p in module.parameters())
    return counts


def fmt_g(value: float) -> str:
    return f'{value / 1e9:.3f} G'


def fmt_m(value: float) -> str:
    return f'{value / 1e6:.3f} M'


def run(args: argparse.Namespace) -> Dict[str, Any]:
    cfg = load_config(args.config, args.cfg_options)
    scope = config_scope(cfg)
    if args.shape is None:
        shape = default_shape(cfg, scope)
    elif len(args.shape) == 1:
        shape = (args.shape[0], args.shape[0])
    elif len(args.shape) == 2:
        shape = tuple(args.shape)
    else:
        raise ValueError(f'--shape takes H or H W, got {args.shape}')
    devices = ['meta', 'cuda' if torch.cuda.is_available() else 'cpu'] if args.device == 'auto' else [
        args.device]
    # on meta the weights do not matter: skip their initialisation; a real forward gets a fresh, initialised model
    model = build_model(cfg, 'cpu', init_weights=devices[0] != 'meta')
    params = param_counts(model)
    counter, used, failure, mode = None, None, None, 'tensor'
    for device in devices:
        try:
            if device == 'meta':
                model = model.to('meta')
            elif next(model.parameters()).device.type == 'meta':
                model = build_model(cfg, device)
            else:
                model = model.to(device)
            data = make_batch(model, scope, shape, batch_size=1)
            (counter, mode), used = count(model, data), device
            break
        except Exception as e:  # noqa: BLE001  a data-dependent op meta tensors cannot run
            if device != 'meta' or args.device != 'auto':
                raise
            failure = f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'
    assert counter is not None
    input_shape = tuple(data['inputs'].shape)

    rows = []
    for name, module in model.named_modules():
        if not name or name.count('.') >= args.depth or name == 'data_preprocessor':
            continue
        rows.append(dict(module=name, type=type(module).__name__, params=params.get(name, 0),
                         flops=counter.module_total(name, args.macs_only),
                         attention=counter.per_module.get(name, {}).get('attention', 0)))
    total = counter.total(args.macs_only)
    result = dict(
        config=args.config, task=task_of(scope), input_shape=list(input_shape), device=used, forward_mode=mode,
        convention='macs-only' if args.macs_only else 'paper: MACs + bias, BatchNorm, ReLU element ops',
        flops=total, params=params[''], by_kind=dict(counter.totals), modules=rows,
        meta_fallback_reason=failure)

    split = ', '.join(f'{k} {fmt_g(counter.totals.get(k, 0))}'
                      for k in (MAC_KINDS if args.macs_only else MAC_KINDS + EXTRA_KINDS))
    lines = [
        '=' * 72,
        f'Config: {args.config}',
        f'Model: {type(model).__name__} ({task_of(scope)}), input {input_shape} (B x C x H x W, padded as '
        'the data preprocessor pads)',
        f'Counted on: {used}' + (f' (meta forward failed: {failure})' if failure else '')
        + ('' if mode == 'tensor' else f', forward mode {mode!r} (the tensor mode needs ground truth)'),
        f'Flops: {fmt_g(total)}   [{result["convention"]}; attention matmuls included]',
        f'  by kind: {split}',
        f'Params: {fmt_m(params[""])}',
    ]
    if rows:
        width = max(len(r['module']) for r in rows) + 2
        lines += ['-' * 72, f'{"module":<{width}}{"params":>14}{"flops":>14}{"of which attention":>22}']
        lines += [f'{r["module"]:<{width}}{fmt_m(r["params"]):>14}{fmt_g(r["flops"]):>14}'
                  f'{fmt_g(r["attention"]):>22}' for r in rows]
    if scope == 'mmdet' and hasattr(model, 'roi_head'):
        lines.append('Note: the RoI head count depends on the proposals / detections of this run '
                     '(random weights, random image).')
    lines.append('=' * 72)
    print('\n'.join(lines))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    return result


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Params and FLOPs (multiply-adds) of a wavevit_mm config',
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('config', help='config file')
    parser.add_argument('--shape', type=int, nargs='+', default=None,
                        help='input size: H, or H W (default: 224 classifiers, 800 1280 detectors, '
                        'crop_size segmentors)')
    parser.add_argument('--macs-only', action='store_true',
                        help='count multiply-adds only (no bias / BatchNorm / ReLU element ops)')
    parser.add_argument('--depth', type=int, default=1,
                        help='module depth of the per-module table (0: none; 1: backbone, neck, heads)')
    parser.add_argument('--device', choices=['auto', 'meta', 'cpu', 'cuda'], default='auto',
                        help='where the counting forward runs (auto: meta, else a real forward)')
    parser.add_argument('--json', help='also write the numbers to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    run(parse_args(argv))


if __name__ == '__main__':
    main()
