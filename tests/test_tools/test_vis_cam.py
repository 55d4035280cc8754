"""tools/visualization/vis_cam.py: Grad-CAM through pytorch-grad-cam on Wave-ViT (the S token-labeling config with
the tiny arch, in process). The token -> map reshape matches the backbone's own maps on a non-square input, the
figure is looked at, and layers without a map are refused with a message."""
import os.path as osp
import re

import numpy as np
import pytest
import torch
from PIL import Image

from wavevit_mm.testing import TINY_ARCH
from wavevit_mm.testing.figures import check_png
from wavevit_mm.utils.paths import CONFIG_DIR, PROJECT_ROOT, load_script

DEMO_IMAGE = osp.join(PROJECT_ROOT, 'demo', 'demo.jpg')
TINY_CONFIG = (f"_base_ = {osp.join(CONFIG_DIR, 'classification', 'wavevit-s_8xb128_in1k-tokenlabel.py')!r}\n"
               f"model = dict(backbone=dict(arch={dict(_delete_=True, **TINY_ARCH)!r}), "
               "head=dict(in_channels=64, num_heads=4))\n")
#: a non-square network input: the center crop is 160 wide and 96 high
NON_SQUARE = ['--cfg-options', 'test_dataloader.dataset.pipeline.2.crop_size=(160,96)']

pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(scope='module')
def vis_cam():
    return load_script('tools/visualization/vis_cam.py')


@pytest.fixture
def config(tmp_path):
    path = tmp_path / 'tiny_cls.py'
    path.write_text(TINY_CONFIG)
    return str(path)


def test_reshape_matches_the_backbone_maps(vis_cam):
    """The last block's tokens, reshaped by the tool, are the backbone's stage-4 map (no final norm)."""
    from wavevit_mm import WaveViT
    backbone = WaveViT(arch=TINY_ARCH, out_indices=(2, 3), final_norm=False).eval()
    x = torch.randn(1, 3, 80, 144)
    captured = {}
    backbone.block4[-1].register_forward_hook(lambda m, i, o: captured.setdefault('tokens', o))
    with torch.no_grad():
        maps = backbone(x)
    grids = vis_cam.stage_grids(80, 144)
    assert grids == [(20, 36), (10, 18), (5, 9), (3, 5)]
    torch.testing.assert_close(vis_cam.tokens_to_map(captured['tokens'], grids), maps[1], rtol=0, atol=0)
    assert vis_cam.tokens_to_map(maps[0], grids) is maps[0]  # maps pass unchanged
    with pytest.raises(ValueError, match=r'no stage token map of this input'):
        vis_cam.tokens_to_map(torch.zeros(1, 7, 64), grids)
    with pytest.raises(ValueError, match=r'shape \(1, 10\) is no stage token map'):  # e.g. a head's logits
        vis_cam.tokens_to_map(torch.zeros(1, 10), grids)


def test_grad_cam_figure_on_a_non_square_input(vis_cam, config, tmp_path, capsys):
    out = tmp_path / 'cam.png'
    assert vis_cam.main([DEMO_IMAGE, config, '--out-file', str(out), *NON_SQUARE]) == 0
    printed = capsys.readouterr().out
    assert re.search(r'^gradcam for class \d+ .+ \(p 0\.\d{3}\) at backbone\.block4\.0 \| demo\.jpg \| '
                     r'RANDOM weights \(no --checkpoint\)$', printed.splitlines()[0])
    assert 'map 160 x 96 (from 24 x 40, 12 x 20, 6 x 10, 3 x 5 stage grids)' in printed
    assert check_png(str(out)) == (800, 460)
    figure = np.asarray(Image.open(out).convert('RGB')).astype(int)
    # two panels side by side: the network input, and the same input under the colour map (which differs)
    left, right = figure[100:400, 30:380], figure[100:400, 420:770]
    assert left.std() > 20 and right.std() > 20
    assert np.abs(left - right).mean() > 10


def test_grad_cam_for_a_chosen_class_and_layer_with_checkpoint(vis_cam, config, tmp_path, capsys):
    from mmpretrain import get_model
    ckpt = tmp_path / 'tiny.pth'
    torch.save({'state_dict': get_model(config).state_dict()}, ckpt)
    out = tmp_path / 'cam.png'
    assert vis_cam.main([DEMO_IMAGE, config, '--checkpoint', str(ckpt), '--target-category', '281',
                         '--target-layers', 'backbone.block3.1', '--method', 'GradCAM++', '--out-file', str(out)]) == 0
    printed = capsys.readouterr().out
    assert f'Loads checkpoint by local backend from path: {ckpt}' in printed  # mmengine's load_checkpoint
    first = next(line for line in printed.splitlines() if line.startswith('GradCAM++'))
    assert first.startswith('GradCAM++ for class 281 tabby, tabby cat (p ') and 'at backbone.block3.1' in first
    assert first.endswith(f'| demo.jpg | {ckpt}')
    assert check_png(str(out)) == (800, 460)


def test_layers_without_a_map_and_missing_files_are_refused(vis_cam, config, tmp_path, capsys):
    assert vis_cam.main([DEMO_IMAGE, config, '--target-layers', 'head.cls_block', '--out-file',
                         str(tmp_path / 'x.png')]) == 1
    assert 'no stage token map of this input' in capsys.readouterr().err
    assert vis_cam.main([DEMO_IMAGE, config, '--target-layers', 'backbone.block9']) == 1
    assert "no module ['backbone.block9'] in the model; blocks and norms: [" in capsys.readouterr().err
    assert vis_cam.main([DEMO_IMAGE, config, '--checkpoint', str(tmp_path / 'none.pth')]) == 1
    assert 'checkpoint file not found' in capsys.readouterr().err
    assert not (tmp_path / 'x.png').exists()
