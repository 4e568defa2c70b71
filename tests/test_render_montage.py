"""Channel montages: the tile of channel k holds channel k, scaling, constant and dead channels."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from viz_core.errors import ParameterError
from viz_core.render import apply_colormap, normalize
from viz_core.render.colormaps import lookup_table
from viz_core.render.montage import (
    DEAD_COLOR,
    channel_order,
    montage,
    plotly_colorscale,
    shared_range,
    zip_bytes,
)


def tile(m, position):
    x0, y0, x1, y1 = m.tile_box(position)
    return m.image[y0:y1, x0:x1]


def hot_pixels(channels=20, size=5):
    """Channel k is zero except one pixel of value k + 1 at (k % size, (2 * k) % size)."""
    values = np.zeros((size, size, channels), dtype="float32")
    for k in range(channels):
        values[k % size, (2 * k) % size, k] = k + 1
    return values


def test_tile_of_channel_k_holds_channel_k():
    values = hot_pixels()
    m = montage(values, per_row=16, gap=1, colormap="viridis")
    low, high = lookup_table("viridis")[0], lookup_table("viridis")[255]
    for k in range(values.shape[2]):
        t = tile(m, k)
        hot = np.argwhere(np.all(t == high, axis=-1))
        assert hot.tolist() == [[k % 5, (2 * k) % 5]], k
        assert np.all(t == high, axis=-1).sum() == 1 and np.all(t == low, axis=-1).sum() == 24
        assert m.channel_at(m.tile_box(k)[0] + 2, m.tile_box(k)[1] + 2) == k


def test_each_tile_equals_the_foundation_colormap_of_that_channel(rng):
    values = rng.normal(size=(7, 9, 12)).astype("float32")
    m = montage(values, per_row=5, colormap="magma")
    for k in range(12):
        expected = apply_colormap(normalize(values[:, :, k]), "magma")
        np.testing.assert_array_equal(tile(m, k), expected)


def test_sorted_by_mean_highest_first():
    values = hot_pixels(channels=6)
    values[:, :, 2] += 10.0  # channel 2 now has the highest mean
    order = channel_order(values, "mean")
    assert order.tolist() == [2, 5, 4, 3, 1, 0]
    m = montage(values, sort="mean")
    assert m.order.tolist() == order.tolist()
    assert m.channel_at(*m.tile_box(0)[:2]) == 2
    # position 1 holds channel 5: its hot pixel (value 6) is at (0, 0)
    assert np.all(tile(m, 1)[5 % 5, (2 * 5) % 5] == lookup_table("viridis")[255])


def test_layout_separators_and_empty_cells():
    values = np.ones((3, 3, 20), dtype="float32") * np.arange(20, dtype="float32")
    m = montage(values, per_row=16, gap=1, scale="layer", gap_color=(255, 0, 255))
    assert m.image.shape == (2 * 4 - 1, 16 * 4 - 1, 3) and m.image.dtype == np.uint8
    assert m.rows == 2
    assert np.all(m.image[3, :] == (255, 0, 255))  # horizontal separator
    assert np.all(m.image[:, 3] == (255, 0, 255))  # vertical separator
    assert np.all(m.image[4:, 4 * 4:] == (255, 0, 255))  # cells 20..31 are empty
    assert m.channel_at(3, 0) is None and m.channel_at(4 * 4 + 1, 5) is None
    no_gap = montage(values, per_row=4, gap=0)
    assert no_gap.image.shape == (5 * 3, 4 * 3, 3)


def test_shared_scale_versus_per_channel_scale():
    values = np.zeros((2, 2, 2), dtype="float32")
    values[0, 0, 0] = 1.0  # channel 0 spans 0..1
    values[0, 0, 1] = 10.0  # channel 1 spans 0..10
    lut = lookup_table("gray")
    own = montage(values, scale="channel", colormap="gray")
    assert np.all(tile(own, 0)[0, 0] == lut[255]) and np.all(tile(own, 1)[0, 0] == lut[255])
    shared = montage(values, scale="layer", colormap="gray")
    assert np.all(tile(shared, 0)[0, 0] == lut[26])  # round(1 / 10 * 255)
    assert np.all(tile(shared, 1)[0, 0] == lut[255])
    assert shared.low.tolist() == [0.0, 0.0] and shared.high.tolist() == [10.0, 10.0]
    wider = montage(values, scale="layer", value_range=(0.0, 20.0), colormap="gray")
    assert np.all(tile(wider, 1)[0, 0] == lut[128])  # round(10 / 20 * 255) = 128
    assert shared_range(values, values * 2 - 3) == (-3.0, 17.0)  # 10 * 2 - 3


def test_constant_and_dead_channels_are_flat_never_nan():
    values = np.zeros((6, 6, 3), dtype="float32")
    values[:, :, 0] = 5.0  # constant, not dead
    values[:, :, 2] = np.arange(36, dtype="float32").reshape(6, 6)
    lut = lookup_table("viridis")
    m = montage(values, scale="channel")
    assert m.dead.tolist() == [False, True, False]
    assert np.all(tile(m, 0) == lut[0])  # constant: flat low end
    dead = tile(m, 1)
    assert np.all(dead[0] == DEAD_COLOR) and np.all(dead[:, -1] == DEAD_COLOR)
    assert np.all(dead[1:-1, 1:-1] == lut[0])
    plain = montage(values, scale="channel", flag_dead=False)
    assert np.all(tile(plain, 1) == lut[0])
    layer = montage(values, scale="layer")  # layer range 0..35: 5 -> round(5/35*255) = 36
    assert np.all(tile(layer, 0) == lut[36])
    everything_zero = montage(np.zeros((4, 4, 2), dtype="float32"), flag_dead=False)
    assert np.all(everything_zero.image[:, :4] == lut[0])


def test_tile_resizing_up_is_nearest_and_down_keeps_flat_maps_flat():
    values = np.array([[0.0, 1.0], [1.0, 0.0]], dtype="float32")[:, :, None]
    m = montage(values, tile=4, colormap="gray")
    expected = np.kron(values[:, :, 0], np.ones((2, 2)))
    np.testing.assert_array_equal(m.image[:, :, 0], (expected * 255).astype("uint8"))
    big = np.zeros((40, 40, 2), dtype="float32")
    big[:20, :, 0] = 1.0  # top half bright
    small = montage(big, tile=(10, 10), colormap="gray", flag_dead=False)
    assert small.tile == (10, 10) and small.image.shape == (10, 21, 3)
    assert np.all(small.image[:4, :10, 0] == 255) and np.all(small.image[6:, :10, 0] == 0)
    odd = montage(big, tile=(15, 15), colormap="gray", flag_dead=False)  # 40 -> 20 -> 15
    assert np.all(odd.image[:6, :15, 0] == 255) and np.all(odd.image[9:, :15, 0] == 0)


def test_shrinking_by_a_whole_factor_is_the_block_average(rng):
    values = rng.random((24, 24, 3)).astype("float32")
    m = montage(values, tile=6, scale="layer", value_range=(0.0, 1.0), colormap="gray")
    means = values.reshape(6, 4, 6, 4, 3).mean(axis=(1, 3))  # independent area average
    expected = np.rint(means[:, :, 1] * 255).astype("uint8")
    np.testing.assert_allclose(tile(m, 1)[:, :, 0].astype(int), expected.astype(int), atol=1)


def test_terrain_like_the_tutorial_and_bad_parameters():
    values = hot_pixels(channels=3)
    m = montage(values, colormap="terrain")
    assert np.all(tile(m, 0)[0, 0] == lookup_table("terrain")[255])
    with pytest.raises(ParameterError, match="'rainbowz'"):
        montage(values, colormap="rainbowz")
    with pytest.raises(ParameterError, match="got 0"):
        montage(values, per_row=0)
    with pytest.raises(ParameterError, match="'linear'"):
        montage(values, scale="linear")
    with pytest.raises(ParameterError, match=r"\(5, 5\)"):
        montage(values[:, :, 0])
    with pytest.raises(ParameterError, match="'size'"):
        channel_order(values, "size")


def test_colorscale_matches_the_lookup_table_and_zip_round_trip():
    scale = plotly_colorscale("magma", stops=3)
    lut = lookup_table("magma")
    assert [s[0] for s in scale] == [0.0, 0.5, 1.0]
    assert scale[0][1] == "rgb({},{},{})".format(*lut[0])
    assert scale[-1][1] == "rgb({},{},{})".format(*lut[255])
    data = zip_bytes([("cat_activations_1_conv2d.png", b"abc"), ("b.png", b"")])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["cat_activations_1_conv2d.png", "b.png"]
        assert archive.read("cat_activations_1_conv2d.png") == b"abc"


def test_grid_files_are_named_like_the_tutorial_and_hold_each_layer_grid():
    from PIL import Image

    from viz_core.features.activations import FeatureMaps, LayerActivation, named_layers
    from viz_core.render.montage import auto_tile, grid_files

    small, large = hot_pixels(channels=4, size=5), hot_pixels(channels=3, size=200)
    maps = FeatureMaps(model="m", image="cat", digest="d", layers=(
        LayerActivation("conv2d", 1, "Conv2D", small),
        LayerActivation("base/pool", 2, "MaxPooling2D", large)))
    files = grid_files(named_layers([maps, maps], ["cat", "dog"]), per_row=2, colormap="gray")
    assert [name for name, _ in files] == [
        "cat_activations_1_conv2d.png", "cat_activations_2_base_pool.png",
        "dog_activations_1_conv2d.png", "dog_activations_2_base_pool.png"]
    assert (auto_tile(5, 5), auto_tile(200, 200), auto_tile(50, 60)) == (32, 96, 60)
    for (_, data), values in zip(files[:2], (small, large)):
        decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        tile_px = auto_tile(*values.shape[:2])
        np.testing.assert_array_equal(
            decoded, montage(values, per_row=2, tile=tile_px, colormap="gray").image)
