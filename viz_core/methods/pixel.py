"""The pixel-gradient methods: gradients of the class score with respect to the *pixels*.

The gradient runs through :func:`viz_core.models.preprocess.preprocessing_function`, so the map
lives in the image's space whatever the model's preprocessing. Each function takes a
:class:`viz_core.methods.context.PixelBatch` (``inputs="pixel-gradients"`` in the registry): a
stack of N images, each with its own target, whose changed copies go through the model together
in batches; one image is a stack of one. Each returns an (N, H, W) float32 map (and, for
Integrated Gradients, per-image extras).

* ``saliency`` (Simonyan et al. 2014): the largest absolute gradient over the colour channels;
* ``smoothgrad`` (Smilkov et al. 2017): the mean gradient of noisy copies, then its magnitude;
* ``integrated_gradients`` (Sundararajan et al. 2017): gradients along a straight path from a
  constant baseline, trapezoidal rule;
* ``input_x_gradient`` (Shrikumar et al. 2016): the model's input times the score's gradient
  with respect to it, summed over channels;
* ``vargrad`` (Adebayo et al. 2018) and ``squaregrad`` (Hooker et al. 2019): the variance and the
  mean square of the gradients of SmoothGrad's noisy copies (:func:`noisy_copies`).
"""
from __future__ import annotations

import numpy as np

from viz_core.methods.context import PixelBatch
from viz_core.models.preprocess import preprocess


def saliency_map(batch: PixelBatch) -> np.ndarray:
    """Vanilla saliency (Simonyan et al.): the largest absolute pixel gradient over the colour
    channels; (N, H, W) float32."""
    _, grads = batch.gradients(batch.pixels[:, None])
    return np.abs(grads[:, 0]).max(axis=-1)


def noisy_copies(pixels: np.ndarray, *, samples: int, noise: float, seed: int) -> np.ndarray:
    """``samples`` noisy copies of each image, for SmoothGrad, VarGrad and SquareGrad.

    Gaussian noise of standard deviation ``noise`` x 255, seeded: every image gets the noise
    ``numpy.random.default_rng(seed)`` draws first, so a map does not depend on its batch.

    Parameters
    ----------
    pixels : np.ndarray
        (N, H, W, C) float32 in [0, 255].

    Returns
    -------
    np.ndarray
        (N, samples, H, W, C) float32 (not clipped: the noise may leave [0, 255]).
    """
    sigma = noise * 255.0  # noise level as a fraction of the pixel range [0, 255]
    return np.stack([
        image[None] + np.random.default_rng(seed).normal(0.0, sigma, (samples,) + image.shape)
        for image in pixels]).astype("float32")


def smoothgrad_map(batch: PixelBatch, *, samples: int, noise: float, seed: int) -> np.ndarray:
    """SmoothGrad (Smilkov et al.): magnitude of the mean gradient of ``samples`` noisy copies
    (:func:`noisy_copies`); (N, H, W) float32."""
    _, grads = batch.gradients(noisy_copies(batch.pixels, samples=samples, noise=noise,
                                            seed=seed))
    # Smilkov et al.: average the gradients of the noisy copies, then take magnitudes
    return np.abs(grads.mean(axis=1)).max(axis=-1)


def vargrad_map(batch: PixelBatch, *, samples: int, noise: float, seed: int) -> np.ndarray:
    """VarGrad (Adebayo et al. 2018): the variance of the noisy copies' gradients (the copies
    of :func:`noisy_copies`, population variance), summed over the colour channels;
    (N, H, W) float32, non-negative."""
    _, grads = batch.gradients(noisy_copies(batch.pixels, samples=samples, noise=noise,
                                            seed=seed))
    return grads.var(axis=1, dtype="float64").sum(axis=-1).astype("float32")


def squaregrad_map(batch: PixelBatch, *, samples: int, noise: float, seed: int) -> np.ndarray:
    """SquareGrad (Hooker et al. 2019): the mean of the noisy copies' squared gradients (the
    copies of :func:`noisy_copies`), summed over the colour channels; (N, H, W) float32,
    non-negative."""
    _, grads = batch.gradients(noisy_copies(batch.pixels, samples=samples, noise=noise,
                                            seed=seed))
    return np.square(grads, dtype="float64").mean(axis=1).sum(axis=-1).astype("float32")


def input_affine(preprocessing: str, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """The model's preprocessing as one pixel's affine map ``x = A p + b``.

    Every named preprocessing (:mod:`viz_core.models.preprocess`) treats each pixel alone
    (scaling, mean subtraction, RGB -> BGR), so ``A`` and ``b`` are read by preprocessing the
    zero pixel and the unit pixels.

    Returns
    -------
    A : np.ndarray
        (C, C) float64, ``A[i, j] = dx_i / dp_j``.
    b : np.ndarray
        (C,) float64, the model input of a black pixel.
    """
    probes = np.concatenate([np.zeros((1, channels)), np.eye(channels)])
    x = preprocess(preprocessing, probes[None, None].astype("float32"))[0, 0].astype("float64")
    return (x[1:] - x[0]).T, x[0]


def input_x_gradient_map(batch: PixelBatch) -> np.ndarray:
    """Input x Gradient (Shrikumar et al. 2016; Ancona et al. 2018) on the model's input:
    ``sum_c x_c dS/dx_c``, with ``x`` the *preprocessed* image the model reads (so a mean
    subtracted by the preprocessing counts as zero input).

    The gradient is taken with respect to the pixels and carried to the model's input through
    the preprocessing's affine map (:func:`input_affine`): ``dS/dx = A^-T dS/dp``. For a
    bias-free ReLU network the map sums to the score.

    Returns
    -------
    np.ndarray
        (N, H, W) float32, signed.
    """
    _, grads = batch.gradients(batch.pixels[:, None])
    a, b = input_affine(batch.model.preprocessing, batch.pixels.shape[-1])
    inputs = batch.pixels.astype("float64") @ a.T + b
    input_grads = grads[:, 0].astype("float64") @ np.linalg.inv(a)  # rows: (A^-T g)^T = g^T A^-1
    return (inputs * input_grads).sum(axis=-1).astype("float32")


def integrated_gradients_map(batch: PixelBatch, *, steps: int, baseline: float):
    """Integrated Gradients (Sundararajan et al.), trapezoidal rule over ``steps`` steps from a
    constant ``baseline`` image.

    Returns
    -------
    raw : np.ndarray
        (N, H, W) float32, the absolute attributions summed over colour channels.
    extras : dict
        ``attribution_sum`` (N,): the signed sum of all attributions of each image, and
        ``score_difference`` (N,): score(image) - score(baseline); completeness says they agree
        as ``steps`` grows.
    """
    x = batch.pixels.astype("float32")
    base = np.full_like(x, baseline)
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype="float32")
    path = base[:, None] + alphas[None, :, None, None, None] * (x - base)[:, None]
    scores, grads = batch.gradients(path)
    # Trapezoidal rule over the straight path from the baseline to the image
    avg = (grads[:, 0] / 2 + grads[:, 1:-1].sum(axis=1) + grads[:, -1] / 2) / steps
    attributions = (x - base) * avg
    extras = {
        "attribution_sum": attributions.astype("float64").sum(axis=(1, 2, 3)),
        "score_difference": scores[:, -1].astype("float64") - scores[:, 0].astype("float64"),
    }
    return np.abs(attributions).sum(axis=-1), extras
