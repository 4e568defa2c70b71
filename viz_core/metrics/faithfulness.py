"""Faithfulness and agreement of explanation maps: deletion / insertion curves, rank correlation.

*Deletion* (Petsiuk et al. 2018, "RISE"): remove the pixels a map ranks most important first,
in ``steps`` equal shares, and follow the class probability. A faithful map makes it fall fast,
so a *lower* area under the deletion curve is better. *Insertion*: start from an image with
everything removed and reveal the most important pixels first; a faithful map makes the
probability rise fast, so a *higher* area is better.

"Removed" pixels take the value of a *baseline* image, one for both curves (see
:data:`BASELINES`): by default a strongly blurred copy of the image (the baseline RISE uses for
insertion), so removing pixels takes away edges and texture without adding the sharp new edges a
black patch would. ``black``, ``white`` and ``mean`` (the image's mean colour) are there too.

Pixels are ranked by the map at the model's input resolution; ties (flat regions, LIME's
superpixels, empty maps) are broken by a seeded random order, so a flat map is a random
deletion rather than a top-left-first sweep. All images of a curve go through the model in
small batches (one compiled function per model, shared with LIME; see :func:`batch_size`).

:func:`rank_agreement` compares maps of several methods with Spearman's rank correlation
(``scipy.stats.spearmanr``): 1 = the same ranking of pixels, -1 = the reverse ranking.

:func:`explanation_map` makes any compared method's map with one call shape, including LIME
(positive superpixel weights painted onto their superpixels).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import spsolve
from scipy.stats import rankdata, spearmanr
from skimage.metrics import structural_similarity

from viz_core.methods import registry
from viz_core.methods.cam import class_heatmap, page_params
from viz_core.models.catalog import LoadedModel
from viz_core.errors import Cancelled, ParameterError
from viz_core.inputs.intake import ModelImage
from viz_core.methods.lime import (
    PAGE_DEFAULTS,
    LimeExplanation,
    fit_explanation,
    hidden_image,
    lime_explanation,
    perturbed_predictions,
)
from viz_core.models.predict import probability_function
from viz_core.render import apply_colormap, overlay_heatmap
from viz_core.maps import resize_map
from viz_core.methods.superpixels import superpixels
from viz_core.models.targets import Target

LIME = "lime"


def map_methods() -> tuple[str, ...]:
    """Every method :func:`explanation_map` knows: the registry's (:mod:`viz_core.methods.registry`),
    in its order, and LIME."""
    return registry.names() + (LIME,)


def compare_methods() -> tuple[str, ...]:
    """The methods the Compare page and the ``compare`` command run unless told: the
    registry's fast ones (a pass or two each)."""
    return registry.names(fast=True)


#: :func:`compare_methods` of the built-in registry (read the function to see methods
#: registered later).
COMPARE_METHODS = compare_methods()
#: LIME settings used for comparisons: the LIME page's defaults, so results are shared.
LIME_DEFAULTS = PAGE_DEFAULTS

BASELINES = ("blurred", "black", "white", "mean")
#: The Compare page's curves unless the user changes them (and what the warm-up prepares).
DEFAULT_BASELINE = "blurred"  # a literal: the command line reads it without importing this
DEFAULT_CURVE_STEPS = 20
BASELINE_HELP = {
    "blurred": "removed pixels become a strongly blurred copy of the image (sigma a tenth of "
               "the shorter side): edges and texture go, colours stay",
    "black": "removed pixels become black (RISE's deletion baseline)",
    "white": "removed pixels become white",
    "mean": "removed pixels become the image's mean colour",
}
MIN_STEPS = 2
MAX_STEPS = 200
# Images per forward pass: as many as keep one layer's activations of the batch within ~16 MB,
# 2 to 16. On these CPUs a small model is memory-bound: the demo model (150x150x32 first
# activations) took 7 ms per image at batch 4 and 18 ms at batch 32 (medians of 5 interleaved
# runs); VGG16 is compute-bound and gains ~20% from batching (FINDINGS), so it gets 2.
_BATCH_BYTES = 16 * 2**20
_MIN_BATCH, _MAX_BATCH = 2, 16

Progress = Callable[[float, str], None]
StopFn = Callable[[], bool]


@dataclass(frozen=True, eq=False)
class FaithfulnessCurves:
    """Deletion and insertion curves of one map, for one class of one image.

    Attributes
    ----------
    fractions : np.ndarray
        (steps + 1,) float32, the fraction of pixels removed (deletion) or revealed
        (insertion) at each point, from 0 to 1. Step ``k`` changes ``round(k / steps * H * W)``
        pixels.
    deletion : np.ndarray
        (steps + 1,) float32 in [0, 1], the class probability as the top-ranked pixels are
        replaced by the baseline. ``deletion[0]`` is the probability on the image itself.
    insertion : np.ndarray
        (steps + 1,) float32 in [0, 1], the class probability as the top-ranked pixels are
        revealed on the baseline. ``insertion[0]`` is the probability on the baseline.
    deletion_auc, insertion_auc : float
        Areas under the curves (trapezoidal rule over ``fractions``), in [0, 1].
        Lower deletion and higher insertion mean a more faithful map.
    class_index : int
    label : str
    baseline : str
        One of :data:`BASELINES`.
    steps : int
    seed : int
        Seed of the random tie-breaking between equally ranked pixels.
    """

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_auc: float
    insertion_auc: float
    class_index: int
    label: str
    baseline: str
    steps: int
    seed: int


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


# --------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------
def check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or \
            not MIN_STEPS <= int(steps) <= MAX_STEPS:
        raise ParameterError(
            f"The number of steps must be a whole number from {MIN_STEPS} to {MAX_STEPS}; "
            f"got {steps!r}."
        )
    return int(steps)


def baseline_image(pixels: np.ndarray, baseline: str = "blurred") -> np.ndarray:
    """What removed pixels turn into.

    Parameters
    ----------
    pixels : (H, W, C) float in [0, 255]
    baseline : {"blurred", "black", "white", "mean"}

    Returns
    -------
    np.ndarray
        (H, W, C) float32 in [0, 255].
    """
    if baseline not in BASELINES:
        raise ParameterError(
            f"Unknown baseline {baseline!r}; choose one of {', '.join(BASELINES)}."
        )
    # LIME's hidden-superpixel colours with the whole image as one superpixel are exactly these
    segments = np.zeros(np.asarray(pixels).shape[:2], dtype="int32")
    return hidden_image(pixels, segments, baseline)


def pixel_ranking(heatmap: np.ndarray, seed: int = 0) -> np.ndarray:
    """Flat pixel indices from the most to the least important.

    Parameters
    ----------
    heatmap : (H, W) float
    seed : int
        Ties are broken by a random order drawn from this seed.

    Returns
    -------
    np.ndarray
        (H * W,) int64, a permutation of ``0 .. H * W - 1``.
    """
    heat = np.asarray(heatmap, dtype="float64")
    if heat.ndim != 2 or heat.size == 0:
        raise ParameterError(f"A map must be a 2-D array (height x width); got shape {heat.shape}.")
    if not np.all(np.isfinite(heat)):
        raise ParameterError("The map contains NaN or infinite values; it cannot rank pixels.")
    tie_break = np.random.default_rng(seed).permutation(heat.size)
    return np.lexsort((tie_break, -heat.ravel())).astype("int64")  # last key sorts first


def step_counts(pixels: int, steps: int) -> np.ndarray:
    """(steps + 1,) int64: how many pixels are changed at each step, ``round(k / steps * n)``."""
    return np.rint(np.linspace(0.0, float(pixels), int(steps) + 1)).astype("int64")


def batch_size(model: LoadedModel) -> int:
    """Images per forward pass for ``model`` (see :data:`_BATCH_BYTES`)."""
    largest = 1
    for layer in model.info.layers:
        if layer.nested:
            continue
        largest = max(largest, int(np.prod([d for d in layer.output_shape if d] or [1])))
    return int(np.clip(_BATCH_BYTES // (4 * largest), _MIN_BATCH, _MAX_BATCH))


def auc(fractions: np.ndarray, values: np.ndarray) -> float:
    """Area under a curve by the trapezoidal rule."""
    return float(np.trapezoid(np.asarray(values, dtype="float64"),
                              np.asarray(fractions, dtype="float64")))


# --------------------------------------------------------------------------------------------
# Deletion and insertion
# --------------------------------------------------------------------------------------------
def deletion_insertion(
    model: LoadedModel,
    image: ModelImage,
    class_index: int | str,
    heatmap: np.ndarray,
    *,
    steps: int = DEFAULT_CURVE_STEPS,
    baseline: str = DEFAULT_BASELINE,
    seed: int = 0,
    progress: Progress | None = None,
    should_stop: StopFn | None = None,
) -> FaithfulnessCurves:
    """Deletion and insertion curves of ``heatmap`` for one class.

    Parameters
    ----------
    model : LoadedModel
        Not modified.
    image : ModelImage
        ``model.view(loaded_image)``: pixels (H, W, C) float32 in [0, 255].
    class_index : int or class name
        The class whose probability is followed.
    heatmap : (H, W) float
        Any map at the model's input resolution (higher = more important), e.g.
        ``ClassHeatmap.heatmap``. Only the order of its values matters.
    steps : int
        Points after the start, 2 to 200; each changes ``1 / steps`` of the pixels.
    baseline : {"blurred", "black", "white", "mean"}
        What removed pixels become, see :data:`BASELINE_HELP`.
    seed : int
        Seed of the random order among equally ranked pixels.
    progress : callable(fraction, message) or None
    should_stop : callable() -> bool or None
        Checked between batches; True raises :class:`~viz_core.errors.Cancelled`.

    Returns
    -------
    FaithfulnessCurves

    Raises
    ------
    ParameterError
        Bad class, steps or baseline, or a map that does not match the image's size.
    """
    k = model.class_index(class_index)
    steps = check_steps(steps)
    pixels = np.asarray(image.pixels, dtype="float32")
    h, w = pixels.shape[:2]
    heat = np.asarray(heatmap)
    if heat.shape != (h, w):
        raise ParameterError(
            f"The map is {heat.shape[1] if heat.ndim > 1 else '?'}x{heat.shape[0]} but the image "
            f"the model sees is {w}x{h}; make the map at the model's input resolution."
        )
    background = baseline_image(pixels, baseline)
    order = pixel_ranking(heat, seed)
    counts = step_counts(h * w, steps)
    # rank of every pixel: pixel p is changed at step k when rank[p] < counts[k]
    rank = np.empty(h * w, dtype="int64")
    rank[order] = np.arange(h * w)
    rank = rank.reshape(h, w, 1)
    forward = probability_function(model)
    # both curves in one stream of batches: deletion images first, then insertion images
    jobs = [("deletion", c) for c in counts] + [("insertion", c) for c in counts]
    scores = np.zeros(len(jobs), dtype="float32")
    size = batch_size(model)
    batches = math.ceil(len(jobs) / size)
    for b in range(batches):
        if should_stop is not None and should_stop():
            raise Cancelled("The deletion and insertion curves were stopped before they finished.")
        chunk = jobs[b * size:(b + 1) * size]
        batch = np.stack([
            np.where(rank < c, background, pixels) if kind == "deletion"
            else np.where(rank < c, pixels, background)
            for kind, c in chunk
        ])
        scores[b * size:b * size + len(chunk)] = forward(batch)[:, k]
        if progress is not None:
            done = min(len(jobs), (b + 1) * size)
            progress(done / len(jobs), f"{done} of {len(jobs)} images scored")
    fractions = (counts / float(h * w)).astype("float32")
    deletion, insertion = scores[:steps + 1], scores[steps + 1:]
    return FaithfulnessCurves(
        fractions=fractions,
        deletion=deletion,
        insertion=insertion,
        deletion_auc=auc(fractions, deletion),
        insertion_auc=auc(fractions, insertion),
        class_index=k,
        label=model.label(k),
        baseline=baseline,
        steps=steps,
        seed=int(seed),
    )


# --------------------------------------------------------------------------------------------
# Agreement between methods
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# One call shape for every compared method's map
# --------------------------------------------------------------------------------------------
def lime_heatmap(explanation: LimeExplanation, class_index: int) -> np.ndarray:
    """LIME as a heatmap: each superpixel painted with its positive weight.

    Returns
    -------
    np.ndarray
        (H, W) float32 in [0, 1], 1 on the strongest supporting superpixel, 0 on superpixels
        that do not support the class (all zeros when none does).
    """
    weights = np.maximum(explanation.weights_for(class_index).astype("float32"), 0.0)
    top = float(weights.max()) if weights.size else 0.0
    scaled = weights / top if top > 0 else np.zeros_like(weights)
    return scaled[explanation.segments].astype("float32")


def explanation_map(
    model: LoadedModel,
    image: ModelImage,
    target: Target,
    method: str,
    *,
    progress: Progress | None = None,
    should_stop: StopFn | None = None,
    **params,
) -> np.ndarray:
    """The map of one method, whatever its family.

    Parameters
    ----------
    model, image, target
        As for :func:`viz_core.methods.cam.class_heatmap`; LIME uses only ``target.class_index``
        (LIME explains the probability).
    method : str
        One of :func:`map_methods`.
    **params
        The method's parameters: those of :func:`~viz_core.methods.cam.class_heatmap` (including
        ``layer``), or for ``lime`` those of :func:`~viz_core.methods.lime.lime_explanation`
        (defaults :data:`LIME_DEFAULTS`).

    Returns
    -------
    np.ndarray
        (H, W) float32 in [0, 1] at the model's input resolution.
    """
    if method != LIME:
        registry.get(method)  # an unknown method is named, with the known ones
    if method == LIME:
        settings = {**LIME_DEFAULTS, **params}
        k = int(target.class_index)
        explanation = lime_explanation(model, image, (k,), progress=progress,
                                       should_stop=should_stop, **settings)
        return lime_heatmap(explanation, k)
    return class_heatmap(model, image, target, method, progress=progress,
                         should_stop=should_stop, **params).heatmap


# --------------------------------------------------------------------------------------------
# The compare view's maps, through a workbench (shared by the page and the command line)
# --------------------------------------------------------------------------------------------
# the LIME page's defaults, split as its two cached steps take them
_LIME_SEGMENT_KWARGS = {key: LIME_DEFAULTS[key]
                        for key in ("algorithm", "n_superpixels", "compactness", "seed")}
_LIME_SAMPLE_KWARGS = {key: LIME_DEFAULTS[key] for key in ("samples", "hide", "seed")}


def compared_call(model: LoadedModel, image: ModelImage, target: Target, method: str):
    """``(function, args, kwargs)`` of a class-heatmap method as the compare view runs it.

    The arguments are exactly those the Class heatmaps page uses with its defaults (layer
    methods at the last conv layer, parameters from :func:`viz_core.methods.cam.page_params`), so a
    workbench answers both from one entry.
    """
    if method == LIME:
        raise ParameterError(f"{method!r} is not a class-heatmap method.")
    spec = registry.get(method)
    info = model.info
    layer = info.last_conv_layer if spec.uses_layer else None
    # only parameters that count channels (Score-CAM's) depend on it
    channels = max(2, int(info.layer(info.last_conv_layer).output_shape[-1] or 2))
    kwargs = {"method": method, "layer": layer, **page_params(method, channels)}
    return class_heatmap, (model, image, target), kwargs


def compared_map(bench, model: LoadedModel, image: ModelImage, target: Target, method: str, *,
                 progress: Progress | None = None,
                 should_stop: StopFn | None = None) -> np.ndarray:
    """The map the compare view shows for ``method``, computed through ``bench`` (a
    :class:`~viz_core.runtime.workbench.Workbench`) with each method's own page defaults (LIME:
    :data:`LIME_DEFAULTS`).

    Returns
    -------
    np.ndarray
        (H, W) float32 in [0, 1] at the model's input resolution.
    """
    if method != LIME:
        registry.get(method)
    if method == "lime":
        k = int(target.class_index)
        segmentation = bench.run(superpixels, image, **_LIME_SEGMENT_KWARGS)
        predictions = bench.run(perturbed_predictions, model, image, segmentation,
                                progress=progress, should_stop=should_stop,
                                **_LIME_SAMPLE_KWARGS)
        return lime_heatmap(bench.run(fit_explanation, model, predictions, (k,)), k)
    function, args, kwargs = compared_call(model, image, target, method)
    return bench.run(function, *args, progress=progress, should_stop=should_stop,
                     **kwargs).heatmap


def compared_map_ready(bench, model: LoadedModel, image: ModelImage, target: Target,
                       method: str) -> bool:
    """Whether :func:`compared_map` would be answered from ``bench``'s cache (LIME: its
    model passes; the linear fit takes milliseconds)."""
    if method == "lime":
        if not bench.is_cached(superpixels, image, **_LIME_SEGMENT_KWARGS):
            return False
        segmentation = bench.run(superpixels, image, **_LIME_SEGMENT_KWARGS)
        return bench.is_cached(perturbed_predictions, model, image, segmentation,
                               **_LIME_SAMPLE_KWARGS)
    function, args, kwargs = compared_call(model, image, target, method)
    return bench.is_cached(function, *args, **kwargs)


# --------------------------------------------------------------------------------------------
# More metrics (the families Quantus groups): ROAD, random-logit, sparseness, max-sensitivity
# --------------------------------------------------------------------------------------------
#: Fractions of pixels ROAD removes (Rong et al. use 10% to 90%; five points keep it quick).
ROAD_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)
#: Standard deviation of ROAD's imputation noise, in pixel values (Rong et al.: 0.01 of the range)
ROAD_NOISE = 0.01 * 255.0
#: Max-sensitivity: noisy copies and the noise's half-width (a fraction of the pixel range).
SENSITIVITY_SAMPLES = 4
SENSITIVITY_RADIUS = 0.02
# ROAD's neighbour weights (Rong et al.): 1/6 for the four direct neighbours, 1/12 diagonals
_ROAD_NEIGHBOURS = ((-1, 0, 1 / 6), (1, 0, 1 / 6), (0, -1, 1 / 6), (0, 1, 1 / 6),
                    (-1, -1, 1 / 12), (-1, 1, 1 / 12), (1, -1, 1 / 12), (1, 1, 1 / 12))


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


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    side = min(a.shape)
    window = min(7, side if side % 2 else side - 1)
    if window < 3:
        return float("nan")
    return float(structural_similarity(np.asarray(a, "float64"), np.asarray(b, "float64"),
                                       data_range=1.0, win_size=window))


def _map_call(model: LoadedModel, image: ModelImage, target: Target, method: str) -> np.ndarray:
    """``method``'s map with the compare view's settings (LIME: :data:`LIME_DEFAULTS`)."""
    if method == LIME:
        return explanation_map(model, image, target, LIME)
    function, args, kwargs = compared_call(model, image, target, method)
    return function(*args, **kwargs).heatmap


def random_logit(model: LoadedModel, image: ModelImage, target: Target, method: str, *,
                 seed: int = 0, heatmap: np.ndarray | None = None) -> tuple[int, float]:
    """The random-logit test (Sixt et al. 2020): the map of another, randomly drawn class
    should look different from the target's.

    Returns
    -------
    other_class : int
        Drawn from the other classes with ``numpy.random.default_rng(seed)`` (for a single
        sigmoid unit, the other class).
    ssim : float
        SSIM of the two maps (data range 1) in [-1, 1]; lower = the method separates classes.
    """
    k = int(target.class_index)
    others = [c for c in range(len(model.labels)) if c != k]
    if not others:
        raise ParameterError("The random-logit test needs a model with two classes or more.")
    other = int(np.random.default_rng(seed).choice(others))
    mine = _map_call(model, image, target, method) if heatmap is None else heatmap
    theirs = _map_call(model, image, Target(other, target.score), method)
    return other, _ssim(mine, theirs)


def max_sensitivity(model: LoadedModel, image: ModelImage, target: Target, method: str, *,
                    samples: int = SENSITIVITY_SAMPLES, radius: float = SENSITIVITY_RADIUS,
                    seed: int = 0, heatmap: np.ndarray | None = None) -> float:
    """Max-sensitivity (Yeh et al. 2019): the largest relative change of the map under small
    input noise, ``max_i ||e(x + d_i) - e(x)|| / ||e(x)||`` (Frobenius norms, as Quantus).

    ``d_i`` is uniform noise in ``[-radius, radius]`` x 255 per pixel and channel, seeded;
    lower = a more robust map. An empty map (norm 0) gives NaN.
    """
    if not 1 <= int(samples) <= 64:
        raise ParameterError(f"Max-sensitivity takes 1 to 64 noisy copies; got {samples}.")
    mine = _map_call(model, image, target, method) if heatmap is None else heatmap
    norm = float(np.linalg.norm(mine))
    if norm == 0.0:
        return float("nan")
    rng = np.random.default_rng(seed)
    worst = 0.0
    for i in range(int(samples)):
        noise = rng.uniform(-radius * 255.0, radius * 255.0, image.pixels.shape)
        noisy = ModelImage(original=image.original,
                           pixels=np.clip(image.pixels + noise, 0, 255).astype("float32"),
                           name=image.name, digest=f"{image.digest}+noise{seed}.{i}.{radius}")
        other = _map_call(model, noisy, target, method)
        worst = max(worst, float(np.linalg.norm(other - mine)) / norm)
    return worst


@dataclass(frozen=True)
class MapMetrics:
    """The Compare page's extra metrics of one method's map (see each function).

    Attributes
    ----------
    method : str
    sparseness : float
        :func:`sparseness` (Gini), higher = more concentrated.
    random_logit_class : int
    random_logit_ssim : float
        :func:`random_logit`, lower = better.
    max_sensitivity : float
        :func:`max_sensitivity`, lower = more robust (NaN for an empty map).
    road_morf, road_lerf : float
        :class:`RoadCurves` areas: low MoRF and high LeRF = faithful.
    """

    method: str
    sparseness: float
    random_logit_class: int
    random_logit_ssim: float
    max_sensitivity: float
    road_morf: float
    road_lerf: float


def map_metrics(model: LoadedModel, image: ModelImage, target: Target, method: str, *,
                seed: int = 0, progress: Progress | None = None,
                should_stop: StopFn | None = None) -> MapMetrics:
    """Sparseness, random-logit, max-sensitivity and ROAD of ``method``'s compare-view map.

    Costs one more map (another class), :data:`SENSITIVITY_SAMPLES` maps of noisy copies and
    ``2 x len(ROAD_FRACTIONS)`` imputed images through the model.
    """
    def step(fraction, message):
        if should_stop is not None and should_stop():
            raise Cancelled("The metrics were stopped before they finished.")
        if progress is not None:
            progress(fraction, message)

    step(0.0, "map")
    heat = _map_call(model, image, target, method)
    step(0.1, "random logit")
    other, ssim = random_logit(model, image, target, method, seed=seed, heatmap=heat)
    step(0.3, "max-sensitivity")
    sensitivity = max_sensitivity(model, image, target, method, seed=seed, heatmap=heat)
    step(0.7, "ROAD")
    curves = road(model, image, int(target.class_index), heat, seed=seed,
                  should_stop=should_stop)
    step(1.0, "done")
    return MapMetrics(method, sparseness(heat), other, ssim, sensitivity, curves.morf_area,
                      curves.lerf_area)


# --------------------------------------------------------------------------------------------
# Display (cheap, separate from the computation)
# --------------------------------------------------------------------------------------------
SHOW = ("overlay", "heatmap")


def compare_picture(pixels: np.ndarray, heatmap: np.ndarray, *, show: str = "overlay",
                    opacity: float = 0.5, colormap: str = "viridis") -> np.ndarray:
    """One map as the compare view draws it, at the image's own resolution.

    Parameters
    ----------
    pixels : (H0, W0, 3) uint8
        The original image.
    heatmap : (H, W) float in [0, 1]
    show : {"overlay", "heatmap"}
        Blended over the image (``render.overlay_heatmap``) or the map alone, coloured.
    opacity : float in [0, 1]
    colormap : str

    Returns
    -------
    np.ndarray
        (H0, W0, 3) uint8 RGB.
    """
    if show not in SHOW:
        raise ParameterError(f"Unknown display {show!r}; choose 'overlay' or 'heatmap'.")
    if show == "overlay":
        return overlay_heatmap(pixels, heatmap, opacity=opacity, colormap=colormap)
    h0, w0 = pixels.shape[:2]
    return apply_colormap(resize_map(heatmap, h0, w0), colormap)


def method_title(method: str) -> str:
    """What users read for a method name (``"gradcam"`` -> ``"Grad-CAM"``)."""
    return "LIME" if method == LIME else registry.title(method)


def check_methods(methods: Sequence[str],
                  allowed: Sequence[str] | None = None) -> tuple[str, ...]:
    """``methods`` checked (known, at least one), duplicates removed, order kept.

    ``allowed`` defaults to :func:`map_methods` (read now, so registered methods count).
    """
    # the check itself is TensorFlow-free (the command line runs it while parsing)
    return registry.check_names(methods, map_methods() if allowed is None else allowed)
