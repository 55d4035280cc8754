"""Token labeling: the label-map transforms keep maps and pixels aligned, the targets and the loss compute what
they should, MixToken's un-mixing puts every output back where it came from, and the classifier trains."""
import os
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from wavevit_mm.utils.paths import PROJECT_ROOT as REPO_ROOT
from wavevit_mm.testing import TINY_ARCH

import wavevit_mm  # noqa: F401

K = 10  # classes in these fixtures
QUAD_CLASS = {(0, 0): 1, (0, 1): 2, (1, 0): 3, (1, 1): 4}  # (top/bottom, left/right) -> class
QUAD_COLOR = {1: (255, 0, 0), 2: (0, 255, 0), 3: (0, 0, 255), 4: (255, 255, 255)}  # RGB
IMG_H, IMG_W, MAP_H, MAP_W = 48, 64, 6, 8  # non-square, so an x / y mix-up shows


pytestmark = pytest.mark.usefixtures('one_torch_thread', 'mmpretrain_scope')


def quadrant_map():
    """[2, 5, MAP_H, MAP_W] float16 top-5 map: the cell's quadrant class with score 10, classes 5-8 with 1."""
    scores = np.ones((5, MAP_H, MAP_W), np.float32)
    index = np.zeros((5, MAP_H, MAP_W), np.float32)
    for y in range(MAP_H):
        for x in range(MAP_W):
            scores[0, y, x] = 10.
            index[:, y, x] = [QUAD_CLASS[(y >= MAP_H // 2, x >= MAP_W // 2)], 5, 6, 7, 8]
    return torch.from_numpy(np.stack([scores, index])).half()


def make_tree(root, label_root=None, n_per_class=1):
    """``root/train/<wnid>/*.png`` quadrant images (two classes), ``root/meta/train.txt``, and optionally the
    label maps ``label_root/<wnid>/<stem>.pt``."""
    from PIL import Image
    img = np.zeros((IMG_H, IMG_W, 3), np.uint8)
    for (ty, tx), c in QUAD_CLASS.items():
        img[ty * IMG_H // 2:(ty + 1) * IMG_H // 2, tx * IMG_W // 2:(tx + 1) * IMG_W // 2] = QUAD_COLOR[c]
    paths, lines = [], []
    for label, wnid in enumerate(('n01440764', 'n01443537')):
        os.makedirs(osp.join(root, 'train', wnid), exist_ok=True)
        for i in range(n_per_class):
            path = osp.join(root, 'train', wnid, f'{wnid}_{i}.png')
            Image.fromarray(img).save(path)
            paths.append(path)
            lines.append(f'{wnid}/{wnid}_{i}.png {label}\n')
            if label_root is not None:
                os.makedirs(osp.join(label_root, wnid), exist_ok=True)
                torch.save(quadrant_map(), osp.join(label_root, wnid, f'{wnid}_{i}.pt'))
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)  # ImageNet layout: meta/train.txt "path label" lines
    with open(osp.join(root, 'meta', 'train.txt'), 'w') as f:
        f.writelines(lines)
    return paths


def build_pipeline(cfgs):
    from mmengine.dataset import Compose
    from mmpretrain.registry import TRANSFORMS
    return Compose([TRANSFORMS.build(c) if isinstance(c, dict) else c for c in cfgs])


def color_class(pixel):
    for c, col in QUAD_COLOR.items():
        if np.abs(pixel.astype(int) - np.array(col[::-1])).max() < 40:  # images are BGR in the pipeline
            return c
    return None


def test_targets_of_the_whole_image_are_the_map():
    from wavevit_mm.models.losses import token_label_targets
    tl = quadrant_map().float()[None]
    cls_t, dense_t = token_label_targets(tl, torch.tensor([[0., 0., 1., 1.]]), K, (MAP_H, MAP_W), smoothing=0.1)
    logits = torch.zeros(K)
    logits[[5, 6, 7, 8]] = 1.
    for y, x in [(0, 0), (0, 7), (5, 0), (5, 7), (2, 3)]:
        expect = logits.clone()
        expect[QUAD_CLASS[(y >= 3, x >= 4)]] = 10.
        torch.testing.assert_close(dense_t[0, y * MAP_W + x], F.softmax(expect, 0) * 0.9 + 0.01)
    # the class target is the softmax of the map's average over the box
    whole = torch.zeros(K)
    whole[[5, 6, 7, 8]] = 1.
    whole[[1, 2, 3, 4]] = 10. / 4
    torch.testing.assert_close(cls_t[0], F.softmax(whole, 0) * 0.9 + 0.01)
    assert torch.allclose(dense_t.sum(-1), torch.ones(1, MAP_H * MAP_W))


def test_crop_and_flip_move_targets_like_pixels(tmp_path):
    from wavevit_mm.models.losses import token_label_targets
    (path, _) = make_tree(str(tmp_path / 'data'), str(tmp_path / 'labels'))
    pipe = build_pipeline([
        dict(type='LoadImageFromFile'),
        dict(type='LoadTokenLabel', label_root=str(tmp_path / 'labels'), num_classes=K),
        dict(type='TokenLabelRandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.0), backend='pillow',
             interpolation='bilinear'),
        dict(type='TokenLabelRandomFlip', prob=0.5, direction=['horizontal', 'vertical']),
    ])
    np.random.seed(0)
    checked, flips = 0, set()
    for _ in range(30):
        out = pipe(dict(img_path=path))
        img, box = out['img'], torch.as_tensor(out['token_label_box'])
        flips.add((bool(box[0] > box[2]), bool(box[1] > box[3])))
        _, dense_t = token_label_targets(torch.as_tensor(out['token_label'])[None], box[None], K, (4, 4))
        cls_of_cell = dense_t[0].argmax(-1).view(4, 4)
        for i in range(4):
            for j in range(4):
                # a cell whose pixels all have one quadrant's colour must get that quadrant's class
                probes = [img[i * 8 + dy, j * 8 + dx] for dy in (1, 4, 6) for dx in (1, 4, 6)]
                classes = {color_class(p) for p in probes}
                if len(classes) == 1 and None not in classes:
                    assert int(cls_of_cell[i, j]) == classes.pop(), (i, j, box)
                    checked += 1
    assert checked > 100
    assert flips == {(False, False), (True, False), (False, True)}


def test_fixed_crop_and_flip(tmp_path):
    from wavevit_mm.datasets import TokenLabelRandomResizedCrop

    class RightHalf(TokenLabelRandomResizedCrop):
        def rand_crop_params(self, img):
            return 0, 32, 48, 32  # offset_h, offset_w, height, width: the right half of the image

    (path, _) = make_tree(str(tmp_path / 'data'), str(tmp_path / 'labels'))
    pipe = build_pipeline([
        dict(type='LoadImageFromFile'),
        dict(type='LoadTokenLabel', label_root=str(tmp_path / 'labels')),
        RightHalf(scale=32),
        dict(type='TokenLabelRandomFlip', prob=1.0, direction='horizontal'),
    ])
    out = pipe(dict(img_path=path))
    np.testing.assert_allclose(out['token_label_box'], [1.0, 0.0, 0.5, 1.0])
    assert out['token_label'].shape == (2, 5, MAP_H, MAP_W)


def test_missing_label_map_names_the_file(tmp_path):
    paths = make_tree(str(tmp_path / 'data'), str(tmp_path / 'labels'))
    os.remove(osp.join(tmp_path, 'labels', 'n01443537', 'n01443537_0.pt'))
    pipe = build_pipeline([dict(type='LoadImageFromFile'),
                           dict(type='LoadTokenLabel', label_root=str(tmp_path / 'labels'))])
    pipe(dict(img_path=paths[0]))
    with pytest.raises(FileNotFoundError, match='token label map not found: .*n01443537/n01443537_0.pt'):
        pipe(dict(img_path=paths[1]))
    missing_root = build_pipeline([dict(type='LoadTokenLabel', label_root=str(tmp_path / 'nowhere'))])
    with pytest.raises(FileNotFoundError, match='token label folder not found: .*nowhere'):
        missing_root(dict(img_path=paths[0]))
    torch.save(torch.zeros(5, 6, 8), osp.join(tmp_path, 'labels', 'n01440764', 'n01440764_0.pt'))
    with pytest.raises(ValueError, match=r'\[2, k, H, W\]'):
        pipe(dict(img_path=paths[0]))


def test_token_label_loss_is_weighted_soft_cross_entropy():
    from wavevit_mm.models.losses import TokenLabelCrossEntropy
    B, N = 3, 4
    cls_logits, dense_logits = torch.randn(B, K), torch.randn(B, N, K)
    cls_t, dense_t = torch.rand(B, K).softmax(-1), torch.rand(B, N, K).softmax(-1)
    losses = TokenLabelCrossEntropy(cls_weight=1.0, dense_weight=0.5)(cls_logits, dense_logits, cls_t, dense_t)
    expect_cls = -(cls_t * cls_logits.log_softmax(-1)).sum(-1).mean()
    expect_dense = -(dense_t * dense_logits.log_softmax(-1)).sum(-1).mean()
    torch.testing.assert_close(losses['loss_cls'], expect_cls)
    torch.testing.assert_close(losses['loss_dense'], 0.5 * expect_dense)
    # with one-hot targets it is ordinary cross entropy
    labels = torch.tensor([1, 4, 2])
    ce = TokenLabelCrossEntropy(1.0, 0.0)(cls_logits, None, F.one_hot(labels, K).float(), None)['loss_cls']
    torch.testing.assert_close(ce, F.cross_entropy(cls_logits, labels))


def test_mixtoken_unmixing_restores_positions():
    from wavevit_mm.models.classifiers import mix_stem_tokens, rand_token_box, unmix_tokens
    B, cell, grid = 4, 8, (3, 4)
    stem = (grid[0] * cell - 5, grid[1] * cell)  # a ragged last row of cells, as for sizes not divisible by 32
    yy, xx = torch.meshgrid(torch.arange(stem[0]), torch.arange(stem[1]), indexing='ij')
    tokens = torch.stack([torch.arange(B).view(B, 1, 1).expand(B, *stem).float(),
                          yy.expand(B, *stem).float(), xx.expand(B, *stem).float()], -1).reshape(B, -1, 3)
    rng = np.random.default_rng(0)
    boxes = [rand_token_box(grid, float(rng.beta(1, 1)), rng) for _ in range(20)] + [(0, 1, 3, 3)]
    assert any(y2 > y1 and x2 > x1 for y1, x1, y2, x2 in boxes)
    for box in boxes:
        y1, x1, y2, x2 = box
        assert 0 <= y1 <= y2 <= grid[0] and 0 <= x1 <= x2 <= grid[1]
        mixed = mix_stem_tokens(tokens, stem, box, cell).reshape(B, *stem, 3)
        # stand-in for the network: the last-stage output of a cell is computed at the cell's first stem token
        out = mixed[:, ::cell, ::cell].reshape(B, -1, 3)
        inside = torch.zeros(grid, dtype=torch.bool)
        inside[y1:y2, x1:x2] = True
        src = out[..., 0].view(B, *grid)
        own = torch.arange(B).float().view(B, 1, 1).expand(B, *grid)
        assert torch.equal(src[:, inside], own.flip(0)[:, inside])  # mixed: other image inside the box
        assert torch.equal(src[:, ~inside], own[:, ~inside])
        restored = unmix_tokens(out, grid, box).view(B, *grid, 3)
        assert torch.equal(restored[..., 0], own)  # every output back with its own image...
        gy, gx = torch.meshgrid(torch.arange(grid[0]) * cell, torch.arange(grid[1]) * cell, indexing='ij')
        assert torch.equal(restored[..., 1], gy.float().expand(B, *grid))  # ... at its own position
        assert torch.equal(restored[..., 2], gx.float().expand(B, *grid))


def tiny_tokenlabel_cfg(label_root, data_root):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'classification', 'wavevit-s_8xb128_in1k-tokenlabel.py'))
    cfg.model.backbone.arch = dict(TINY_ARCH)
    cfg.model.head.update(num_classes=K, in_channels=64, num_heads=4)
    pipeline = cfg.train_dataloader.dataset.pipeline
    pipeline[1].label_root = label_root
    pipeline[1].num_classes = K
    pipeline[2].scale = 64
    return cfg, dict(type='ImageNet', data_root=data_root, split='train', pipeline=pipeline)


def test_classifier_trains_with_label_maps_and_mixtoken(tmp_path):
    from mmengine.dataset import pseudo_collate
    from mmpretrain.registry import DATASETS, MODELS
    make_tree(str(tmp_path / 'data'), str(tmp_path / 'labels'), n_per_class=2)
    cfg, ds_cfg = tiny_tokenlabel_cfg(str(tmp_path / 'labels'), str(tmp_path / 'data'))
    dataset = DATASETS.build(ds_cfg)
    assert len(dataset) == 4
    model_cfg = dict(cfg.model, data_preprocessor=dict(cfg.data_preprocessor, num_classes=K))
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.train()
    np.random.seed(3)
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(4)]), training=True)
    assert data['inputs'].shape == (4, 3, 64, 64)
    assert data['data_samples'][0].token_label.shape == (2, 5, MAP_H, MAP_W)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_dense'}
    total = losses['loss_cls'] + losses['loss_dense']
    assert torch.isfinite(total)
    total.backward()
    assert model.head.aux_fc.weight.grad.abs().sum() > 0 and model.backbone.patch_embed1.proj.weight.grad is not None
    # samples without maps fall back to the (smoothed) ground truth for every token
    for s in data['data_samples']:
        del s.token_label
        del s.token_label_box
    assert torch.isfinite(model(**data, mode='loss')['loss_dense'])
    # inference is ImageClassifier's: head + 0.5 * max over tokens of the aux head
    model.eval()
    with torch.no_grad():
        preds = model(data['inputs'], data['data_samples'], mode='predict')
    assert preds[0].pred_score.shape == (K, )


def test_classifier_needs_the_aux_head():
    from mmpretrain.registry import MODELS
    with pytest.raises(ValueError, match='aux_head=True'):
        MODELS.build(dict(type='TokenLabelImageClassifier',
                          backbone=dict(type='WaveViT', arch=TINY_ARCH, out_indices=(3, ), final_norm=False),
                          head=dict(type='WaveViTClsHead', num_classes=K, in_channels=64, num_heads=4)))
