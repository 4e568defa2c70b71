"""SHAP-style attributions: KernelSHAP over superpixels and GradientSHAP (expected gradients).

* ``kernelshap`` (Lundberg & Lee 2017): the image is cut into M superpixels
  (:func:`viz_core.methods.superpixels.superpixels`); a coalition ``z`` in {0, 1}^M shows some
  and hides the rest (filled as LIME fills them, :func:`viz_core.methods.lime.hidden_image`);
  the model scores each copy. A linear fit ``f(z) ~ phi_0 + z . phi`` weighted by the Shapley
  kernel ``pi(z) = (M - 1) / (C(M, |z|) |z| (M - |z|))``, with ``phi_0 = f(empty)`` and
  ``sum(phi) = f(x) - f(empty)`` enforced exactly, gives each superpixel its Shapley value.
  With every coalition scored (``2^M - 2 <= samples``) the values are exact; otherwise
  coalitions are drawn (seeded) with sizes in proportion to the kernel, in complementary pairs.
* ``gradientshap`` (Lundberg & Lee 2017; Erion et al. 2021, "expected gradients"): for random
  baselines ``b`` (uniform noise, or the image blurred) and a random point ``b + a (x - b)`` on
  the path to the image, ``dS/dx (x - b)`` averaged over samples; seeded.
"""
from __future__ import annotations

import math

import numpy as np
from skimage.filters import gaussian

from viz_core.methods.context import MethodContext, PixelBatch
from viz_core.methods.lime import hidden_image
from viz_core.methods.lime_options import DEFAULT_HIDE
from viz_core.methods.superpixels import superpixels


# --------------------------------------------------------------------------------------------
# KernelSHAP
# --------------------------------------------------------------------------------------------
def shapley_kernel(m: int, sizes: np.ndarray) -> np.ndarray:
    """The Shapley kernel weight of coalitions of ``sizes`` (1 .. m - 1) shown out of ``m``:
    ``(m - 1) / (C(m, s) s (m - s))``; float64, same shape as ``sizes``."""
    sizes = np.asarray(sizes)
    comb = np.array([math.comb(m, int(s)) for s in sizes.ravel()], dtype="float64")
    return ((m - 1) / (comb.reshape(sizes.shape) * sizes * (m - sizes))).astype("float64")


def coalitions(m: int, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The coalitions KernelSHAP scores, besides the empty and the full one.

    Every coalition when ``2^m - 2 <= samples``, weighted by :func:`shapley_kernel`; otherwise
    ``samples`` drawn from ``numpy.random.default_rng(seed)``: a size ``s`` with probability in
    proportion to the kernel's total weight at that size, ``1 / (s (m - s))``, then ``s``
    members at random, and the complement next to it; they then weigh the same.

    Returns
    -------
    z : np.ndarray
        (n, m) uint8 in {0, 1}: 1 where the superpixel is shown.
    weights : np.ndarray
        (n,) float64.
    """
    if m < 2:
        return np.zeros((0, m), np.uint8), np.zeros(0)
    if 2 ** m - 2 <= samples:
        codes = np.arange(1, 2 ** m - 1, dtype=np.int64)
        z = ((codes[:, None] >> np.arange(m)) & 1).astype(np.uint8)
        return z, shapley_kernel(m, z.sum(axis=1))
    rng = np.random.default_rng(seed)
    sizes = np.arange(1, m)
    chance = 1.0 / (sizes * (m - sizes))
    drawn = rng.choice(sizes, size=(samples + 1) // 2, p=chance / chance.sum())
    z = np.zeros((2 * len(drawn), m), np.uint8)
    for i, size in enumerate(drawn):
        z[2 * i, rng.permutation(m)[:size]] = 1
        z[2 * i + 1] = 1 - z[2 * i]  # the complement: pairs halve the estimate's variance
    return z[:samples], np.ones(samples)


def shapley_fit(z: np.ndarray, values: np.ndarray, weights: np.ndarray, empty: float,
                full: float) -> np.ndarray:
    """Shapley values from scored coalitions: the weighted linear fit with ``phi_0 = empty``
    and ``sum(phi) = full - empty`` exactly (the last value is eliminated).

    Parameters
    ----------
    z : (n, m) {0, 1}
    values : (n,) the scores of the coalitions
    weights : (n,) non-negative
    empty, full : the scores with nothing and everything shown

    Returns
    -------
    np.ndarray
        (m,) float64, summing to ``full - empty``.
    """
    z = np.asarray(z, dtype="float64")
    m = z.shape[1]
    total = float(full) - float(empty)
    if m == 1 or len(z) == 0:
        return np.full(m, total / max(m, 1))
    y = np.asarray(values, "float64") - float(empty) - z[:, -1] * total
    x = z[:, :-1] - z[:, -1:]
    root = np.sqrt(np.asarray(weights, "float64"))[:, None]
    head, *_ = np.linalg.lstsq(x * root, y * root[:, 0], rcond=None)
    return np.append(head, total - head.sum())


def kernelshap_map(ctx: MethodContext, *, n_superpixels: int, compactness: float,
                   samples: int, seed: int):
    """KernelSHAP over superpixels (Lundberg & Lee 2017), see the module docstring.

    Hidden superpixels are filled as LIME's default fills them (a blurred copy of the image);
    the score is :func:`viz_core.methods.heatmap.class_heatmap`'s (the logit by default).

    Returns
    -------
    raw : np.ndarray
        (H, W) float32: each superpixel painted with its signed Shapley value.
    extras : dict
        ``attribution_sum``: the values' sum; ``score_difference``: f(image) - f(all hidden)
        (equal up to rounding: efficiency is enforced).
    """
    cut = superpixels(ctx.image, n_superpixels=n_superpixels, compactness=compactness,
                      seed=seed)
    segments = cut.segments
    m = cut.count
    pixels = ctx.image.pixels.astype("float32")
    fill = hidden_image(pixels, segments, DEFAULT_HIDE)
    z, weights = coalitions(m, samples, seed)
    shown = np.concatenate([z, np.zeros((1, m), np.uint8)])  # the last row: all hidden

    def batch(lo: int, hi: int) -> np.ndarray:
        keep = shown[lo:hi][:, segments].astype(bool)[..., None]
        return np.where(keep, pixels[None], fill[None])

    scores = ctx.image_scores(len(shown), batch, "coalitions", with_image=True)
    full, empty = ctx.image_score(), float(scores[-1])
    values = shapley_fit(z, scores[:-1], weights, empty, full)
    raw = values[segments].astype("float32")
    return raw, {"attribution_sum": float(values.sum()), "score_difference": full - empty}


# --------------------------------------------------------------------------------------------
# GradientSHAP
# --------------------------------------------------------------------------------------------
def gradientshap_points(pixels: np.ndarray, *, samples: int, blur: float,
                        seed: int) -> tuple[np.ndarray, np.ndarray]:
    """GradientSHAP's baselines and the random points on the paths from them to each image.

    Every image gets what ``numpy.random.default_rng(seed)`` draws first, so a map does not
    depend on its batch: ``samples`` baselines (``blur`` 0: uniform noise in [0, 255]; above 0:
    the image blurred with a Gaussian of that sigma, in pixels), then ``samples`` path
    positions ``a`` uniform in [0, 1].

    Parameters
    ----------
    pixels : np.ndarray
        (N, H, W, C) float32 in [0, 255].

    Returns
    -------
    baselines, points : np.ndarray
        (N, samples, H, W, C) float32; ``points = baselines + a (pixels - baselines)``.
    """
    baselines, points = [], []
    for image in np.asarray(pixels, dtype="float32"):
        rng = np.random.default_rng(seed)
        if blur > 0:
            base = gaussian(image, sigma=blur, channel_axis=-1, preserve_range=True,
                            mode="nearest").astype("float32")
            base = np.repeat(base[None], samples, axis=0)
        else:
            base = rng.uniform(0.0, 255.0, (samples,) + image.shape).astype("float32")
        alpha = rng.uniform(0.0, 1.0, samples).astype("float32")[:, None, None, None]
        baselines.append(base)
        points.append(base + alpha * (image[None] - base))
    return np.stack(baselines), np.stack(points)


def gradientshap_attributions(batch: PixelBatch, *, samples: int, blur: float,
                              seed: int) -> np.ndarray:
    """(N, H, W, C) float32: ``mean_s dS/dx(point_s) (x - baseline_s)`` per channel
    (:func:`gradientshap_points`)."""
    baselines, points = gradientshap_points(batch.pixels, samples=samples, blur=blur, seed=seed)
    _, grads = batch.gradients(points)
    differences = batch.pixels[:, None].astype("float32") - baselines
    return (grads * differences).mean(axis=1, dtype="float64").astype("float32")


def gradientshap_map(batch: PixelBatch, *, samples: int, blur: float, seed: int) -> np.ndarray:
    """GradientSHAP: :func:`gradientshap_attributions` summed over the colour channels;
    (N, H, W) float32, signed."""
    return gradientshap_attributions(batch, samples=samples, blur=blur, seed=seed).sum(axis=-1)
