from .haar import HaarDWT2d, HaarIDWT2d, haar_dwt2d, haar_idwt2d, pad_to_even

__all__ = ['HaarDWT2d', 'HaarIDWT2d', 'haar_dwt2d', 'haar_idwt2d', 'pad_to_even']
