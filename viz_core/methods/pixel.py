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
  constant baseline, trapezoidal rule.
"""
from __future__ import annotations

import numpy as np

from viz_core.methods.context import PixelBatch


def saliency_map(batch: PixelBatch) -> np.ndarray:
    """Vanilla saliency (Simonyan et al.): the largest absolute pixel gradient over the colour
    channels; (N, H, W) float32."""
    _, grads = batch.gradients(batch.pixels[:, None])
    return np.abs(grads[:, 0]).max(axis=-1)


def smoothgrad_map(batch: PixelBatch, *, samples: int, noise: float, seed: int) -> np.ndarray:
    """SmoothGrad (Smilkov et al.): magnitude of the mean gradient of ``samples`` noisy copies
    (Gaussian noise, ``noise`` x 255 standard deviation, seeded: every image gets the noise
    ``numpy.random.default_rng(seed)`` draws first, so a map does not depend on its batch);
    (N, H, W) float32."""
    pixels = batch.pixels
    sigma = noise * 255.0  # noise level as a fraction of the pixel range [0, 255]
    noisy = np.stack([
        image[None] + np.random.default_rng(seed).normal(0.0, sigma, (samples,) + image.shape)
        for image in pixels]).astype("float32")
    _, grads = batch.gradients(noisy)
    # Smilkov et al.: average the gradients of the noisy copies, then take magnitudes
    return np.abs(grads.mean(axis=1)).max(axis=-1)


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
