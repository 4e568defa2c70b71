"""Agreement between methods: Spearman's rank correlation of their maps.

:func:`rank_agreement` compares maps of several methods with Spearman's rank correlation
(``scipy.stats.spearmanr``): 1 = the same ranking of pixels, -1 = the reverse ranking.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from scipy.stats import rankdata, spearmanr

from viz_core.errors import ParameterError


@dataclass(frozen=True, eq=False)
class RankAgreement:
    """How much several methods' maps agree on which pixels matter.

    Attributes
    ----------
    methods : tuple of str
        Names, in the order of the matrix's rows and columns.
    matrix : np.ndarray
        (M, M) float32 in [-1, 1], Spearman's rank correlation of every pair of maps over all
        pixels; 1 on the diagonal. NaN where a map is constant (an empty map ranks nothing).
    """

    methods: tuple[str, ...]
    matrix: np.ndarray

    def pair(self, a: str, b: str) -> float:
        """The correlation of methods ``a`` and ``b``."""
        try:
            return float(self.matrix[self.methods.index(a), self.methods.index(b)])
        except ValueError:
            raise ParameterError(
                f"No map called {a!r} or {b!r}; compared maps: {', '.join(self.methods)}."
            ) from None


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps of the same shape, over all pixels.

    Returns NaN when either map is constant (it ranks no pixel above another).
    """
    x, y = np.asarray(a, dtype="float64").ravel(), np.asarray(b, dtype="float64").ravel()
    if np.asarray(a).shape != np.asarray(b).shape:
        raise ParameterError(
            f"Maps of different sizes cannot be compared: {np.asarray(a).shape} and "
            f"{np.asarray(b).shape}."
        )
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(x, y).statistic)


def rank_agreement(maps: Mapping[str, np.ndarray]) -> RankAgreement:
    """Spearman's rank correlation between every pair of maps.

    Parameters
    ----------
    maps : mapping of name -> (H, W) float
        Two or more maps of the same size.

    Returns
    -------
    RankAgreement
    """
    names = tuple(maps)
    if len(names) < 2:
        raise ParameterError(f"Comparing needs at least two maps; got {len(names)}.")
    arrays = [np.asarray(maps[name]) for name in names]
    for other in arrays[1:]:
        if other.shape != arrays[0].shape:
            raise ParameterError(f"Maps of different sizes cannot be compared: "
                                 f"{arrays[0].shape} and {other.shape}.")
    # Spearman's rho is Pearson's r of the (average) ranks: rank each map once and correlate
    # all at once, instead of ranking both maps again for every pair (the Compare page's six
    # maps took 190 ms pair by pair, on every visit). A constant map's ranks have no variance:
    # its row and column are NaN, as rank_correlation says.
    ranks = rankdata(np.stack([a.astype("float64").ravel() for a in arrays], axis=1), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        matrix = np.clip(np.corrcoef(ranks, rowvar=False), -1.0, 1.0).astype("float32")
    constant = np.ptp(ranks, axis=0) == 0
    matrix[np.diag_indices(len(names))] = 1.0
    matrix[constant, :] = np.nan
    matrix[:, constant] = np.nan
    return RankAgreement(methods=names, matrix=matrix)

