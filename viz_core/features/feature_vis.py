"""Filter patterns with a natural-image prior: the ``fourier`` and ``maco`` methods.

Both optimise a picture through the model's own preprocessing, like ``fast`` and ``classic``
(see :mod:`viz_core.features.ascent`, which owns the layer cut and the runs, and
:mod:`viz_core.features.filters`, the cache and the results), but they
change *what is optimised* so that the picture keeps the statistics of photographs:

``fourier`` (Olah et al., "Feature Visualization", Distill 2017; the Lucid library)
    The parameters are the picture's Fourier coefficients, each scaled by ``size / max(f,
    1/size)`` (f in cycles per pixel): a step of the same length moves low frequencies far more
    than high ones, so the ascent prefers smooth shapes over pixel-level stripes. Channels are
    mixed by Lucid's fixed colour-decorrelation matrix and squashed by a sigmoid into pixels.
    Every step the picture is shifted, scaled and rotated at random, so only a pattern that
    survives small transformations can raise the activation. Adam, step 0.05. Unlike Lucid,
    the picture is not padded with grey: a Fourier picture is periodic, so the transformations
    wrap around, and each step is 1.35x cheaper (150 px, not 174). Measured on the demo
    model's ``conv2d_4`` (16 filters, 48 steps): grey pad 8.9 median activation, wrap-around
    9.9; both put much of the structure along the picture's edges, where the model's zero
    padding makes contrast. Two ways to spread it were tried and dropped: averaging only the
    units that see no padding (half the filters never woke from the flat start) and random
    rolls over the whole period (median activation 3.1, mushy pictures).

``maco`` (Fel et al., "Unlocking Feature Visualization for Deeper Networks with MAgnitude
Constrained Optimization", NeurIPS 2023; in xplique)
    Only the Fourier *phase* is optimised; the magnitude stays a fixed natural-image spectrum
    (1/f amplitude, the average spectrum of photographs, instead of xplique's ImageNet
    spectrum, which is a download). The picture is normalised, colour-correlated and squashed
    as above; every step the model sees random crops of it, zoomed to the canvas. The absolute
    gradient of the objective with respect to the picture, summed over the steps, is MACO's
    transparency map: where the pattern matters.

Randomness (starts, transformations, crops) is drawn with numpy from ``(seed, filter index)``,
so a filter's result does not depend on its batch mates and a seed repeats a run exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf
from scipy.ndimage import gaussian_filter

# Lucid's colour decorrelation: square root of the ImageNet colour covariance (columns are
# the decorrelated directions), normalised by its largest column norm.
_COLOR_SVD_SQRT = np.array([[0.26, 0.09, 0.02],
                            [0.27, 0.00, -0.05],
                            [0.27, -0.09, 0.03]], "float32")
COLOR_MATRIX = _COLOR_SVD_SQRT / np.max(np.linalg.norm(_COLOR_SVD_SQRT, axis=0))

FOURIER_LR = 0.05  # Lucid's Adam step
FOURIER_SD = 0.01  # Lucid's start: normal noise on the scaled spectrum
FOURIER_DIVISOR = 4.0  # Lucid divides the inverse transform by 4 before the sigmoid
JITTER = 8  # largest random shift per step (px)
SCALES = (0.9, 1.1)  # random zoom per step
DEGREES = 10.0  # largest random rotation per step
MACO_LR = 0.2  # Adam step on the phase (radians)
MACO_CROPS = 2  # random crops seen per picture and step
MACO_CROP = (0.6, 1.0)  # side of a crop as a fraction of the picture's side
TRANSPARENCY_SIGMA = 3.0  # px
MACO_CONTRAST = 2.0  # logits' spread after normalisation: sigmoid(+-2) spans 0.12..0.88
GREY = 127.5
ADAM = (0.9, 0.999, 1e-8)
ID_FOURIER, ID_MACO = 101, 102  # salts: the two methods draw different random streams



# -- the parameterisation (numpy and TensorFlow agree) ---------------------------------------
def frequencies(height: int, width: int) -> np.ndarray:
    """Radial frequency of each rfft2 coefficient, in cycles per pixel.

    Returns
    -------
    np.ndarray
        (height, width // 2 + 1) float32, 0 at the DC term, at most about 0.71.
    """
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    return np.sqrt(fx * fx + fy * fy).astype("float32")


def spectrum_scale(height: int, width: int) -> np.ndarray:
    """Lucid's 1/f scale: ``sqrt(h * w) / max(f, 1 / max(h, w))``, (h, w // 2 + 1) float32."""
    f = frequencies(height, width)
    return (math.sqrt(height * width) / np.maximum(f, 1.0 / max(height, width))).astype(
        "float32")


def fourier_image(params, scale, width: int) -> tf.Tensor:
    """Picture logits from scaled Fourier coefficients.

    Parameters
    ----------
    params : tensor
        (B, C, H, W // 2 + 1, 2) float32, real and imaginary parts.
    scale : array
        (H, W // 2 + 1) float32, from :func:`spectrum_scale`.
    width : int
        W (odd or even).

    Returns
    -------
    tf.Tensor
        (B, H, W, C) float32, unbounded (before colour mixing and the sigmoid).
    """
    height = scale.shape[0]
    spectrum = tf.complex(params[..., 0], params[..., 1]) * tf.cast(scale, tf.complex64)
    image = tf.signal.irfft2d(spectrum, fft_length=[height, width])  # (B, C, H, W)
    return tf.transpose(image, (0, 2, 3, 1)) / FOURIER_DIVISOR


def fourier_params(logits: np.ndarray) -> np.ndarray:
    """The inverse of :func:`fourier_image`: coefficients that give these logits.

    Parameters
    ----------
    logits : np.ndarray
        (B, H, W, C) float.

    Returns
    -------
    np.ndarray
        (B, C, H, W // 2 + 1, 2) float32.
    """
    b, h, w, c = logits.shape
    spectrum = np.fft.rfft2(np.transpose(logits, (0, 3, 1, 2)) * FOURIER_DIVISOR, axes=(2, 3))
    spectrum = spectrum / spectrum_scale(h, w)
    return np.stack([spectrum.real, spectrum.imag], axis=-1).astype("float32")


def to_pixels(logits, channels: int):
    """Logits (B, H, W, C) to pixels in [0, 255]: colour mixing (3 channels), then sigmoid."""
    if channels == 3:
        logits = tf.tensordot(logits, tf.constant(COLOR_MATRIX.T), axes=1)
    return tf.sigmoid(logits) * 255.0


def from_pixels(pixels: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_pixels`: (B, H, W, C) pixels in (0, 255) to logits."""
    p = np.clip(np.asarray(pixels, "float64") / 255.0, 1e-6, 1 - 1e-6)
    logits = np.log(p / (1 - p))
    if logits.shape[-1] == 3:
        logits = logits @ np.linalg.inv(COLOR_MATRIX.T.astype("float64"))
    return logits.astype("float32")


def maco_magnitude(height: int, width: int, channels: int) -> np.ndarray:
    """The fixed magnitude spectrum: 1/f amplitude (photographs' average), DC term 0.

    Returns
    -------
    np.ndarray
        (channels, height, width // 2 + 1) float32.
    """
    f = frequencies(height, width)
    magnitude = 1.0 / np.maximum(f, 1.0 / max(height, width))
    magnitude[0, 0] = 0.0  # the mean is set by the normalisation, not by the phase
    return np.repeat(magnitude[None], channels, axis=0).astype("float32")


def maco_image(phase, magnitude, width: int) -> tf.Tensor:
    """Picture logits from phases under a fixed magnitude, normalised per picture.

    Parameters
    ----------
    phase : tensor
        (B, C, H, W // 2 + 1) float32, radians.
    magnitude : array
        (C, H, W // 2 + 1) float32.

    Returns
    -------
    tf.Tensor
        (B, H, W, C) float32 with mean 0 and standard deviation ``MACO_CONTRAST``.
    """
    height = magnitude.shape[1]
    spectrum = tf.complex(tf.cos(phase), tf.sin(phase)) * tf.cast(magnitude, tf.complex64)
    image = tf.transpose(tf.signal.irfft2d(spectrum, fft_length=[height, width]), (0, 2, 3, 1))
    image = image - tf.reduce_mean(image, axis=[1, 2, 3], keepdims=True)
    std = tf.math.reduce_std(image, axis=[1, 2, 3], keepdims=True)
    return image / (std + 1e-5) * MACO_CONTRAST


# -- random transformations ------------------------------------------------------------------
def affine_transforms(shifts: np.ndarray, scales: np.ndarray, degrees: np.ndarray,
                      height: int, width: int) -> np.ndarray:
    """Projective-transform rows (output pixel -> input pixel) about the picture's centre.

    Parameters
    ----------
    shifts : np.ndarray
        (N, 2) float, (dy, dx) in pixels.
    scales, degrees : np.ndarray
        (N,) float: zoom (>1 enlarges the content) and rotation.

    Returns
    -------
    np.ndarray
        (N, 8) float32, the layout of ``tf.raw_ops.ImageProjectiveTransformV3``.
    """
    theta = np.deg2rad(np.asarray(degrees, "float64"))
    inv = 1.0 / np.asarray(scales, "float64")
    a00, a01 = inv * np.cos(theta), -inv * np.sin(theta)
    a10, a11 = inv * np.sin(theta), inv * np.cos(theta)
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    dy, dx = np.asarray(shifts, "float64").T
    a2 = cx - a00 * cx - a01 * cy - dx
    b2 = cy - a10 * cx - a11 * cy - dy
    zeros = np.zeros_like(a00)
    return np.stack([a00, a01, a2, a10, a11, b2, zeros, zeros], axis=1).astype("float32")


def transform(images, transforms, fill_mode: str = "CONSTANT", fill_value: float = GREY):
    """Apply (N, 8) transforms to (N, H, W, C) float images, bilinear (differentiable)."""
    shape = tf.shape(images)[1:3]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=shape,
        fill_value=tf.constant(fill_value, tf.float32), interpolation="BILINEAR",
        fill_mode=fill_mode)


def _rng(seed: int, index: int, salt: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(index), salt])


def fourier_draws(seed: int, index: int, steps: int, canvas: tuple[int, int]) -> np.ndarray:
    """One filter's start and per-step transformations, from (seed, index) only.

    Returns
    -------
    np.ndarray
        (steps, 8) float32 transforms for a picture of side ``canvas``.
    """
    rng = _rng(seed, index, ID_FOURIER)
    rng.normal(size=1)  # the start is drawn by fourier_start from its own generator
    shifts = rng.integers(-JITTER, JITTER + 1, size=(steps, 2))
    scales = rng.uniform(*SCALES, size=steps)
    degrees = rng.uniform(-DEGREES, DEGREES, size=steps)
    return affine_transforms(shifts, scales, degrees, *canvas)


def fourier_start(seed: int, index: int, shape: tuple[int, ...]) -> np.ndarray:
    """Lucid's start: normal noise with sd 0.01 on the coefficients, shape (C, H, Wf, 2)."""
    return (np.random.default_rng([int(seed), int(index), ID_FOURIER, 0]).normal(size=shape)
            * FOURIER_SD).astype("float32")


def maco_start(seed: int, index: int, shape: tuple[int, ...]) -> np.ndarray:
    """Random phases in [-pi, pi), shape (C, H, Wf)."""
    rng = np.random.default_rng([int(seed), int(index), ID_MACO, 0])
    return rng.uniform(-np.pi, np.pi, size=shape).astype("float32")


def maco_boxes(seed: int, index: int, steps: int) -> np.ndarray:
    """Random crops, (steps, MACO_CROPS, 4) float32 as (y1, x1, y2, x2) in [0, 1]."""
    rng = _rng(seed, index, ID_MACO)
    side = rng.uniform(*MACO_CROP, size=(steps, MACO_CROPS, 1))
    corner = rng.uniform(size=(steps, MACO_CROPS, 2)) * (1.0 - side)
    return np.concatenate([corner, corner + side], axis=-1).astype("float32")


# -- compiled steps --------------------------------------------------------------------------
def _adam(param, grad, m, v, t, lr):
    """One Adam ascent step (elementwise, so images in a batch stay independent)."""
    b1, b2, eps = ADAM
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * tf.square(grad)
    m_hat = m / (1 - tf.pow(b1, t))
    v_hat = v / (1 - tf.pow(b2, t))
    return param + lr * m_hat / (tf.sqrt(v_hat) + eps), m, v


def _rms(grad):
    axes = list(range(1, len(grad.shape)))
    return tf.sqrt(tf.reduce_mean(tf.square(grad), axis=axes))


def fourier_step(activation: Callable, canvas: tuple[int, int], channels: int):
    """Compiled ``fourier`` step.

    Parameters
    ----------
    activation : callable
        Pixels (B, H', W', C) in [0, 255] -> (B, h, w, K) activations of the layer.
    canvas : (H, W)
        Side of the optimised picture.

    Returns
    -------
    callable
        ``step(params, m, v, t, transforms, indices) -> (loss (B,), params, m, v, rms (B,))``.
    """
    h, w = canvas
    scale = spectrum_scale(h, w)
    params = tf.TensorSpec((None, channels, h, w // 2 + 1, 2), tf.float32)

    @tf.function(input_signature=[params, params, params, tf.TensorSpec((), tf.float32),
                                  tf.TensorSpec((None, 8), tf.float32),
                                  tf.TensorSpec((None,), tf.int32)])
    def step(p, m, v, t, transforms, indices):
        with tf.GradientTape() as tape:
            tape.watch(p)
            pixels = to_pixels(fourier_image(p, scale, w), channels)
            seen = transform(pixels, transforms, "WRAP")
            act = tf.gather(activation(seen), indices, axis=3, batch_dims=1)
            loss = tf.reduce_mean(act, axis=[1, 2])
        grad = tape.gradient(loss, p)
        p, m, v = _adam(p, grad, m, v, t, FOURIER_LR)
        return loss, p, m, v, _rms(grad)

    return step


def fourier_render(canvas: tuple[int, int], channels: int):
    """Compiled parameters (B, C, H, Wf, 2) -> pixels (B, H, W, C) in [0, 255]."""
    scale = spectrum_scale(*canvas)
    w = canvas[1]

    @tf.function(input_signature=[tf.TensorSpec(
        (None, channels, canvas[0], canvas[1] // 2 + 1, 2), tf.float32)])
    def render(p):
        return to_pixels(fourier_image(p, scale, w), channels)

    return render


def maco_step(activation: Callable, canvas: tuple[int, int], channels: int):
    """Compiled ``maco`` step.

    Returns
    -------
    callable
        ``step(phase, m, v, t, boxes, indices) -> (loss (B,), phase, m, v, rms (B,),
        saliency (B, H, W))`` where ``boxes`` is (B * MACO_CROPS, 4) and ``saliency`` the
        absolute gradient with respect to the picture, summed over channels.
    """
    h, w = canvas
    magnitude = maco_magnitude(h, w, channels)
    phase = tf.TensorSpec((None, channels, h, w // 2 + 1), tf.float32)

    @tf.function(input_signature=[phase, phase, phase, tf.TensorSpec((), tf.float32),
                                  tf.TensorSpec((None, 4), tf.float32),
                                  tf.TensorSpec((None,), tf.int32)])
    def step(p, m, v, t, boxes, indices):
        count = tf.shape(p)[0]
        owners = tf.repeat(tf.range(count), MACO_CROPS)
        with tf.GradientTape() as tape:
            tape.watch(p)
            pixels = to_pixels(maco_image(p, magnitude, w), channels)
            crops = tf.image.crop_and_resize(pixels, boxes, owners, (h, w))
            act = tf.gather(activation(crops), tf.gather(indices, owners), axis=3,
                            batch_dims=1)
            loss = tf.reduce_mean(tf.reshape(tf.reduce_mean(act, axis=[1, 2]),
                                             (count, MACO_CROPS)), axis=1)
        grad, saliency = tape.gradient(loss, [p, pixels])
        p, m, v = _adam(p, grad, m, v, t, MACO_LR)
        return loss, p, m, v, _rms(grad), tf.reduce_sum(tf.abs(saliency), axis=-1)

    return step


def maco_render(canvas: tuple[int, int], channels: int):
    """Compiled phases (B, C, H, Wf) -> pixels (B, H, W, C) in [0, 255]."""
    magnitude = maco_magnitude(*canvas, channels)

    @tf.function(input_signature=[tf.TensorSpec(
        (None, channels, canvas[0], canvas[1] // 2 + 1), tf.float32)])
    def render(p):
        return to_pixels(maco_image(p, magnitude, canvas[1]), channels)

    return render


# -- the runs --------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Run:
    """What a run hands back to :mod:`viz_core.features.ascent`.

    Attributes
    ----------
    shown : np.ndarray
        (N, H, W, C) float32 in [0, 1], the pictures.
    trace : np.ndarray
        (N, steps) float32, the objective before each step (on the transformed picture).
    dead : np.ndarray
        (N,) bool, the gradient was exactly zero at every step.
    alpha : np.ndarray or None
        (N, H, W) float32 in [0, 1], MACO's transparency map (None for ``fourier``).
    """

    shown: np.ndarray
    trace: np.ndarray
    dead: np.ndarray
    alpha: np.ndarray | None = None


def _chunks(filters: Sequence[int], batch: int):
    for b0 in range(0, len(filters), batch):
        yield filters[b0:b0 + batch]


def _label(chunk: Sequence[int]) -> str:
    return f"filters {chunk[0]}..{chunk[-1]}" if len(chunk) > 1 else f"filter {chunk[0]}"


def run_fourier(step, render, filters: Sequence[int], canvas: tuple[int, int], channels: int,
                steps: int, seed: int, ticker, batch: int) -> Run:
    """Optimise ``filters`` in batches of ``batch`` with a compiled :func:`fourier_step`."""
    h, w = canvas
    shown, traces, dead = [], [], []
    for chunk in _chunks(list(filters), batch):
        p = np.stack([fourier_start(seed, i, (channels, h, w // 2 + 1, 2)) for i in chunk])
        m, v = np.zeros_like(p), np.zeros_like(p)
        draws = np.stack([fourier_draws(seed, i, steps, canvas) for i in chunk], axis=1)
        indices = np.asarray(chunk, "int32")
        trace = np.zeros((len(chunk), steps), "float32")
        alive = np.zeros(len(chunk), bool)
        for i in range(steps):
            ticker.check()
            loss, p, m, v, rms = step(p, m, v, tf.constant(i + 1.0), draws[i], indices)
            trace[:, i], alive = loss.numpy(), alive | (rms.numpy() > 0.0)
            ticker.tick(len(chunk), f"{_label(chunk)}, step {i + 1}/{steps}")
        shown.append(render(p).numpy() / 255.0)
        traces.append(trace)
        dead.append(~alive)
    return Run(np.concatenate(shown).astype("float32"), np.concatenate(traces),
               np.concatenate(dead))


def run_maco(step, render, filters: Sequence[int], canvas: tuple[int, int], channels: int,
             steps: int, seed: int, ticker, batch: int) -> Run:
    """Optimise ``filters`` in batches of ``batch`` with a compiled :func:`maco_step`."""
    h, w = canvas
    shown, traces, dead, alphas = [], [], [], []
    for chunk in _chunks(list(filters), batch):
        p = np.stack([maco_start(seed, i, (channels, h, w // 2 + 1)) for i in chunk])
        m, v = np.zeros_like(p), np.zeros_like(p)
        boxes = np.stack([maco_boxes(seed, i, steps) for i in chunk], axis=1)  # (S, B, K, 4)
        indices = np.asarray(chunk, "int32")
        trace = np.zeros((len(chunk), steps), "float32")
        alive = np.zeros(len(chunk), bool)
        saliency = np.zeros((len(chunk), h, w), "float64")
        for i in range(steps):
            ticker.check()
            loss, p, m, v, rms, sal = step(p, m, v, tf.constant(i + 1.0),
                                           boxes[i].reshape(-1, 4), indices)
            trace[:, i], alive = loss.numpy(), alive | (rms.numpy() > 0.0)
            saliency += sal.numpy()
            ticker.tick(len(chunk), f"{_label(chunk)}, step {i + 1}/{steps}")
        shown.append(render(p).numpy() / 255.0)
        alphas.append(transparency(saliency))
        traces.append(trace)
        dead.append(~alive)
    return Run(np.concatenate(shown).astype("float32"), np.concatenate(traces),
               np.concatenate(dead), np.concatenate(alphas))


def transparency(saliency: np.ndarray, percentile: float = 95.0,
                 sigma: float = TRANSPARENCY_SIGMA) -> np.ndarray:
    """MACO's transparency map from accumulated absolute gradients.

    Parameters
    ----------
    saliency : np.ndarray
        (N, H, W) float, non-negative.
    percentile : float
        Each map is divided by this percentile of its values.
    sigma : float
        Gaussian blur in pixels first. Pixel gradients are spiky: unblurred, the demo model's
        maps left isolated opaque dots on a transparent picture.

    Returns
    -------
    np.ndarray
        (N, H, W) float32 in [0, 1]: each map blurred, divided by its ``percentile`` (so a few
        extreme pixels do not make the rest transparent), clipped; zeros for a silent filter.
    """
    s = np.asarray(saliency, "float64")
    if sigma > 0:
        s = gaussian_filter(s, sigma=(0, sigma, sigma), mode="wrap")  # the picture is periodic
    top = np.percentile(s.reshape(len(s), -1), percentile, axis=1)[:, None, None]
    return np.clip(s / np.where(top > 0, top, 1.0), 0.0, 1.0).astype("float32")
