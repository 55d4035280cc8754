"""Checks for the figures the tools write: every PNG a tool writes is opened and looked at in its test."""
import os.path as osp
from typing import Tuple

import numpy as np


def check_png(path: str, min_size: Tuple[int, int] = (200, 150), min_std: float = 5.) -> Tuple[int, int]:
    """Assert that ``path`` is a valid PNG of at least ``min_size`` (width, height) pixels that is not blank
    (the grey levels vary by more than ``min_std``); returns its (width, height)."""
    from PIL import Image
    assert osp.isfile(path), f'{path} was not written'
    with Image.open(path) as img:
        img.verify()  # a truncated or corrupt file raises here
    with Image.open(path) as img:
        assert img.format == 'PNG', f'{path} is a {img.format}, not a PNG'
        assert img.size[0] >= min_size[0] and img.size[1] >= min_size[1], \
            f'{path} is {img.size[0]} x {img.size[1]} pixels, expected at least {min_size[0]} x {min_size[1]}'
        grey = np.asarray(img.convert('L'), dtype=np.float32)
    assert grey.std() > min_std, f'{path} is blank (grey level std {grey.std():.2f})'
    return img.size
