"""The fourier and maco parameterisations: round trips and the fixed magnitude."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from viz_core.features.feature_vis import (
    COLOR_MATRIX,
    affine_transforms,
    fourier_image,
    fourier_params,
    from_pixels,
    maco_boxes,
    maco_image,
    maco_magnitude,
    spectrum_scale,
    to_pixels,
    transform,
    transparency,
)


@pytest.mark.parametrize("shape", [(2, 16, 20, 3), (1, 15, 17, 1)])
def test_fourier_parameterisation_reproduces_a_known_image(shape):
    logits = np.random.default_rng(0).normal(size=shape).astype("float32")
    params = fourier_params(logits)
    assert params.shape == (shape[0], shape[3], shape[1], shape[2] // 2 + 1, 2)
    back = fourier_image(tf.constant(params), spectrum_scale(*shape[1:3]), shape[2]).numpy()
    np.testing.assert_allclose(back, logits, atol=1e-4)


def test_pixels_round_trip_through_colour_mixing_and_sigmoid():
    pixels = np.random.default_rng(1).uniform(5, 250, (2, 8, 8, 3)).astype("float32")
    back = to_pixels(tf.constant(from_pixels(pixels)), 3).numpy()
    np.testing.assert_allclose(back, pixels, atol=0.05)
    # the colour matrix is Lucid's, normalised so that its largest column has norm 1
    assert np.max(np.linalg.norm(COLOR_MATRIX, axis=0)) == pytest.approx(1.0)


def test_one_over_f_scale():
    scale = spectrum_scale(10, 10)
    assert scale[0, 1] == pytest.approx(10 / 0.1)  # f = 1/10 cycle per pixel
    assert scale[0, 0] == pytest.approx(10 * 10)  # the DC term: f clamped to 1/size
    assert scale[5, 5] == pytest.approx(10 / np.hypot(0.5, 0.5))


def test_maco_only_moves_the_phase():
    magnitude = maco_magnitude(16, 16, 3)
    phase = np.random.default_rng(2).uniform(-np.pi, np.pi, (2, 3, 16, 9)).astype("float32")
    logits = maco_image(tf.constant(phase), magnitude, 16).numpy()
    np.testing.assert_allclose(logits.std(axis=(1, 2, 3)), 2.0, rtol=1e-3)
    amplitude = np.abs(np.fft.rfft2(np.transpose(logits, (0, 3, 1, 2)), axes=(2, 3)))
    ratio = amplitude[:, :, 1:, 1:8] / magnitude[None, :, 1:, 1:8]  # away from self-conjugates
    np.testing.assert_allclose(ratio / ratio.mean(), 1.0, rtol=1e-3)


def test_identity_and_shift_transforms():
    image = np.arange(2 * 6 * 6 * 1, dtype="float32").reshape(2, 6, 6, 1)
    rows = affine_transforms(np.array([[0, 0], [1, 2]]), np.ones(2), np.zeros(2), 6, 6)
    out = transform(tf.constant(image), tf.constant(rows), "WRAP").numpy()
    np.testing.assert_allclose(out[0], image[0])
    np.testing.assert_allclose(out[1], np.roll(image[1], (1, 2), axis=(0, 1)))


def test_crops_inside_the_picture_and_transparency_in_unit_range():
    boxes = maco_boxes(0, 3, steps=5)
    assert boxes.shape == (5, 2, 4)
    assert np.all(boxes >= 0) and np.all(boxes <= 1)
    side = boxes[..., 2] - boxes[..., 0]
    np.testing.assert_allclose(side, boxes[..., 3] - boxes[..., 1], rtol=1e-5)
    assert np.all((side >= 0.6 - 1e-6) & (side <= 1.0))
    ramp = np.arange(100.0).reshape(10, 10)
    alpha = transparency(np.stack([ramp, np.zeros((10, 10))]), percentile=99, sigma=0)
    assert alpha.max() == 1.0 and alpha[0, 0, 0] == 0.0 and np.all(alpha[1] == 0)
    np.testing.assert_allclose(alpha[0], np.clip(ramp / np.percentile(ramp, 99), 0, 1),
                               rtol=1e-6)
    spike = np.zeros((1, 21, 21))
    spike[0, 10, 10] = 1.0
    blurred = transparency(spike, sigma=3.0)[0]
    assert blurred[10, 10] == 1.0 and blurred[10, 13] > 0.3  # spread over a few pixels
