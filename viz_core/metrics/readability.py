"""Numbers that say whether a filter pattern is readable, for any method.

``robustness``
    Mean activation of the displayed 8-bit picture under 16 seeded random transformations
    (shift up to 8 px, zoom 0.9-1.1, rotation up to 5 degrees), divided by its untransformed
    activation. A texture that only works pixel-aligned (adversarial-looking stripes) scores
    well below 1; a pattern made of shapes scores near or above 1.
``spectral slope``
    Slope of the radially averaged log power spectrum against log frequency. Photographs are
    near -2 (amplitude falling as 1/f), white noise near 0: the closer to -2, the more the
    picture's detail is spread over scales the way it is in natural images.

Both are computed on the picture as displayed; neither knows how it was made.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from viz_core.errors import ParameterError
from viz_core.features.feature_vis import affine_transforms, transform

TRANSFORMS = 16
MAX_SHIFT = 8  # px
SCALES = (0.9, 1.1)
MAX_DEGREES = 5.0
EPSILON = 1e-12
_CHUNK_PIXELS = 64 * 150 * 150  # transformed pictures held at once

Activations = Callable[[np.ndarray, Sequence[int]], np.ndarray]


# -- spectral slope --------------------------------------------------------------------------
def periodic_component(grey: np.ndarray) -> np.ndarray:
    """Moisan's periodic component of a picture (the smooth jump between edges removed).

    The Fourier transform treats a picture as if it tiled the plane, so the jump between its
    opposite edges adds a spurious cross of 1/f^2 power. Subtracting the smooth component
    (Moisan, "Periodic plus smooth image decomposition", 2011) removes it without the
    blurring a window causes: measured on synthetic 1/f^a noise, the slope is within 0.1 of
    -2a with it and up to 0.3 off with a Hann window.

    Parameters
    ----------
    grey : np.ndarray
        (H, W) float.

    Returns
    -------
    np.ndarray
        (H, W) float64.
    """
    g = np.asarray(grey, "float64")
    h, w = g.shape
    jumps = np.zeros_like(g)
    jumps[0, :] += g[-1, :] - g[0, :]
    jumps[-1, :] += g[0, :] - g[-1, :]
    jumps[:, 0] += g[:, -1] - g[:, 0]
    jumps[:, -1] += g[:, 0] - g[:, -1]
    q, r = np.arange(h)[:, None], np.arange(w)[None, :]
    denominator = 2 * np.cos(2 * np.pi * q / h) + 2 * np.cos(2 * np.pi * r / w) - 4
    denominator[0, 0] = 1.0
    smooth = np.fft.fft2(jumps) / denominator
    smooth[0, 0] = 0.0
    return g - np.fft.ifft2(smooth).real


def radial_power(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of a picture (grey, centred, periodic component).

    Parameters
    ----------
    image : np.ndarray
        (H, W) or (H, W, C), any numeric range; H, W >= 8.

    Returns
    -------
    frequencies : np.ndarray
        (K,) float64, 1 .. min(H, W) // 2, in cycles per picture side.
    power : np.ndarray
        (K,) float64, mean power of the coefficients in each ring (>= 0).
    counts : np.ndarray
        (K,) int, coefficients in each ring.
    """
    grey = np.asarray(image, "float64")
    if grey.ndim == 3:
        grey = grey.mean(axis=-1)
    if grey.ndim != 2 or min(grey.shape) < 8:
        raise ParameterError(
            f"A spectral slope needs a picture of at least 8x8 pixels; got shape {grey.shape}.")
    h, w = grey.shape
    power = np.abs(np.fft.fft2(periodic_component(grey - grey.mean()))) ** 2
    side = min(h, w)  # radius in cycles per side of the shorter dimension
    fy = np.fft.fftfreq(h)[:, None] * side
    fx = np.fft.fftfreq(w)[None, :] * side
    radius = np.rint(np.sqrt(fy * fy + fx * fx)).astype(int)
    top = side // 2
    sums = np.bincount(radius.ravel(), power.ravel(), minlength=top + 1)[1:top + 1]
    counts = np.bincount(radius.ravel(), minlength=top + 1)[1:top + 1]
    return np.arange(1, top + 1, dtype="float64"), sums / np.maximum(counts, 1), counts


def spectral_slope(image: np.ndarray) -> float:
    """Slope of log power against log frequency.

    Least squares over the rings, each weighted by the square root of its number of
    coefficients (the low-frequency rings hold few and scatter most).

    Parameters
    ----------
    image : np.ndarray
        (H, W) or (H, W, C), H, W >= 8.

    Returns
    -------
    float
        About -2 for photographs and for noise with 1/f amplitude, 0 for white noise; NaN for
        a flat picture (no power at all).
    """
    freqs, power, counts = radial_power(image)
    if not np.all(power > EPSILON):
        return float("nan")
    slope = np.polyfit(np.log(freqs), np.log(power), 1, w=np.sqrt(counts))[0]
    return float(slope)


def spectral_slopes(images: np.ndarray) -> np.ndarray:
    """:func:`spectral_slope` of each picture of (N, H, W[, C]); (N,) float32."""
    return np.array([spectral_slope(image) for image in images], "float32")


# -- robustness ------------------------------------------------------------------------------
def robustness_transforms(height: int, width: int, seed: int = 0,
                          count: int = TRANSFORMS) -> np.ndarray:
    """The seeded random transformations of the robustness test.

    Returns
    -------
    np.ndarray
        (count, 8) float32 projective-transform rows (output pixel -> input pixel): integer
        shifts in [-8, 8] px, zoom uniform in [0.9, 1.1], rotation uniform in [-5, 5] degrees.
    """
    rng = np.random.default_rng([int(seed), 7919])
    shifts = rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, size=(count, 2))
    scales = rng.uniform(*SCALES, size=count)
    degrees = rng.uniform(-MAX_DEGREES, MAX_DEGREES, size=count)
    return affine_transforms(shifts, scales, degrees, height, width)


def transformed(images: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Every picture under every transformation, as 8-bit pictures again.

    Parameters
    ----------
    images : np.ndarray
        (N, H, W, C) uint8.
    transforms : np.ndarray
        (T, 8) float32 from :func:`robustness_transforms`.

    Returns
    -------
    np.ndarray
        (N, T, H, W, C) uint8; bilinear, the picture mirrored beyond its edges (so no border
        of another colour appears).
    """
    pixels = np.asarray(images)
    n, t = len(pixels), len(transforms)
    batch = tf.constant(np.repeat(pixels.astype("float32"), t, axis=0))
    rows = tf.constant(np.tile(np.asarray(transforms, "float32"), (n, 1)))
    out = transform(batch, rows, "REFLECT").numpy()
    return np.clip(np.rint(out), 0, 255).astype("uint8").reshape(n, t, *pixels.shape[1:])


def robustness(activations: Activations, images: np.ndarray, filters: Sequence[int],
               seed: int = 0, count: int = TRANSFORMS,
               base: np.ndarray | None = None) -> np.ndarray:
    """Mean activation under random transformations over the untransformed activation.

    Parameters
    ----------
    activations : callable(images (M, H, W, C) uint8, filters (M,)) -> (M,) float
        The filter's mean activation on each picture, e.g. a partial of
        :func:`viz_core.features.filters.mean_activations`.
    images : np.ndarray
        (N, H, W, C) uint8, the displayed patterns.
    filters : sequence of int, length N
    seed, count : int
        Of the transformations (the same ones for every picture).
    base : np.ndarray or None
        (N,) untransformed activations when already known.

    Returns
    -------
    np.ndarray
        (N,) float32, >= 0 for non-negative activations; NaN where the untransformed
        activation is not positive (a silent filter has no ratio).
    """
    pixels = np.asarray(images)
    if pixels.ndim != 4 or len(pixels) != len(filters):
        raise ParameterError(
            f"Give one (H, W, C) picture per filter; got {pixels.shape} for "
            f"{len(filters)} filters.")
    h, w = pixels.shape[1:3]
    rows = robustness_transforms(h, w, seed, count)
    chunk = max(1, _CHUNK_PIXELS // (h * w * count))  # bounds the float copies in memory
    moved_act = np.concatenate([
        np.asarray(activations(
            transformed(pixels[i:i + chunk], rows).reshape(-1, *pixels.shape[1:]),
            np.repeat(np.asarray(filters[i:i + chunk], "int64"), count)),
            "float64").reshape(-1, count)
        for i in range(0, len(pixels), chunk)])
    if base is None:
        base = activations(pixels, np.asarray(filters, "int64"))
    base = np.asarray(base, "float64")
    ratio = np.where(base > EPSILON, moved_act.mean(axis=1) / np.maximum(base, EPSILON), np.nan)
    return ratio.astype("float32")
