"""Helpers shared by the analysis and visualisation tools: build the model of any wavevit_mm config
(mmpretrain, mmdet or mmseg, picked by the config's ``default_scope``) and make synthetic batches for it; and
:func:`iter_dicts`, the one walker over nested config dicts.

Used by ``tools/analysis_tools/get_flops.py``, ``benchmark.py`` and ``tools/visualization/vis_wavelets.py``.
"""
import copy
import importlib
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn

#: the libraries a config's ``default_scope`` may name
SCOPES = ('mmpretrain', 'mmdet', 'mmseg')


def task_of(scope: str) -> str:
    """``'classification'``, ``'detection'`` or ``'segmentation'`` for a default scope."""
    return {'mmpretrain': 'classification', 'mmdet': 'detection', 'mmseg': 'segmentation'}[scope]


def load_config(path: str, cfg_options: Optional[dict] = None):
    """Read a config (a file, or a model name of the project's index; its ``custom_imports`` are imported) and
    apply ``--cfg-options``.

    Raises:
        FileNotFoundError: no such config file.
        ValueError: an unknown model name (the closest names are listed).
    """
    from mmengine.config import Config

    from ..apis.model_hub import resolve_config
    cfg = Config.fromfile(resolve_config(path))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def config_scope(cfg) -> str:
    """The config's ``default_scope``; an error when it names none of mmpretrain / mmdet / mmseg."""
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise ValueError(f'the config must set default_scope to one of {SCOPES}, got {scope!r}')
    return scope


def iter_dicts(node: Any) -> Iterator[dict]:
    """Every dict in a nested config (dicts, lists and tuples), a dict before the ones inside it.

    Callers may change the values of a dict they are given (the walk then enters the new values).
    """
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from iter_dicts(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from iter_dicts(value)


def _is_pretrained(init_cfg: Any) -> bool:
    return isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained'


def strip_pretrained(model_cfg: dict) -> None:
    """Drop ``Pretrained`` init_cfgs and ``pretrained`` paths (the analysis tools need no checkpoint files)."""
    for node in iter_dicts(model_cfg):
        init_cfg = node.get('init_cfg')
        if _is_pretrained(init_cfg):
            node['init_cfg'] = None
        elif isinstance(init_cfg, list):
            node['init_cfg'] = [c for c in init_cfg if not _is_pretrained(c)]
        if isinstance(node.get('pretrained'), str):
            node['pretrained'] = None


def build_model(cfg, device: str = 'cpu', init_weights: bool = True) -> nn.Module:
    """Build ``cfg.model`` with the registry of the config's library, in eval mode, on ``device``.

    SyncBN becomes BN (one process, possibly no CUDA: mmengine's ``revert_sync_batchnorm``, as its Runner does
    for one process). With ``init_weights`` (default) the modules get the config's initialisation except
    pretrained checkpoints (``Pretrained`` init_cfgs are dropped), so heads start from their usual priors (e.g.
    Sparse R-CNN's whole-image proposals) with random weights, no file needed; without it they keep their
    constructors' weights.
    """
    import wavevit_mm  # noqa: F401  (registers WaveViT and the head)
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    scope = config_scope(cfg)
    init_default_scope(scope)
    registry = importlib.import_module(f'{scope}.registry').MODELS
    importlib.import_module(f'{scope}.models')  # registers the library's models
    model_cfg = copy.deepcopy(cfg.model)
    strip_pretrained(model_cfg)
    model = revert_sync_batchnorm(registry.build(model_cfg))
    if init_weights:
        from mmengine.logging import MMLogger
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel('WARNING')  # mmengine logs every initialised parameter at INFO
        try:
            model.init_weights()
        finally:
            logger.setLevel(level)
    return model.to(device).eval()


def _data_sample(scope: str, shape: Tuple[int, int], with_gt: bool, num_classes: int,
                 with_mask: bool, generator: torch.Generator):
    H, W = shape
    meta = dict(img_shape=(H, W), ori_shape=(H, W), scale_factor=(1., 1.))
    if scope == 'mmpretrain':
        from mmpretrain.structures import DataSample
        sample = DataSample(metainfo=meta)
        if with_gt:
            sample.set_gt_label(int(torch.randint(num_classes, (1, ), generator=generator)))
        return sample
    if scope == 'mmdet':
        from mmdet.structures import DetDataSample
        from mmengine.structures import InstanceData
        sample = DetDataSample(metainfo=meta)
        if with_gt:
            n = 3
            xy = torch.rand(n, 2, generator=generator) * torch.tensor([W * 0.5, H * 0.5])
            wh = torch.rand(n, 2, generator=generator) * torch.tensor([W * 0.4, H * 0.4]) + 16
            gt = InstanceData(bboxes=torch.cat([xy, xy + wh], dim=1),
                              labels=torch.randint(num_classes, (n, ), generator=generator))
            if with_mask:
                from mmdet.structures.mask import BitmapMasks
                masks = torch.zeros(n, H, W, dtype=torch.uint8)
                for i, (x1, y1, x2, y2) in enumerate(gt.bboxes.round().long().tolist()):
                    masks[i, y1:y2, x1:x2] = 1
                gt.masks = BitmapMasks(masks.numpy(), H, W)
            sample.gt_instances = gt
            sample.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0).long())
        return sample
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData
    sample = SegDataSample(metainfo=meta)
    if with_gt:
        sample.gt_sem_seg = PixelData(data=torch.randint(num_classes, (1, H, W), generator=generator))
    return sample


def _num_classes(model: nn.Module, default: int = 10) -> int:
    for name in ('head', 'decode_head', 'roi_head', 'bbox_head'):
        sub = getattr(model, name, None)
        if sub is None:
            continue
        for attr in ('num_classes', ):
            if isinstance(getattr(sub, attr, None), int):
                return getattr(sub, attr)
        bbox_head = getattr(sub, 'bbox_head', None)
        if bbox_head is not None:
            head = bbox_head[-1] if isinstance(bbox_head, nn.ModuleList) else bbox_head
            if isinstance(getattr(head, 'num_classes', None), int):
                return head.num_classes
    return default


def has_mask_head(model: nn.Module) -> bool:
    roi_head = getattr(model, 'roi_head', None)
    return bool(roi_head is not None and getattr(roi_head, 'with_mask', False))


def make_batch(model: nn.Module, scope: str, shape: Sequence[int], batch_size: int = 1,
               with_gt: bool = False, seed: int = 0) -> Dict[str, Any]:
    """A synthetic batch run through the model's data preprocessor: ``dict(inputs=..., data_samples=...)``.

    Images are uniform random noise in [0, 255]; with ``with_gt`` every sample also carries random ground
    truth fit for a training step (a label; 3 boxes, labels and box masks; or a random label map).
    """
    g = torch.Generator().manual_seed(seed)
    H, W = int(shape[0]), int(shape[1])
    num_classes = _num_classes(model)
    with_mask = has_mask_head(model)
    inputs: List[torch.Tensor] = [torch.randint(0, 256, (3, H, W), generator=g, dtype=torch.uint8)
                                  for _ in range(batch_size)]
    samples = [_data_sample(scope, (H, W), with_gt, num_classes, with_mask, g) for _ in range(batch_size)]
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples), with_gt)


def default_shape(cfg, scope: str) -> Tuple[int, int]:
    """The input size a paper reports FLOPs at: 224 for classifiers (384 when the config's test
    pipeline crops 384), 1280 x 800 for detectors, 512 x 512 for segmentors (height, width)."""
    if scope == 'mmdet':
        return (800, 1280)
    if scope == 'mmseg':
        crop = cfg.get('crop_size')
        return tuple(crop) if crop else (512, 512)
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader') or {}
    for step in (loader.get('dataset') or {}).get('pipeline') or []:
        if step.get('type') == 'CenterCrop':
            size = step.get('crop_size')
            if isinstance(size, int):
                return (size, size)
            if isinstance(size, (tuple, list)) and len(size) == 2:
                return (int(size[1]), int(size[0]))  # mmpretrain's crop_size is (w, h)
    return (224, 224)
