"""The atlas's pictures: a receptive-field crop enlarged by a whole factor, pixels kept sharp;
a frame drawn just inside the field's box, nothing else changed."""
from __future__ import annotations

import numpy as np

from viz_core.render.atlas import crop_picture, outlined


def test_a_small_crop_is_enlarged_by_a_whole_factor_with_sharp_pixels():
    pixels = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    crop = crop_picture(pixels, (2, 3, 5, 7), smallest=10)  # 3 wide, 4 high -> factor 4
    assert crop.shape == (16, 12, 3)
    np.testing.assert_array_equal(crop[::4, ::4], pixels[3:7, 2:5])
    np.testing.assert_array_equal(crop[1, 5], pixels[3, 3])  # inside the block of (3, 3)


def test_a_large_enough_crop_is_the_slice_itself():
    pixels = np.random.default_rng(0).integers(0, 256, (80, 90, 3), dtype=np.uint8)
    np.testing.assert_array_equal(crop_picture(pixels, (5, 6, 75, 76)), pixels[6:76, 5:75])


def test_the_frame_sits_inside_the_box_and_leaves_the_rest():
    picture = np.zeros((20, 20, 3), dtype=np.uint8)
    framed = outlined(picture, (4, 5, 14, 15), colour=(255, 0, 0))
    red = (framed == (255, 0, 0)).all(axis=-1)
    assert red[5:7, 4:14].all() and red[13:15, 4:14].all()  # top and bottom, 2 px
    assert red[5:15, 4:6].all() and red[5:15, 12:14].all()  # left and right
    assert red.sum() == 10 * 10 - 6 * 6 and not red[7:13, 6:12].any()
    assert picture.max() == 0  # the caller's picture is untouched
