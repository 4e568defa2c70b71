"""ROAD (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy for Attribution
Methods"): remove pixels in the map's order and fill them in from their neighbours.

Unlike deletion with a fixed baseline, removed pixels are imputed (:func:`noisy_linear_imputation`),
so the shape of the removed region leaks less into the model's answer. Two metrics come from
one :func:`road` run: MoRF (most relevant first, lower = more faithful) and LeRF (least
relevant first, higher = more faithful).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import spsolve

from viz_core.errors import Cancelled, ParameterError
from viz_core.inputs.intake import ModelImage
from viz_core.metrics.faithfulness import auc, pixel_ranking
from viz_core.metrics.registry import ROAD_FRACTIONS
from viz_core.models.catalog import LoadedModel
from viz_core.models.predict import probability_function

#: Standard deviation of ROAD's imputation noise, in pixel values (Rong et al.: 0.01 of the range)
ROAD_NOISE = 0.01 * 255.0
# ROAD's neighbour weights (Rong et al.): 1/6 for the four direct neighbours, 1/12 diagonals
_ROAD_NEIGHBOURS = ((-1, 0, 1 / 6), (1, 0, 1 / 6), (0, -1, 1 / 6), (0, 1, 1 / 6),
                    (-1, -1, 1 / 12), (-1, 1, 1 / 12), (1, -1, 1 / 12), (1, 1, 1 / 12))

Progress = Callable[[float, str], None]
StopFn = Callable[[], bool]


def noisy_linear_imputation(pixels: np.ndarray, removed: np.ndarray, *, noise: float = ROAD_NOISE,
                            seed: int = 0) -> np.ndarray:
    """ROAD's imputation (Rong et al. 2022): removed pixels become the weighted mean of their
    neighbours, solved for all removed pixels at once, plus Gaussian noise.

    Each removed pixel ``p`` satisfies ``sum_q w_pq (x_p - x_q) = 0`` over its neighbours
    inside the image (weights :data:`_ROAD_NEIGHBOURS`), a sparse linear system whose known
    values come from the kept pixels; ``noise`` (standard deviation, pixel values) is then
    added to the imputed pixels only, from ``numpy.random.default_rng(seed)``.

    Parameters
    ----------
    pixels : (H, W, C) float in [0, 255]
    removed : (H, W) bool
        At least one pixel must be kept.

    Returns
    -------
    np.ndarray
        (H, W, C) float32 in [0, 255]; kept pixels unchanged.
    """
    x = np.asarray(pixels, dtype="float64")
    removed = np.asarray(removed, dtype=bool)
    h, w, c = x.shape
    m = int(removed.sum())
    out = x.copy()
    if m == 0:
        return out.astype("float32")
    if m == h * w:
        raise ParameterError("ROAD keeps at least one pixel to impute from; all were removed.")
    index = np.full((h, w), -1, dtype="int64")
    index[removed] = np.arange(m)
    ys, xs = np.nonzero(removed)
    rows, cols, vals = [], [], []
    diagonal = np.zeros(m)
    rhs = np.zeros((m, c))
    for dy, dx, weight in _ROAD_NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        p = np.flatnonzero(inside)
        q_index = index[ny[inside], nx[inside]]
        diagonal[p] += weight
        unknown = q_index >= 0
        rows.append(p[unknown])
        cols.append(q_index[unknown])
        vals.append(np.full(int(unknown.sum()), -weight))
        known = ~unknown
        rhs[p[known]] += weight * x[ny[inside][known], nx[inside][known]]
    rows.append(np.arange(m))
    cols.append(np.arange(m))
    vals.append(diagonal)
    system = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                        shape=(m, m)).tocsc()
    solved = spsolve(system, rhs).reshape(m, c)
    solved += np.random.default_rng(seed).normal(0.0, noise, solved.shape)
    out[removed] = solved
    return np.clip(out, 0.0, 255.0).astype("float32")


@dataclass(frozen=True, eq=False)
class RoadCurves:
    """ROAD (Rong et al. 2022) of one map: the class probability with the most (MoRF) or the
    least (LeRF) relevant pixels removed and imputed.

    Attributes
    ----------
    fractions : np.ndarray
        (F,) float32, the fractions of pixels removed.
    morf, lerf : np.ndarray
        (F,) float32 in [0, 1], the probability with the top / bottom fraction removed.
    morf_area, lerf_area : float
        Mean probability over the fractions (area over their span), in [0, 1]: a faithful map
        has a low MoRF and a high LeRF area.
    class_index : int
    seed : int
    """

    fractions: np.ndarray
    morf: np.ndarray
    lerf: np.ndarray
    morf_area: float
    lerf_area: float
    class_index: int
    seed: int


def road(model: LoadedModel, image: ModelImage, class_index: int, heatmap: np.ndarray, *,
         fractions: Sequence[float] = ROAD_FRACTIONS, noise: float = ROAD_NOISE, seed: int = 0,
         progress: Progress | None = None, should_stop: StopFn | None = None) -> RoadCurves:
    """ROAD curves of ``heatmap`` for one class (Rong et al. 2022, "A Consistent and Efficient
    Evaluation Strategy for Attribution Methods").

    Unlike deletion with a fixed baseline, removed pixels are imputed from their neighbours
    (:func:`noisy_linear_imputation`), so the shape of the removed region leaks less into the
    model's answer. Pixels are ranked by :func:`pixel_ranking` (seeded ties).

    Returns
    -------
    RoadCurves

    Raises
    ------
    ParameterError
        A fraction outside (0, 1), a map of another size than the model input.
    """
    fractions = np.asarray(sorted(float(f) for f in fractions), dtype="float64")
    if fractions.size == 0 or fractions[0] <= 0.0 or fractions[-1] >= 1.0:
        raise ParameterError(f"ROAD removes fractions strictly between 0 and 1; got "
                             f"{fractions.tolist()}.")
    h, w = model.info.input_shape[:2]
    heat = np.asarray(heatmap, dtype="float32")
    if heat.shape != (h, w):
        raise ParameterError(f"The map is {heat.shape} but the model input is {(h, w)}.")
    order = pixel_ranking(heat, seed)
    probabilities = probability_function(model)
    k = int(class_index)
    images = []
    for most_first in (True, False):
        ranked = order if most_first else order[::-1]
        for f in fractions:
            removed = np.zeros(h * w, dtype=bool)
            removed[ranked[:int(round(f * h * w))]] = True
            if should_stop is not None and should_stop():
                raise Cancelled("ROAD was stopped before it finished.")
            images.append(noisy_linear_imputation(image.pixels, removed.reshape(h, w),
                                                  noise=noise, seed=seed))
            if progress is not None:
                progress(len(images) / (2 * fractions.size), f"{len(images)} images imputed")
    scores = probabilities(np.stack(images))[:, k].astype("float32")
    morf, lerf = scores[:fractions.size], scores[fractions.size:]
    span = fractions[-1] - fractions[0]

    def area(values):
        return float(values.mean()) if span == 0 else auc(fractions, values) / span

    return RoadCurves(fractions.astype("float32"), morf, lerf, area(morf), area(lerf), k,
                      int(seed))



def _curves(inp) -> RoadCurves:
    # one run for both metrics: the second is answered by ``inp.run``'s cache
    return inp.run(road, inp.model, inp.image, int(inp.target.class_index), inp.heatmap,
                   seed=inp.seed, should_stop=inp.should_stop)


def road_morf(inp) -> float:
    """The registered metric: ROAD's MoRF area of ``inp.heatmap``, in [0, 1]; lower = better."""
    return _curves(inp).morf_area


def road_lerf(inp) -> float:
    """The registered metric: ROAD's LeRF area of ``inp.heatmap``, in [0, 1]; higher = better."""
    return _curves(inp).lerf_area
