"""Complexity of a map: how concentrated its importance is (sparseness, as in Quantus)."""
from __future__ import annotations

import numpy as np


def sparseness(heatmap: np.ndarray) -> float:
    """Gini index of the map's absolute values (Chalasani et al. 2020, as in Quantus).

    ``sum_i (2i - n - 1) a_(i) / (n sum a)`` over the sorted values ``a_(1) <= ... <= a_(n)``
    (each plus 1e-7, as Quantus, so an empty map is uniform). 0: every pixel equally
    important; (n - 1) / n: one pixel holds everything. Higher = more concentrated.

    Parameters
    ----------
    heatmap : (H, W) float

    Returns
    -------
    float in [0, 1)
    """
    a = np.sort(np.abs(np.asarray(heatmap, dtype="float64")).ravel() + 1e-7)
    n = a.size
    return float(np.sum((2 * np.arange(1, n + 1) - n - 1) * a) / (n * a.sum()))


def sparseness_score(inp) -> float:
    """The registered metric: :func:`sparseness` of ``inp.heatmap`` (no model run)."""
    return sparseness(inp.heatmap)
