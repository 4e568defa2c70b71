"""Pictures of a unit's exemplars for the neuron atlas: an exemplar's receptive field cropped
and enlarged, and a frame drawn around that field on the whole image."""
from __future__ import annotations

import numpy as np
from PIL import Image

MIN_CROP = 64  # crops smaller than this are enlarged (nearest) so a 3 px field can be seen


def crop_picture(pixels: np.ndarray, box, smallest: int = MIN_CROP) -> np.ndarray:
    """``pixels[y0:y1, x0:x1]`` for ``box = (x0, y0, x1, y1)``, enlarged by a whole factor
    (nearest neighbour, so pixels stay sharp) until its shorter side is at least ``smallest``.

    Returns
    -------
    np.ndarray
        (h * f, w * f, 3) uint8, f >= 1.
    """
    x0, y0, x1, y1 = box
    crop = np.ascontiguousarray(pixels[y0:y1, x0:x1])
    factor = max(1, -(-smallest // max(1, min(crop.shape[:2]))))
    if factor == 1:
        return crop
    size = (crop.shape[1] * factor, crop.shape[0] * factor)
    return np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.NEAREST))


def outlined(picture: np.ndarray, box, colour=(255, 255, 255), width: int = 2) -> np.ndarray:
    """A copy of ``picture`` (H, W, 3) uint8 with a ``width`` px frame just inside
    ``box = (x0, y0, x1, y1)`` (the receptive field of a unit's strongest position)."""
    out = picture.copy()
    x0, y0, x1, y1 = box
    for x_lo, y_lo, x_hi, y_hi in ((x0, y0, x1, y0 + width), (x0, y1 - width, x1, y1),
                                   (x0, y0, x0 + width, y1), (x1 - width, y0, x1, y1)):
        out[max(0, y_lo):y_hi, max(0, x_lo):x_hi] = colour
    return out
