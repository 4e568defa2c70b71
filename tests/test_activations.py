"""Feature maps: one forward pass, values equal to a direct Keras pass, stats by hand."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.conftest import nested_cnn, tiny_cnn, wrap
from viz_core.features.activations import (
    channel_stats,
    chunk_of,
    export_name,
    feature_map_layers,
    feature_maps,
    layer_chunks,
    layer_groups,
    layer_index,
    resolve_layers,
)
from viz_core.models.catalog import DEMO_MODEL_FILE
from viz_core.errors import Cancelled, ParameterError
from viz_core.inputs.intake import image_from_array


@pytest.fixture(scope="module")
def tiny():
    return wrap(tiny_cnn(size=32), name="tiny")


@pytest.fixture(scope="module")
def nested():
    return wrap(nested_cnn(size=32), name="nested")


@pytest.fixture
def picture(rng):
    return image_from_array(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), "cat.png")


def colour_split_model():
    """1x1 conv with known weights: channel 0 = red, channel 1 = relu(-green) (always 0),
    channel 2 = blue / 2 + 1 (never 0); inputs are pixels / 255."""
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(3, 1, activation="relu", name="split"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(2, activation="softmax", name="head"),
        ]
    )
    kernel = np.zeros((1, 1, 3, 3), dtype="float32")
    kernel[0, 0, 0, 0] = 1.0
    kernel[0, 0, 1, 1] = -1.0
    kernel[0, 0, 2, 2] = 0.5
    model.get_layer("split").set_weights([kernel, np.array([0.0, 0.0, 1.0], "float32")])
    return model


def test_values_equal_a_direct_keras_forward_pass(tiny, picture):
    maps = feature_maps(tiny, picture)
    x = picture.pixels[None].astype("float32") / 255.0  # 'unit' preprocessing, 32x32 already
    assert maps.paths == ("conv_a", "pool_a", "conv_b")
    for act in maps.layers:
        layer = tiny.model.get_layer(act.layer)
        direct = np.asarray(keras.Model(tiny.model.inputs, layer.output)(x))[0]
        assert act.values.dtype == np.float32
        assert act.values.shape == direct.shape
        np.testing.assert_allclose(act.values, direct, rtol=1e-5, atol=1e-6)


def test_nested_layers_match_the_sub_model(nested, picture):
    maps = feature_maps(nested, picture, ["base/conv_b", "base/conv_a"])
    assert maps.paths == ("base/conv_a", "base/conv_b")  # model order, whatever was asked
    base = nested.model.get_layer("base")
    x = picture.pixels[None].astype("float32") / 255.0
    direct = np.asarray(keras.Model(base.inputs, base.get_layer("conv_b").output)(x))[0]
    got = maps.layer("base/conv_b")
    assert got.shape == (16, 16, 6) and got.index == 3 and got.type == "Conv2D"
    np.testing.assert_allclose(got.values, direct, rtol=1e-5, atol=1e-6)


def test_known_weights_give_hand_computed_maps_and_stats():
    loaded = wrap(colour_split_model(), name="split")
    pixels = np.zeros((8, 8, 3), dtype=np.uint8)
    pixels[:2, :, 0] = 255  # red in the top two rows (16 of 64 positions)
    pixels[:, :, 1] = 200
    pixels[:, :, 2] = 102
    act = feature_maps(loaded, image_from_array(pixels, "rgb")).layer("split")
    np.testing.assert_allclose(act.values[:, :, 0], pixels[:, :, 0] / 255.0, atol=1e-6)
    assert np.all(act.values[:, :, 1] == 0)
    np.testing.assert_allclose(act.values[:, :, 2], 0.5 * 102 / 255 + 1.0, atol=1e-6)

    stats = channel_stats(act)
    np.testing.assert_allclose(stats.mean, [16 / 64, 0.0, 1.2], atol=1e-6)
    np.testing.assert_allclose(stats.max, [1.0, 0.0, 1.2], atol=1e-6)
    np.testing.assert_allclose(stats.fraction_active, [0.25, 0.0, 1.0])
    assert stats.dead.tolist() == [False, True, False]
    assert stats.constant.tolist() == [False, True, True]


def test_stats_threshold_and_bad_shape():
    values = np.array([[[0.0, -1.0], [0.5, 2.0]], [[1.0, 3.0], [2.0, 4.0]]], dtype="float32")
    stats = channel_stats(values, threshold=0.75)
    np.testing.assert_allclose(stats.fraction_active, [2 / 4, 3 / 4])
    np.testing.assert_allclose(stats.min, [0.0, -1.0])
    with pytest.raises(ParameterError, match=r"\(4, 2\)"):
        channel_stats(values.reshape(4, 2))


def test_layer_requests_names_indices_and_errors(tiny):
    info = tiny.info
    assert resolve_layers(info, "all") == ("conv_a", "pool_a", "conv_b")
    assert resolve_layers(info, None) == ("conv_a", "pool_a", "conv_b")
    assert resolve_layers(info, "conv_b, conv_a") == ("conv_a", "conv_b")
    assert resolve_layers(info, "2") == ("pool_a",)
    with pytest.raises(ParameterError, match="'gap'"):
        resolve_layers(info, "gap")  # 2-D output: no feature maps
    with pytest.raises(ParameterError, match="'nope'"):
        layer_index(info, "nope")
    with pytest.raises(ParameterError, match="No layer"):
        resolve_layers(info, " , ")


def test_input_layer_is_not_a_feature_map_and_indices_start_at_the_first_conv():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(2, 3, name="block1_conv1")(inputs)
    x = keras.layers.MaxPooling2D(name="block1_pool")(x)
    x = keras.layers.Conv2D(2, 3, name="block2_conv1")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    info = wrap(keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))).info
    assert info.spatial_layers[0].startswith("input")  # the foundation lists the input...
    assert feature_map_layers(info) == ("block1_conv1", "block1_pool", "block2_conv1")
    assert layer_index(info, "block1_conv1") == 1  # ...the tutorial's layer 1 is the first conv
    assert layer_groups(info) == (
        ("block1", ("block1_conv1", "block1_pool")),
        ("block2", ("block2_conv1",)),
    )


def test_groups_without_block_names(tiny, nested):
    assert layer_groups(tiny.info) == (("conv_a", ("conv_a", "pool_a")), ("conv_b", ("conv_b",)))
    assert layer_groups(nested.info)[0] == ("base/conv_a", ("base/conv_a", "base/pool_a"))

    inputs = keras.Input((16, 16, 3))
    stem = keras.layers.Conv2D(2, 3, name="conv2d")(inputs)
    a = keras.layers.Conv2D(2, 1, name="conv2d_1")(stem)
    b = keras.layers.Conv2D(2, 1, name="conv2d_2")(stem)
    mixed = keras.layers.Concatenate(name="mixed0")([a, b])
    top = keras.layers.Conv2D(2, 1, name="conv2d_3")(mixed)
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(top))
    groups = layer_groups(wrap(keras.Model(inputs, out)).info)
    assert groups == (
        ("up to mixed0", ("conv2d", "conv2d_1", "conv2d_2", "mixed0")),
        ("after mixed0", ("conv2d_3",)),
    )


def test_chunks_respect_the_byte_budget(tiny):
    info = tiny.info
    layers = feature_map_layers(info)
    sizes = {"conv_a": 32 * 32 * 4 * 4, "pool_a": 16 * 16 * 4 * 4, "conv_b": 16 * 16 * 6 * 4}
    # Budget fits conv_a + pool_a (20480 bytes) but not all three (26624).
    chunks = layer_chunks(info, layers, max_bytes=sizes["conv_a"] + sizes["pool_a"])
    assert chunks == (("conv_a", "pool_a"), ("conv_b",))
    assert layer_chunks(info, layers, max_bytes=1) == (("conv_a",), ("pool_a",), ("conv_b",))
    assert chunk_of(chunks, "conv_b") == ("conv_b",)


def test_export_names_follow_the_tutorial():
    assert export_name("cat", 1, "conv2d") == "cat_activations_1_conv2d.png"
    assert export_name("dog 1535", 3, "vgg16/block1_pool", ".npy") == (
        "dog_1535_activations_3_vgg16_block1_pool.npy")


def test_progress_cancel_and_cached_runs(tiny, picture, bench):
    calls = []
    feature_maps(tiny, picture, "conv_a", progress=lambda f, m: calls.append(f))
    assert calls[0] == 0.0 and calls[-1] == 1.0
    with pytest.raises(Cancelled):
        feature_maps(tiny, picture, "conv_a", should_stop=lambda: True)

    view = tiny.view(picture)
    first = bench.run(feature_maps, tiny, view, layers=("conv_a", "conv_b"))
    again = bench.run(feature_maps, tiny, view, layers=("conv_a", "conv_b"),
                      progress=lambda f, m: None)
    assert again is first
    assert (bench.results.stats.misses, bench.results.stats.hits) == (1, 1)


@pytest.mark.slow
@pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not trained yet")
def test_demo_model_maps_equal_a_direct_pass_on_a_sample(bench):
    from viz_core.inputs.samples import sample_bytes

    demo = bench.builtin_model("demo")
    image = bench.image(sample_bytes("circle"), "circle")
    layers = feature_map_layers(demo.info)
    maps = feature_maps(demo, image)
    assert maps.paths == layers and maps.layers[0].index == 1
    first = maps.layers[0]
    x = demo.batch([demo.view(image)])
    direct = np.asarray(keras.Model(demo.model.inputs, demo.model.get_layer(first.layer).output)(x))
    np.testing.assert_allclose(first.values, direct[0], rtol=1e-4, atol=1e-5)
    assert export_name(maps.image, first.index, first.layer).startswith("circle_activations_1_")


@pytest.mark.slow
@pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not trained yet")
def test_demo_model_deep_feature_maps_are_strongest_on_the_shape(bench):
    """The tutorial's reading of feature maps: deep layers respond to the object. On fresh
    scenes (seeds far from the training range), the last conv layer's activation summed over
    channels peaks on the shape's box (one feature-map cell of tolerance)."""
    from viz_core.demo.shapes import draw_scene

    demo = bench.builtin_model("demo")
    layer = demo.info.last_conv_layer
    hits = 0
    for seed in range(2_100_000_000, 2_100_000_020):
        scene = draw_scene(seed)
        total = feature_maps(demo, image_from_array(scene.image, f"scene{seed}"), [layer]
                             ).layer(layer).values.sum(axis=-1)
        cell = scene.image.shape[0] / total.shape[0]
        y, x = np.unravel_index(np.argmax(total), total.shape)
        x0, y0, x1, y1 = scene.shapes[0].box
        hits += (x0 - cell <= (x + 0.5) * cell <= x1 + cell
                 and y0 - cell <= (y + 0.5) * cell <= y1 + cell)
    assert hits >= 18, f"peak on the shape in {hits} of 20 scenes"
