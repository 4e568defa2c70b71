"""Rendering: colour lookup, normalisation, overlays at original resolution, PNG bytes."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from viz_core.errors import ParameterError
from viz_core.render import apply_colormap, colorbar, normalize, overlay_heatmap, png_bytes


def test_colormap_ends_match_known_colours():
    assert tuple(apply_colormap(np.array([0.0]), "gray")[0]) == (0, 0, 0)
    assert tuple(apply_colormap(np.array([1.0]), "gray")[0]) == (255, 255, 255)
    # viridis starts dark purple (68, 1, 84) and ends yellow (253, 231, 37)
    assert tuple(apply_colormap(np.array([0.0, 1.0]), "viridis")[0]) == (68, 1, 84)
    assert tuple(apply_colormap(np.array([0.0, 1.0]), "viridis")[1]) == (253, 231, 37)
    with pytest.raises(ParameterError, match="Unknown colour map 'rainbowz'"):
        apply_colormap(np.zeros(2), "rainbowz")


def test_normalize_constant_is_flat_not_nan():
    assert np.all(normalize(np.full((3, 3), 7.0)) == 0.0)
    np.testing.assert_allclose(normalize(np.array([1.0, 2.0, 3.0])), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(normalize(np.array([0.0, 5.0, 10.0]), 0, 20), [0.0, 0.25, 0.5])


def test_overlay_blends_at_image_resolution_and_respects_threshold():
    image = np.full((40, 60, 3), 100, dtype=np.uint8)
    heat = np.zeros((4, 6), dtype="float32")
    heat[:, 3:] = 1.0
    out = overlay_heatmap(image, heat, opacity=0.5, colormap="gray", threshold=0.5)
    assert out.shape == (40, 60, 3)
    assert tuple(out[20, 2]) == (100, 100, 100)  # below threshold: untouched
    assert tuple(out[20, 58]) == (178, 178, 178)  # 0.5 * 100 + 0.5 * 255 = 177.5
    full = overlay_heatmap(image, heat, opacity=1.0, colormap="gray")
    assert tuple(full[20, 2]) == (0, 0, 0)


def test_png_bytes_round_trip_and_colorbar():
    img = apply_colormap(np.linspace(0, 1, 20).reshape(4, 5), "magma")
    decoded = np.asarray(Image.open(io.BytesIO(png_bytes(img))))
    np.testing.assert_array_equal(decoded, img)
    bar = colorbar("gray", length=10, thickness=3)
    assert bar.shape == (10, 3, 3) and bar[0, 0, 0] == 255 and bar[-1, 0, 0] == 0
