"""Readability numbers: spectral slope on noise of known slope, robustness by hand."""
from __future__ import annotations

import numpy as np
import pytest

from viz_core.errors import ParameterError
from viz_core.metrics.readability import (
    TRANSFORMS,
    robustness,
    robustness_transforms,
    spectral_slope,
    spectral_slopes,
    transformed,
)


def power_law_noise(a: float, size: int, seed: int) -> np.ndarray:
    """Periodic noise whose amplitude falls as 1/f^a: its power slope is -2a."""
    rng = np.random.default_rng(seed)
    f = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :])
    f[0, 0] = 1.0
    spectrum = (rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))) / f ** a
    spectrum[0, 0] = 0.0
    return np.fft.ifft2(spectrum).real


@pytest.mark.parametrize("a", [0.0, 0.5, 1.0, 1.5])
@pytest.mark.parametrize("seed", [0, 1])
def test_spectral_slope_of_power_law_noise(a, seed):
    assert spectral_slope(power_law_noise(a, 150, seed)) == pytest.approx(-2 * a, abs=0.1)


def test_spectral_slope_ignores_the_jump_between_edges():
    # a crop of a larger noise field does not tile: its edges do not match
    crop = power_law_noise(1.0, 300, 3)[:150, 20:140]
    assert spectral_slope(crop) == pytest.approx(-2.0, abs=0.1)


def test_spectral_slope_of_8bit_colour_pictures():
    grey = power_law_noise(1.0, 128, 4)
    pictures = np.stack([grey, power_law_noise(0.0, 128, 5)])
    pictures = (pictures - pictures.mean()) / pictures.std() * 40 + 128
    rgb = np.clip(np.rint(np.repeat(pictures[..., None], 3, axis=-1)), 0, 255).astype("uint8")
    slopes = spectral_slopes(rgb)
    assert slopes.shape == (2,) and slopes.dtype == np.float32
    assert slopes[0] == pytest.approx(-2.0, abs=0.15) and slopes[1] == pytest.approx(0, abs=0.15)


def test_spectral_slope_of_a_flat_picture_is_nan_and_tiny_pictures_are_refused():
    assert np.isnan(spectral_slope(np.full((32, 32, 3), 77, "uint8")))
    with pytest.raises(ParameterError, match=r"got shape \(4, 4\)"):
        spectral_slope(np.zeros((4, 4)))


def test_transforms_are_seeded_and_within_the_ranges():
    rows = robustness_transforms(33, 33, seed=0)
    assert rows.shape == (TRANSFORMS, 8)
    np.testing.assert_array_equal(rows, robustness_transforms(33, 33, seed=0))
    assert not np.array_equal(rows, robustness_transforms(33, 33, seed=1))
    a00, a01 = rows[:, 0], rows[:, 1]
    scale = 1.0 / np.hypot(a00, a01)
    degrees = np.degrees(np.arctan2(-a01, a00))
    assert np.all((scale >= 0.9 - 1e-6) & (scale <= 1.1 + 1e-6))
    assert np.all(np.abs(degrees) <= 5.0 + 1e-4)


def test_robustness_of_an_objective_that_ignores_the_picture_is_one():
    images = np.random.default_rng(0).integers(0, 256, (3, 24, 24, 3)).astype("uint8")
    ratio = robustness(lambda pics, owners: np.full(len(pics), 2.5), images, [0, 1, 2])
    np.testing.assert_array_equal(ratio, np.ones(3, "float32"))


def test_robustness_by_hand_a_filter_that_reads_the_centre_pixel():
    # The "filter" reads the centre pixel. Rotation and zoom turn about the centre, so only
    # the shift moves it: the centre of the moved picture is the pixel (16 - dy, 16 - dx) of
    # the original, inside the bright 5x5 square exactly when |dy|, |dx| <= 2.
    image = np.zeros((1, 33, 33, 3), "uint8")
    image[0, 14:19, 14:19] = 200
    rows = robustness_transforms(33, 33, seed=0)
    source_x = rows[:, 0] * 16 + rows[:, 1] * 16 + rows[:, 2]
    source_y = rows[:, 3] * 16 + rows[:, 4] * 16 + rows[:, 5]
    dx, dy = np.rint(16 - source_x), np.rint(16 - source_y)
    expected = np.mean((np.abs(dx) <= 2) & (np.abs(dy) <= 2))
    assert 0 < expected < 1  # the seed gives both cases

    def centre(pics, owners):
        return pics[:, 16, 16, 0].astype(float)

    assert robustness(centre, image, [0])[0] == pytest.approx(expected, abs=1e-6)
    moved = transformed(image, rows)
    assert moved.shape == (1, TRANSFORMS, 33, 33, 3) and moved.dtype == np.uint8


def test_robustness_of_a_silent_filter_is_nan():
    images = np.zeros((2, 16, 16, 3), "uint8")
    ratio = robustness(lambda pics, owners: np.where(np.asarray(owners) == 1, 1.0, 0.0),
                       images, [0, 1])
    assert np.isnan(ratio[0]) and ratio[1] == 1.0
