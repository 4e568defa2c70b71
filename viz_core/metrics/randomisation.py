"""Randomisation of the explained class: the random-logit test (Sixt et al. 2020).

The map of another, randomly drawn class should look different from the target's; a method
whose maps are the same for every class (EigenCAM) explains the image, not the class.
(Randomising the *model* is :mod:`viz_core.metrics.sanity`.)
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from skimage.metrics import structural_similarity

from viz_core.errors import ParameterError
from viz_core.inputs.intake import ModelImage
from viz_core.models.catalog import LoadedModel
from viz_core.models.targets import Target

#: ``explain(image, target) -> (H, W) map``: the judged method, run again.
Explain = Callable[[ModelImage, Target], np.ndarray]


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two maps in [0, 1] (data range 1), with the largest odd window up to 7 that
    fits; NaN for maps smaller than 3 pixels."""
    side = min(a.shape)
    window = min(7, side if side % 2 else side - 1)
    if window < 3:
        return float("nan")
    return float(structural_similarity(np.asarray(a, "float64"), np.asarray(b, "float64"),
                                       data_range=1.0, win_size=window))


def other_class(model: LoadedModel, class_index: int, seed: int = 0) -> int:
    """A class other than ``class_index``, drawn with ``numpy.random.default_rng(seed)`` (for a
    single sigmoid unit, the other class)."""
    k = int(class_index)
    others = [c for c in range(len(model.labels)) if c != k]
    if not others:
        raise ParameterError("The random-logit test needs a model with two classes or more.")
    return int(np.random.default_rng(seed).choice(others))


def random_logit(model: LoadedModel, image: ModelImage, target: Target, explain: Explain, *,
                 seed: int = 0, heatmap: np.ndarray | None = None) -> tuple[int, float]:
    """The random-logit test of the method ``explain`` runs.

    Returns
    -------
    other_class : int
        See :func:`other_class`.
    ssim : float
        SSIM of the two maps (data range 1) in [-1, 1]; lower = the method separates classes.
    """
    other = other_class(model, target.class_index, seed)
    mine = explain(image, target) if heatmap is None else heatmap
    theirs = explain(image, Target(other, target.score))
    return other, ssim(mine, theirs)


def random_logit_score(inp) -> tuple[float, dict]:
    """The registered metric: the SSIM, with the other class as ``{"class": k}``."""
    other, value = random_logit(inp.model, inp.image, inp.target, inp.explain, seed=inp.seed,
                                heatmap=inp.heatmap)
    return value, {"class": other}
