"""Arithmetic on explanation maps shared by every layer: resizing a (h, w) map to a picture's size.

Not in :mod:`viz_core.render`: methods, metrics and the dataset engine resize maps as numbers,
and they must not depend on the drawing code.
"""
from __future__ import annotations

import numpy as np
from skimage.transform import resize


def resize_map(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a 2-D map (e.g. a heatmap in [0, 1]) with bilinear interpolation.

    Returns
    -------
    np.ndarray
        (height, width) float32; values stay within the input's range.
    """
    v = np.asarray(values, dtype="float32")
    if v.shape == (height, width):
        return v
    return resize(v, (height, width), order=1, mode="edge", anti_aliasing=False,
                  preserve_range=True).astype("float32")
