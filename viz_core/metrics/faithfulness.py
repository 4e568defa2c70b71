"""Deletion and insertion curves (Petsiuk et al. 2018, "RISE"), and their two metrics.

*Deletion*: remove the pixels a map ranks most important first, in ``steps`` equal shares, and
follow the class probability. A faithful map makes it fall fast, so a *lower* area under the
deletion curve is better. *Insertion*: start from an image with everything removed and reveal
the most important pixels first; a faithful map makes the probability rise fast, so a *higher*
area is better.

"Removed" pixels take the value of a *baseline* image, one for both curves (see
:data:`BASELINES`): by default a strongly blurred copy of the image (the baseline RISE uses for
insertion), so removing pixels takes away edges and texture without adding the sharp new edges a
black patch would. ``black``, ``white`` and ``mean`` (the image's mean colour) are there too.

Pixels are ranked by the map at the model's input resolution; ties (flat regions, LIME's
superpixels, empty maps) are broken by a seeded random order, so a flat map is a random
deletion rather than a top-left-first sweep. All images of a curve go through the model in
small batches (one compiled function per model, shared with LIME; see :func:`batch_size`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from viz_core.errors import Cancelled, ParameterError
from viz_core.inputs.intake import ModelImage
from viz_core.methods.lime import hidden_image
from viz_core.metrics.registry import (  # noqa: F401  (the curves' settings, stated once there)
    BASELINES,
    DEFAULT_BASELINE,
    DEFAULT_CURVE_STEPS,
    MAX_STEPS,
    MIN_STEPS,
)
from viz_core.models.catalog import LoadedModel
from viz_core.models.predict import probability_function

BASELINE_HELP = {
    "blurred": "removed pixels become a strongly blurred copy of the image (sigma a tenth of "
               "the shorter side): edges and texture go, colours stay",
    "black": "removed pixels become black (RISE's deletion baseline)",
    "white": "removed pixels become white",
    "mean": "removed pixels become the image's mean colour",
}
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
# The two registered metrics (one curve computation, shared through ``inp.run``)
# --------------------------------------------------------------------------------------------
def _curves(inp, steps: int, baseline: str) -> FaithfulnessCurves:
    # the Compare page's call, argument for argument, so its cached curves answer here
    return inp.run(deletion_insertion, inp.model, inp.image, int(inp.target.class_index),
                   inp.heatmap, steps=steps, baseline=baseline)


def deletion_auc(inp, *, steps: int = DEFAULT_CURVE_STEPS,
                 baseline: str = DEFAULT_BASELINE) -> float:
    """Area under the deletion curve of ``inp.heatmap``, in [0, 1]; lower = more faithful."""
    return _curves(inp, steps, baseline).deletion_auc


def insertion_auc(inp, *, steps: int = DEFAULT_CURVE_STEPS,
                  baseline: str = DEFAULT_BASELINE) -> float:
    """Area under the insertion curve of ``inp.heatmap``, in [0, 1]; higher = more faithful."""
    return _curves(inp, steps, baseline).insertion_auc
