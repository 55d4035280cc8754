"""CheckedCocoDataset: a COCO annotation file mmdet could not train on is refused with what is wrong with it,
instead of "need at least one array to concatenate" later; malformed boxes are named, not silently dropped."""
import json

import pytest

pytestmark = pytest.mark.usefixtures('mmdet_scope')

CLASSES = ('cat', 'dog')


def _dataset(tmp_path, annotations, sizes=((48, 64), (40, 50)), test_mode=False, checked=True):
    from mmdet.registry import DATASETS
    import wavevit_mm.datasets  # noqa: F401  (registers CheckedCocoDataset)
    ann_file = tmp_path / 'instances.json'
    ann_file.write_text(json.dumps(dict(
        images=[dict(id=i, file_name=f'{i}.jpg', height=h, width=w) for i, (h, w) in enumerate(sizes, 1)],
        annotations=[dict(dict(id=i, iscrowd=0, area=100.), **a) for i, a in enumerate(annotations, 1)],
        categories=[dict(id=1, name='cat'), dict(id=2, name='dog')])))
    return DATASETS.build(dict(
        type='CheckedCocoDataset' if checked else 'CocoDataset', ann_file=str(ann_file), data_root=str(tmp_path),
        metainfo=dict(classes=CLASSES), data_prefix=dict(img=''), test_mode=test_mode, pipeline=[],
        filter_cfg=dict(filter_empty_gt=True, min_size=32)))


def _messages(monkeypatch):
    messages = []
    monkeypatch.setattr('wavevit_mm.datasets.coco.print_log', lambda msg, **kw: messages.append(msg))
    return messages


def test_a_good_file_gives_mmdets_samples(tmp_path):
    anns = [dict(image_id=1, category_id=1, bbox=[2, 3, 20, 10]), dict(image_id=2, category_id=2, bbox=[0, 0, 9, 9])]
    checked, plain = _dataset(tmp_path, anns), _dataset(tmp_path, anns, checked=False)
    assert len(checked) == 2 and [checked.get_data_info(i) for i in range(2)] == \
        [plain.get_data_info(i) for i in range(2)]


@pytest.mark.parametrize('case, annotations, sizes, message', [
    ('empty', [], ((48, 64), (40, 50)), r'none of its 2 images is usable for training .* 2 have no usable annotation '
                                        r"of the classes \('cat', 'dog'\) \(0 of them only annotations that were "
                                        r'skipped'),
    ('unknown categories', [dict(image_id=1, category_id=7, bbox=[2, 3, 20, 10]),
                            dict(image_id=2, category_id=9, bbox=[2, 3, 20, 10])], ((48, 64), (40, 50)),
     r'none of its 2 images .* 2 have no usable annotation .* \(2 of them only annotations that were skipped'),
    ('tiny images', [dict(image_id=1, category_id=1, bbox=[2, 3, 5, 5]), dict(image_id=2, category_id=2,
                                                                          bbox=[0, 0, 4, 4])], ((20, 24), (16, 30)),
     r'none of its 2 images .* 2 are smaller than min_size=32 pixels'),
])
def test_files_without_usable_images_are_refused(tmp_path, monkeypatch, case, annotations, sizes, message):
    messages = _messages(monkeypatch)
    with pytest.raises(ValueError, match=f'annotation file {tmp_path}/instances.json: {message}'):
        _dataset(tmp_path, annotations, sizes)
    if case == 'unknown categories':
        assert messages == [f'annotation file {tmp_path}/instances.json: 2 annotations have category ids the file '
                            'does not define, skipped: 7 (1 annotations), 9 (1 annotations)']
    # evaluation data sets keep every image
    assert len(_dataset(tmp_path, annotations, sizes, test_mode=True)) == 2


def test_negative_boxes_are_refused_and_degenerate_ones_reported(tmp_path, monkeypatch):
    good = dict(image_id=1, category_id=1, bbox=[2, 3, 20, 10])
    with pytest.raises(ValueError, match=r'instances.json: 1 boxes have a negative width or height \(COCO boxes are '
                                         r'\[x, y, width, height\]\): id 2 in 2.jpg: \[30, 5, -12, 8\]. Fix the file'):
        _dataset(tmp_path, [good, dict(image_id=2, category_id=2, bbox=[30, 5, -12, 8])])
    messages = _messages(monkeypatch)
    dataset = _dataset(tmp_path, [good, dict(image_id=2, category_id=2, bbox=[3, 5, 0.5, 8]),
                                  dict(image_id=2, category_id=2, bbox=[60, 45, 5, 5])])
    assert len(dataset) == 2  # as mmdet: image 2 stays (filter_empty_gt looks at the raw annotations)
    assert messages == [f'annotation file {tmp_path}/instances.json: 2 boxes are under 1 pixel wide or high, or '
                        'outside their image, skipped: id 2 in 2.jpg: [3, 5, 0.5, 8], id 3 in 2.jpg: [60, 45, 5, 5]']


def test_a_file_without_images_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r'instances.json lists no images: check that it is the right file'):
        _dataset(tmp_path, [], sizes=())
