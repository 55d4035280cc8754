"""CheckSegLabels: a label file with class indices out of range is reported clearly, naming the file."""
import os.path as osp
import re

import numpy as np
import pytest
from mmengine.config import Config

from wavevit_mm.testing.seg_data import (DRAWN_VALUES, SEG_CONFIGS, make_ade20k_fixture, set_data_root, shrink_pipelines,
                          stored_to_loaded)


def _check(**kwargs):
    from wavevit_mm.datasets.seg_transforms import CheckSegLabels
    return CheckSegLabels(**kwargs)


def test_valid_maps_pass_unchanged():
    t = _check(num_classes=150)
    gt = np.array([[0, 149, 255], [3, 4, 255]], np.uint8)
    results = dict(gt_seg_map=gt, seg_map_path='a.png', reduce_zero_label=True)
    assert t(results) is results and results['gt_seg_map'] is gt
    # inference pipelines drop LoadAnnotations: nothing to check
    assert t(dict(img_path='x.jpg')) == dict(img_path='x.jpg')


def test_out_of_range_without_reduce_zero_label():
    t = _check(num_classes=19)
    gt = np.zeros((8, 8), np.uint8)
    gt[0, :3] = [19, 40, 255]
    with pytest.raises(ValueError) as err:
        t(dict(gt_seg_map=gt, seg_map_path='/data/city/label_7.png', reduce_zero_label=False))
    msg = str(err.value)
    assert '/data/city/label_7.png' in msg
    assert '2 of 64 pixels' in msg and '[19, 40]' in msg
    assert '[0, 19)' in msg and 'ignore_index=255' in msg
    assert 'reduce_zero_label=True' not in msg


def test_out_of_range_reports_stored_values_with_reduce_zero_label():
    stored = np.array([[0, 1, 150, 151], [200, 255, 4, 13]], np.uint8)
    t = _check(num_classes=150)
    with pytest.raises(ValueError) as err:
        t(dict(gt_seg_map=stored_to_loaded(stored).astype(np.uint8), seg_map_path='ann/x.png',
               reduce_zero_label=True))
    msg = str(err.value)
    assert 'ann/x.png' in msg
    assert '[150, 199] (as loaded)' in msg  # stored 151 and 200; stored 150 is class 149, valid
    assert 'values [151, 200] in the file' in msg
    assert '1..150 (classes 0..149)' in msg


def test_arguments_checked():
    with pytest.raises(ValueError, match='positive int'):
        _check(num_classes=0)
    with pytest.raises(ValueError, match='uint8'):
        _check(num_classes=300)


@pytest.mark.parametrize('split', ['training', 'validation'])
def test_bad_label_file_in_our_ade20k_pipelines(tmp_path, split, mmseg_scope):
    """Through our config's dataset and pipeline: good files load, the bad one raises naming the file."""
    from mmseg.registry import DATASETS
    import wavevit_mm.datasets.seg_transforms  # noqa: F401
    stem = 'ADE_train_00000002' if split == 'training' else 'ADE_val_00000001'
    root = make_ade20k_fixture(str(tmp_path / 'ade'), bad_label=(stem, 200))
    cfg = Config.fromfile(SEG_CONFIGS['s'])
    shrink_pipelines(cfg)
    set_data_root(cfg, root)
    key = 'train_dataloader' if split == 'training' else 'val_dataloader'
    dataset = DATASETS.build(cfg[key].dataset)
    bad_index = [i for i in range(len(dataset)) if stem in dataset.get_data_info(i)['seg_map_path']][0]
    for i in range(len(dataset)):
        if i != bad_index:
            sample = dataset[i]
            labels = set(np.unique(sample['data_samples'].gt_sem_seg.data.numpy()).tolist())
            assert labels <= {v - 1 for v in DRAWN_VALUES} | {255}
    with pytest.raises(ValueError) as err:
        dataset[bad_index]
    msg = str(err.value)
    assert osp.join(root, 'annotations', split, stem + '.png') in msg
    assert re.search(r'values \[199\] \(as loaded\)', msg) and 'values [200] in the file' in msg
    assert '[0, 150)' in msg


# --- label files checked against their image: size, channels, bit depth ------------------------------------------

def _pair(tmp_path, label: np.ndarray, name: str = 'label.png'):
    """An image of 20 x 30 (height x width) and ``label`` as a PNG, loaded as mmseg's pipelines load them."""
    import cv2
    from mmcv.transforms import LoadImageFromFile
    img, seg = str(tmp_path / 'image.jpg'), str(tmp_path / name)
    cv2.imwrite(img, np.full((20, 30, 3), 128, np.uint8))
    cv2.imwrite(seg, label)
    return LoadImageFromFile()(dict(img_path=img, seg_map_path=seg, reduce_zero_label=False, seg_fields=[]))


def _loaders():
    from mmseg.datasets.transforms import LoadAnnotations
    from wavevit_mm.datasets.seg_transforms import LoadSegAnnotations
    return LoadSegAnnotations(), LoadAnnotations()


BAD_LABELS = [
    ('larger', np.zeros((24, 40), np.uint8), r'is 24 x 40 \(height x width\), but its image .*image.jpg is 20 x 30 '
                                             r'\(larger than the image: it would be cropped out of alignment\)'),
    ('smaller', np.zeros((10, 15), np.uint8), r'is 10 x 15 \(height x width\), but its image .* is 20 x 30\. A label'),
    ('transposed', np.zeros((30, 20), np.uint8), r'is 30 x 20 .* is 20 x 30 \(transposed: width and height swapped\)'),
    ('rgb', np.zeros((20, 30, 3), np.uint8), r'has 3 channels: a segmentation label must be a single-channel image'),
]


@pytest.mark.parametrize('name, label, message', BAD_LABELS, ids=[b[0] for b in BAD_LABELS])
def test_labels_that_do_not_fit_their_image_name_the_file(tmp_path, name, label, message):
    """Our loader refuses them as it reads them; behind mmseg's own LoadAnnotations, CheckSegLabels does (mmseg
    alone trains on a larger label misaligned, and fails on the others at batching with no file named)."""
    load_checked, load_mmseg = _loaders()
    results = _pair(tmp_path, label)
    with pytest.raises(ValueError, match=f'label file {results["seg_map_path"]} {message}'):
        load_checked(dict(results))
    with pytest.raises(ValueError, match=f'label file {results["seg_map_path"]} {message}'):
        _check(num_classes=150)(load_mmseg(dict(results)))


def test_16_bit_labels_are_read_at_their_depth(tmp_path):
    label = np.zeros((20, 30), np.uint16)
    label[:2, :3] = 300
    results = _pair(tmp_path, label)
    load_checked, load_mmseg = _loaders()
    assert load_mmseg(dict(results))['gt_seg_map'].max() == 44  # mmseg: 300 wraps to class 44, silently
    loaded = load_checked(dict(results))
    assert loaded['gt_seg_map'].max() == 300
    with pytest.raises(ValueError, match=rf'label file {results["seg_map_path"]}: 6 of 600 pixels have class '
                                         r'indices out of range, values \[300\]'):
        _check(num_classes=150)(loaded)


def test_valid_labels_load_as_mmseg_loads_them(tmp_path):
    label = np.random.default_rng(0).integers(0, 150, (20, 30)).astype(np.uint8)
    label[0, :4] = 255
    results = _pair(tmp_path, label)
    for reduce_zero_label in (False, True):
        load_checked, load_mmseg = _loaders()
        ours = load_checked(dict(results, reduce_zero_label=reduce_zero_label))
        theirs = load_mmseg(dict(results, reduce_zero_label=reduce_zero_label, seg_fields=[]))
        assert ours['gt_seg_map'].dtype == np.uint8 and np.array_equal(ours['gt_seg_map'], theirs['gt_seg_map'])
        assert _check(num_classes=150)(ours) is ours


def test_image_without_label_passes_through(tmp_path):
    """An image to predict on (no seg_map_path): mmseg's Inferencer keeps this step in the pipeline (it drops only
    the one named LoadAnnotations), so it must leave the results alone, as must the label check after it."""
    results = _pair(tmp_path, np.zeros((20, 30), np.uint8))
    del results['seg_map_path']
    load_checked, _ = _loaders()
    out = _check(num_classes=150)(load_checked(dict(results)))
    assert 'gt_seg_map' not in out and out['img'].shape == (20, 30, 3)


def test_label_map_checks(tmp_path):
    """Float maps, and a loader whose reduce_zero_label disagrees with the dataset's."""
    from wavevit_mm.datasets.seg_transforms import LoadSegAnnotations, check_label_map_shape
    with pytest.raises(ValueError, match=r'label file a.tif holds float32 values; class indices must be integers'):
        check_label_map_shape(np.zeros((4, 4), np.float32), dict(seg_map_path='a.tif'))
    check_label_map_shape(np.zeros((4, 6), np.uint8), dict(ori_shape=(8, 8), img_shape=(4, 6)),
                          sizes=('ori_shape', 'img_shape'))  # after a joint resize or crop
    loader = LoadSegAnnotations(reduce_zero_label=True)
    with pytest.raises(ValueError, match=r'LoadSegAnnotations\(reduce_zero_label=True\) but the dataset has '
                                         r'reduce_zero_label=False: set the same in both'):
        loader(_pair(tmp_path, np.zeros((20, 30), np.uint8)))
