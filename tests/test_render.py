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
    full = overlay_heatmap(image, heat, opacity=1.0, colormap="gray", blend="uniform")
    assert tuple(full[20, 2]) == (0, 0, 0)  # uniform: "no evidence" is painted black
    assert tuple(overlay_heatmap(image, heat, opacity=1.0, colormap="gray")[20, 2]) == (
        100, 100, 100)  # heat blend (the default): untouched where the map is 0


def test_heat_blend_covers_the_photo_in_proportion_to_the_heat():
    image = np.full((1, 3, 3), 100, dtype=np.uint8)
    heat = np.array([[0.0, 0.5, 1.0]], dtype="float32")
    grey = apply_colormap(heat, "gray").astype("float32")[0, :, 0]  # the colours themselves
    out = overlay_heatmap(image, heat, colormap="gray")  # default: opacity 1 at the top
    expected = [100, 100 * 0.5 + grey[1] * 0.5, grey[2]]
    np.testing.assert_allclose(out[0, :, 0], expected, atol=1)
    assert out[0, 2, 0] == 255  # fully coloured at the top
    half = overlay_heatmap(image, heat, opacity=0.5, colormap="gray")
    np.testing.assert_allclose(half[0, :, 0], [100, 100 * 0.75 + grey[1] * 0.25,
                                               100 * 0.5 + 255 * 0.5], atol=1)
    # uniform keeps the old default of 0.5 everywhere
    uniform = overlay_heatmap(image, heat, colormap="gray", blend="uniform")
    np.testing.assert_allclose(uniform[0, :, 0], 100 * 0.5 + grey * 0.5, atol=1)
    with pytest.raises(ParameterError, match="blend"):
        overlay_heatmap(image, heat, blend="screen")


def test_heat_blend_colour_bar_fades_into_the_ground_at_the_low_end():
    bar = colorbar("gray", length=11, thickness=2, vertical=False, blend="heat")
    assert bar.shape == (2, 11, 3)
    assert tuple(bar[0, 0]) == (224, 224, 224)  # no heat: the ground (the photo) itself
    assert tuple(bar[0, -1]) == (255, 255, 255)  # top: the colour itself
    # the middle: half ground, half colour (gray at 0.5 is ~128)
    assert abs(int(bar[0, 5, 0]) - round(224 * 0.5 + 127.5 * 0.5)) <= 1


def test_png_bytes_round_trip_and_colorbar():
    img = apply_colormap(np.linspace(0, 1, 20).reshape(4, 5), "magma")
    decoded = np.asarray(Image.open(io.BytesIO(png_bytes(img))))
    np.testing.assert_array_equal(decoded, img)
    bar = colorbar("gray", length=10, thickness=3)
    assert bar.shape == (10, 3, 3) and bar[0, 0, 0] == 255 and bar[-1, 0, 0] == 0
