#!/usr/bin/env python
"""Parameters and FLOPs of a wavevit_mm config's model (classification, detection or segmentation).

Usage::

    python tools/analysis_tools/get_flops.py CONFIG [--shape H [W]] [--macs-only] [--depth N]
                                                    [--device {auto,meta,cpu,cuda}] [--json OUT]
                                                    [--cfg-options k=v ...]

torch's ``FlopCounterMode`` (``torch.utils.flop_counter``) counts one forward, per op and per module, with the
paper's convention as its formulas:

- multiply-adds (MACs) of every convolution, linear layer and matrix product (``mm``, ``bmm``, ...);
- the attention products ``q k^T`` and ``attn v`` of ``F.scaled_dot_product_attention``: ``L * S * (E + Ev)``
  per batch and head, whatever kernel computes them (torch counts nothing for its fused CPU kernel, and on the
  ``meta`` device SDPA decomposes into plain ``bmm``: during the count, ``F.linear`` and SDPA run as one op each);
- one operation per output element of every bias add (convolution, linear), two per BatchNorm element, one per
  ReLU element (``--macs-only`` leaves these out). LayerNorm, GELU, softmax, pooling, interpolation and
  element-wise additions are not counted.

The token-labeling classifiers come out at 4.652 / 7.206 / 14.771 G at 224 and 15.104 / 23.453 / 47.478 G at 384
(S / B / L): the paper's 4.7 / 7.2 / 14.8 and 15.1 / 23.4 / 47.5. The model (random weights, initialised as the
config says, pretrained checkpoints not loaded) runs once on a synthetic batch of one image in its ``tensor``
mode (``predict`` where that needs ground truth, e.g. Sparse R-CNN). ``--device auto`` runs it on the ``meta``
device (shapes only: a fraction of a second); models with data-dependent steps (the NMS of detectors) run a real
forward on CPU/GPU instead, so two-stage detectors' RoI heads count the RoIs of that run. Default shapes: the
test pipeline's ``CenterCrop`` (else 224) for classifiers, 800 x 1280 for detectors, ``crop_size`` for segmentors.
"""
import argparse
import json
import math
from collections import Counter, defaultdict
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from wavevit_mm.utils.model_utils import build_model, config_scope, default_shape, load_config, make_batch, task_of

MAC_KINDS = ('conv', 'matmul', 'attention')
EXTRA_KINDS = ('conv_bias', 'linear_bias', 'batchnorm', 'relu')


def sdpa_macs(q, k, v, *args, **kwargs) -> int:
    """MACs of ``softmax(q k^T) v`` from the shapes: ``L x S x E`` (``q k^T``) + ``L x S x Ev`` (``attn v``) per
    batch and head."""
    return math.prod(torch.broadcast_shapes(q[:-2], k[:-2])) * q[-2] * k[-2] * (q[-1] + v[-1])


if not hasattr(torch.ops.wavevit_flops, 'sdpa'):  # once per process: F.linear and SDPA as opaque ops

    @torch.library.custom_op('wavevit_flops::linear', mutates_args=())
    def _linear(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
        return F.linear(input, weight, bias)

    @torch.library.custom_op('wavevit_flops::sdpa', mutates_args=())
    def _sdpa(query: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor] = None, dropout_p: float = 0.,
              is_causal: bool = False, scale: Optional[float] = None, enable_gqa: bool = False) -> Tensor:
        return F.scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, is_causal, scale=scale,
                                              enable_gqa=enable_gqa)

    _linear.register_fake(lambda input, weight, bias=None: input.new_empty(*input.shape[:-1], weight.shape[0]))
    _sdpa.register_fake(lambda query, key, value, *_, **__: query.new_empty(
        *torch.broadcast_shapes(query.shape[:-2], key.shape[:-2]), query.shape[-2], value.shape[-1]))
LINEAR, SDPA = torch.ops.wavevit_flops.linear, torch.ops.wavevit_flops.sdpa
_AS_ONE_OP = {F.linear: LINEAR, F.scaled_dot_product_attention: SDPA}


class _AsOneOp(TorchFunctionMode):
    """Runs ``F.linear`` and ``F.scaled_dot_product_attention`` as the single ops ``LINEAR`` and ``SDPA``."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return _AS_ONE_OP.get(func, func)(*args, **(kwargs or {}))


def _elements(*_, out_shape, **__) -> int:
    return math.prod(out_shape)


aten = torch.ops.aten
#: op -> (kind, formula over the shapes of its arguments): the multiply-adds, then the element-wise terms
MACS = {
    LINEAR: ('matmul', lambda x, w, *_, **__: math.prod(x[:-1]) * w[0] * w[1]),
    aten.mm: ('matmul', lambda a, b, *_, **__: a[0] * a[1] * b[1]),
    aten.addmm: ('matmul', lambda c, a, b, *_, **__: a[0] * a[1] * b[1]),
    aten.bmm: ('matmul', lambda a, b, *_, **__: a[0] * a[1] * a[2] * b[2]),
    aten.baddbmm: ('matmul', lambda c, a, b, *_, **__: a[0] * a[1] * a[2] * b[2]),
    # every output element takes C_in / groups x kernel MACs; transposed: every input element
    aten.convolution: ('conv', lambda x, w, b, s, p, d, t, *_, out_shape, **__: math.prod(x if t else out_shape)
                       * math.prod(w[1:])),
    SDPA: ('attention', sdpa_macs),
}
EXTRAS = {
    LINEAR: ('linear_bias', lambda x, w, b=None, *_, **__: math.prod(x[:-1]) * w[0] if b else 0),
    aten.addmm: ('linear_bias', _elements),
    aten.baddbmm: ('linear_bias', _elements),
    aten.convolution: ('conv_bias', lambda x, w, b, *_, out_shape, **__: math.prod(out_shape) if b else 0),
    **{bn: ('batchnorm', lambda x, *_, **__: 2 * math.prod(x)) for bn in (
        aten.native_batch_norm, aten._native_batch_norm_legit, aten._native_batch_norm_legit_no_training,
        aten._native_batch_norm_legit_functional, aten.cudnn_batch_norm, aten.miopen_batch_norm)},
    aten.relu: ('relu', _elements),
    aten.relu_: ('relu', _elements),
}


def count(model: nn.Module, data: Dict[str, Any]) -> Tuple[Dict[str, Counter], str]:
    """Run ``model`` once on ``data`` under two FlopCounterModes (MACS, EXTRAS; none of torch's own formulas,
    which count 2 per MAC): in ``tensor`` mode, or in ``predict`` mode where that needs ground truth (Sparse
    R-CNN's RoI head reads ``gt_instances``). Returns the counts by kind of every module that ran (names as in
    ``model.named_modules()``, ``''`` the whole model) and the mode used."""
    def forward(mode: str):
        counters = [(FlopCounterMode(display=False, custom_mapping={
            **dict.fromkeys(flop_registry, lambda *_, **__: 0), **{op: f for op, (_, f) in table.items()}}), table)
            for table in (MACS, EXTRAS)]
        with torch.no_grad(), _AsOneOp(), counters[0][0], counters[1][0]:
            model(data['inputs'], data['data_samples'], mode=mode)
        return counters

    try:
        mode, counters = 'tensor', forward('tensor')
    except (AttributeError, KeyError) as tensor_error:  # a missing data-sample field
        try:
            mode, counters = 'predict', forward('predict')
        except Exception:  # noqa: BLE001  report the first failure, it names the cause
            raise tensor_error
    root, counts = type(model).__name__, defaultdict(Counter)
    for counter, table in counters:
        for name, ops in counter.get_flop_counts().items():
            for op, n in ops.items():
                if name != 'Global' and n:
                    counts[name[len(root) + 1:]][table[op][0]] += n
    return counts, mode


def module_counts(counts: Dict[str, Counter], module: nn.Module, name: str) -> Counter:
    """The counts of a module: its own if it ran, else its children's (a ModuleList never runs)."""
    if name in counts:
        return counts[name]
    return sum((module_counts(counts, c, f'{name}.{n}') for n, c in module.named_children()), Counter())


def run(args: argparse.Namespace) -> Dict[str, Any]:
    from mmengine.analysis import parameter_count
    cfg = load_config(args.config, args.cfg_options)
    scope = config_scope(cfg)
    if args.shape is not None and len(args.shape) not in (1, 2):
        raise ValueError(f'--shape takes H or H W, got {args.shape}')
    shape = default_shape(cfg, scope) if args.shape is None else (args.shape[0], args.shape[-1])
    devices = ['meta', 'cuda' if torch.cuda.is_available() else 'cpu'] if args.device == 'auto' else [args.device]
    # on meta the weights do not matter: skip their initialisation; a real forward gets a fresh, initialised model
    model = build_model(cfg, 'cpu', init_weights=devices[0] != 'meta')
    params, fallback = parameter_count(model), None
    for device in devices:
        try:
            model = build_model(cfg, device) if next(model.parameters()).is_meta else model.to(device)
            data = make_batch(model, scope, shape, batch_size=1)
            counts, mode = count(model, data)
            break
        except Exception as e:  # noqa: BLE001  a data-dependent op (e.g. NMS) that meta tensors cannot run
            if device != 'meta' or args.device != 'auto':
                raise
            fallback = f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'
    kinds = MAC_KINDS if args.macs_only else MAC_KINDS + EXTRA_KINDS
    rows = [dict(module=name, type=type(module).__name__, params=params[name],
                 flops=sum(module_counts(counts, module, name)[k] for k in kinds),
                 attention=module_counts(counts, module, name)['attention'])
            for name, module in model.named_modules()
            if name and name.count('.') < args.depth and name != 'data_preprocessor']
    result = dict(
        config=args.config, task=task_of(scope), input_shape=list(data['inputs'].shape), device=device,
        forward_mode=mode,
        convention='macs-only' if args.macs_only else 'paper: MACs + bias, BatchNorm, ReLU element ops',
        flops=sum(counts[''][k] for k in kinds), params=params[''], by_kind=dict(counts['']), modules=rows,
        meta_fallback_reason=fallback)

    def g(value: float) -> str:
        return f'{value / 1e9:.3f} G'

    lines = [
        '=' * 72, f'Config: {args.config}',
        f'Model: {type(model).__name__} ({task_of(scope)}), input {tuple(result["input_shape"])} (B x C x H x W, '
        'padded as the data preprocessor pads)',
        f'Counted on: {device}' + (' (a real forward: the model has data-dependent steps, e.g. NMS, that the meta '
                                   'device cannot run)' if fallback else '')
        + ('' if mode == 'tensor' else f', forward mode {mode!r} (the tensor mode needs ground truth)'),
        f'Flops: {g(result["flops"])}   [{result["convention"]}; attention matmuls included]',
        '  by kind: ' + ', '.join(f'{k} {g(counts[""][k])}' for k in kinds), f'Params: {params[""] / 1e6:.3f} M']
    if rows:
        width = max(len(r['module']) for r in rows) + 2
        lines += ['-' * 72, f'{"module":<{width}}{"params":>14}{"flops":>14}{"of which attention":>22}']
        lines += [f'{r["module"]:<{width}}{r["params"] / 1e6:>12.3f} M{g(r["flops"]):>14}{g(r["attention"]):>22}'
                  for r in rows]
    if scope == 'mmdet' and hasattr(model, 'roi_head'):
        lines.append('Note: the RoI head count depends on the proposals / detections of this run '
                     '(random weights, random image).')
    print('\n'.join(lines + ['=' * 72]))
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
