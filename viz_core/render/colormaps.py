"""Colour maps as 256-entry lookup tables (sampled once from matplotlib into
``assets/colormaps.npz``, so rendering needs numpy only and is fast: one fancy-index per image).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from viz_core.errors import ParameterError
from viz_core.paths import ASSETS
from viz_core.render.choices import COLORMAPS

_LUT_FILE = ASSETS / "colormaps.npz"


@lru_cache(maxsize=None)  # read-only data file, loaded once
def _luts() -> dict[str, np.ndarray]:
    with np.load(_LUT_FILE, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def lookup_table(name: str) -> np.ndarray:
    """(256, 3) uint8 RGB table of colour map ``name``."""
    tables = _luts()
    key = str(name).lower()
    if key not in tables:
        raise ParameterError(f"Unknown colour map {name!r}; choose one of {', '.join(COLORMAPS)}.")
    return tables[key]


def normalize(values: np.ndarray, low: float | None = None, high: float | None = None,
              eps: float = 1e-12) -> np.ndarray:
    """Scale to [0, 1] between ``low`` and ``high`` (default: the array's min and max).

    A constant array maps to 0 everywhere (drawn flat, never NaN).

    Returns
    -------
    np.ndarray
        float32, same shape, in [0, 1].
    """
    v = np.asarray(values, dtype="float32")
    lo = float(np.nanmin(v)) if low is None else float(low)
    hi = float(np.nanmax(v)) if high is None else float(high)
    if not np.isfinite(lo) or not np.isfinite(hi) or hi - lo <= eps:
        return np.zeros_like(v, dtype="float32")
    out = (v - lo) / (hi - lo)
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0).astype("float32")


def apply_colormap(values: np.ndarray, name: str = "viridis") -> np.ndarray:
    """Colour values in [0, 1] (any shape S) with a colour map.

    Returns
    -------
    np.ndarray
        S + (3,) uint8 RGB.
    """
    v = np.nan_to_num(np.asarray(values, dtype="float32"), nan=0.0)
    index = np.clip(np.rint(v * 255.0), 0, 255).astype("uint8")
    return lookup_table(name)[index]
