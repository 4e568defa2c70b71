"""The perturbation methods: the model scores changed copies of one image, in batches.

* ``occlusion`` (Zeiler & Fergus 2014): the score drop when a sliding patch hides each place;
* ``rise`` (Petsiuk et al. 2018): random smooth masks weighted by the masked image's score.

Both take a :class:`viz_core.methods.context.MethodContext` (``inputs="context"``) and return an
(H, W) float32 map at the model's input resolution, signed.
"""
from __future__ import annotations

import math

import numpy as np
from skimage.transform import resize

from viz_core.errors import ParameterError
from viz_core.methods import registry as methods
from viz_core.methods.context import MethodContext


def occlusion_map(ctx: MethodContext, *, patch: int, stride: int, fill: float) -> np.ndarray:
    """Occlusion (Zeiler & Fergus 2014): the score drop when a square patch hides each place.

    The patch (``patch`` x ``patch`` model pixels, all channels set to ``fill``) moves by
    ``stride`` pixels; the last row and column of positions sit flush with the far edges, so
    every pixel is covered when ``stride <= patch``. The unoccluded image is scored in the same
    batches. A pixel's value is the mean drop ``score(image) - score(occluded)`` over the
    patches covering it (0 where none does).

    Returns
    -------
    np.ndarray
        (H, W) float32, signed.

    Raises
    ------
    ParameterError
        More than :data:`viz_core.methods.registry.MAX_PASSES` patch positions.
    """
    h, w, _ = ctx.model.info.input_shape
    ys = methods._occlusion_positions(h, patch, stride)
    xs = methods._occlusion_positions(w, patch, stride)
    corners = [(y, x) for y in ys for x in xs]
    if len(corners) > methods.MAX_PASSES:
        raise ParameterError(
            f"Occlusion with patch {patch} and stride {stride} needs {len(corners)} model passes "
            f"on this {w}x{h} input; at most {methods.MAX_PASSES}: choose a larger stride.")
    ph, pw = min(patch, h), min(patch, w)
    pixels = ctx.image.pixels.astype("float32")

    def batch(lo: int, hi: int) -> np.ndarray:
        copies = np.repeat(pixels[None], hi - lo, axis=0)
        for i, (y, x) in enumerate(corners[lo:hi]):
            copies[i, y:y + ph, x:x + pw, :] = fill
        return copies

    # the unoccluded image is scored in the same batches
    scores = ctx.image_scores(len(corners), batch, "occluded copies",
                              with_image=True).astype("float64")
    drops = ctx.image_score() - scores
    total = np.zeros((h, w))
    count = np.zeros((h, w))
    for (y, x), drop in zip(corners, drops):
        total[y:y + ph, x:x + pw] += drop
        count[y:y + ph, x:x + pw] += 1
    return (total / np.maximum(count, 1)).astype("float32")


def rise_masks(height: int, width: int, count: int, *, cells: int, keep: float, seed: int,
               start: int = 0, stop: int | None = None) -> np.ndarray:
    """RISE's random masks ``start`` to ``stop`` of ``count`` (Petsiuk et al. 2018).

    Each mask is a ``cells`` x ``cells`` grid of cells kept with probability ``keep``,
    upsampled bilinearly to ``(cells + 1)`` cell sizes and cropped at a random shift of less
    than one cell, so mask edges fall anywhere. The grids and shifts of all ``count`` masks are
    drawn first from ``numpy.random.default_rng(seed)``: a mask does not depend on how the
    masks are batched.

    Returns
    -------
    np.ndarray
        (stop - start, height, width) float32 in [0, 1].
    """
    stop = count if stop is None else stop
    rng = np.random.default_rng(seed)
    grids = rng.random((count, cells, cells)) < keep
    cell_h, cell_w = math.ceil(height / cells), math.ceil(width / cells)
    shift_y = rng.integers(0, cell_h, count)
    shift_x = rng.integers(0, cell_w, count)
    up = resize(grids[start:stop].astype("float32"),
                (stop - start, (cells + 1) * cell_h, (cells + 1) * cell_w), order=1,
                mode="reflect", anti_aliasing=False, preserve_range=True)
    masks = np.empty((stop - start, height, width), dtype="float32")
    for i, n in enumerate(range(start, stop)):
        masks[i] = up[i, shift_y[n]:shift_y[n] + height, shift_x[n]:shift_x[n] + width]
    return masks


def rise_map(ctx: MethodContext, *, masks: int, cells: int, keep: float,
             seed: int) -> np.ndarray:
    """RISE (Petsiuk et al. 2018): the masks weighted by the class score of the masked image.

    ``sum_i (s_i - mean(s)) M_i / (masks * keep)``, where ``s_i`` is the target score of the
    image multiplied by mask ``M_i`` (:func:`rise_masks`). The paper weighs by ``s_i``; taking
    off the mean score removes a near-constant ``mean(s) * E[M] / keep`` from every pixel, so
    the map does not depend on the score's offset (a logit can be negative, a single sigmoid's
    class 0 is scored by ``-logit``).

    Returns
    -------
    np.ndarray
        (H, W) float32, signed.
    """
    h, w, _ = ctx.model.info.input_shape
    pixels = ctx.image.pixels.astype("float32")
    weighted = np.zeros((h, w))
    covered = np.zeros((h, w))

    current = {}  # the batch's masks, summed once its scores are in (never all in memory)

    def batch(lo: int, hi: int) -> np.ndarray:
        current["masks"] = rise_masks(h, w, masks, cells=cells, keep=keep, seed=seed,
                                      start=lo, stop=hi)
        return pixels[None] * current["masks"][..., None]

    def scored(lo: int, hi: int, batch_scores: np.ndarray) -> None:
        nonlocal weighted, covered
        weighted += np.tensordot(batch_scores.astype("float64"), current["masks"], axes=(0, 0))
        covered += current["masks"].sum(axis=0)

    scores = ctx.image_scores(masks, batch, "masked copies", scored,
                              with_image=True).astype("float64")
    return ((weighted - scores.mean() * covered) / (masks * keep)).astype("float32")
