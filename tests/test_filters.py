"""Filter patterns: the tutorial's recipe step for step, the fast method's promises, caching.

Tiny seeded models (tests/conftest.py) keep this quick; the demo-model checks run once the
trained model file exists.
"""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import nested_cnn, tiny_cnn, wrap
from viz_core.runtime.cache import DiskCache
from viz_core.models.catalog import DEMO_MODEL_FILE
from viz_core.errors import Cancelled, ParameterError
from viz_core.features.filters import (
    METHODS,
    deprocess_image,
    filter_patterns,
    mean_activations,
    parse_filters,
    receptive_field,
    starting_images,
)
from viz_core.models.preprocess import PREPROCESSING_NAMES, preprocess
from viz_core.metrics.readability import robustness, spectral_slopes
from viz_core.render.filter_grid import DEAD_COLOR, pattern_grid


@pytest.fixture(scope="module")
def tiny():
    return wrap(tiny_cnn(size=32, seed=3), name="tiny")


def _tutorial(model: keras.Model, layer: str, k: int, start: np.ndarray, steps: int):
    """The R tutorial's loop, written out independently: input space, batch of one."""
    sub = keras.Model(model.inputs, model.get_layer(layer).output)
    x = start.astype("float32").copy()
    losses = []
    for _ in range(steps):
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            loss = tf.reduce_mean(sub(xt)[:, :, :, k])
        grads = tape.gradient(loss, xt).numpy()
        grads = grads / (np.sqrt(np.mean(np.square(grads))) + 1e-5)
        losses.append(float(loss))
        x = x + grads * 1.0
    # deprocess_image: centre, / (sd + 1e-5) with R's sd (n - 1), * 0.1, + 0.5, clip
    img = x[0] - x[0].mean()
    img = img / (img.std(ddof=1) + 1e-5) * 0.1 + 0.5
    return np.array(losses), np.clip(img, 0, 1)


def test_classic_matches_the_tutorial_step_for_step():
    model = tiny_cnn(size=20, seed=1)
    loaded = wrap(model, preprocessing="none")  # pixel space is the model's input space
    result = filter_patterns(loaded, "conv_b", [4], method="classic", steps=6, size=20, seed=7)
    start = np.random.default_rng([7, 4]).random((1, 20, 20, 3)) * 20 + 128  # runif * 20 + 128
    losses, image = _tutorial(model, "conv_b", 4, start, 6)
    np.testing.assert_allclose(result.trace[0], losses, rtol=1e-4)
    assert losses[-1] > losses[0]  # the ascent did climb
    expected = np.rint(image * 255).astype(int)
    diff = np.abs(result.patterns[0].astype(int) - expected)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_classic_in_pixel_space_follows_the_tutorials_vgg_input_space():
    # caffe preprocessing is a channel flip plus a shift: the ascent in pixels, mapped to the
    # model's input, is the tutorial's ascent in input space from the mapped start.
    model = tiny_cnn(size=20, seed=2)
    loaded = wrap(model, preprocessing="caffe")
    result = filter_patterns(loaded, "conv_a", [1], method="classic", steps=5, size=20, seed=3)
    pixels = np.random.default_rng([3, 1]).random((1, 20, 20, 3)) * 20 + 128
    losses, _ = _tutorial(model, "conv_a", 1, preprocess("caffe", pixels), 5)
    np.testing.assert_allclose(result.trace[0], losses, rtol=1e-4)


def test_deprocess_is_the_tutorials():
    x = np.array([[[0.0], [1.0]], [[2.0], [3.0]]])  # mean 1.5, sd (n-1) = sqrt(5/3)
    out = deprocess_image(x)
    expected = np.clip((x - 1.5) / (np.sqrt(5 / 3) + 1e-5) * 0.1 + 0.5, 0, 1)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.dtype == np.float32


@pytest.mark.parametrize("method", ["fast", "classic", "fourier", "maco"])
def test_each_method_raises_the_filters_activation(tiny, method):
    filters = tuple(range(6))
    steps = {"fast": 12, "classic": 10, "fourier": 16, "maco": 16}[method]
    result = filter_patterns(tiny, "conv_b", filters, method=method, steps=steps, size=32)
    start = mean_activations(tiny, "conv_b",
                             starting_images(tiny, "conv_b", filters, method=method, size=32),
                             filters)
    live = ~result.dead
    assert live.sum() >= 4
    assert np.mean(result.activations[live] > start[live]) >= 0.95
    assert result.patterns.shape == (6, 32, 32, 3) and result.patterns.dtype == np.uint8


def test_fast_reaches_at_least_the_classic_activation(tiny):
    filters = tuple(range(4))
    fast = filter_patterns(tiny, "conv_a", filters, size=48)
    classic = filter_patterns(tiny, "conv_a", filters, method="classic", size=48)
    assert fast.activations.mean() >= classic.activations.mean()
    assert fast.canvas < classic.canvas == 48


def test_reported_activation_is_the_displayed_patterns(tiny):
    result = filter_patterns(tiny, "conv_b", [0, 2], size=32)
    # independent measurement at the model's own size: the plain side model on the 8-bit PNG
    side = tiny.side_model(["conv_b"])
    maps = side(preprocess("unit", result.patterns.astype("float32")))
    maps = maps[0] if isinstance(maps, (list, tuple)) else maps
    expected = [float(np.mean(np.asarray(maps)[i, :, :, k])) for i, k in enumerate((0, 2))]
    np.testing.assert_allclose(result.activations, expected, rtol=1e-4, atol=1e-6)


def test_fast_objective_is_the_activation_of_the_tiled_picture(tiny):
    # The fast loss averages one period of units on a small canvas; it must equal the mean
    # activation of the tile repeated without end, read away from the edges of a big picture.
    rf = receptive_field(tiny, "conv_b")
    result = filter_patterns(tiny, "conv_b", [1, 3], steps=1, size=96)
    big = starting_images(tiny, "conv_b", [1, 3], size=96)  # the start, tiled to 96 px
    flex = keras.Sequential([keras.Input((None, None, 3))] + tiny.model.layers[:3])
    acts = flex(preprocess("unit", big.astype("float32"))).numpy()
    units = result.period // rf.jump
    centre = acts.shape[1] // 2
    window = acts[:, centre:centre + units, centre:centre + units]
    expected = [window[0, :, :, 1].mean(), window[1, :, :, 3].mean()]
    np.testing.assert_allclose(result.trace[:, 0], expected, rtol=0.02, atol=1e-4)


def test_a_filters_result_does_not_depend_on_its_batch_mates(tiny):
    alone = filter_patterns(tiny, "conv_b", [3], size=32)
    crowd = filter_patterns(tiny, "conv_b", [5, 3, 0, 1], size=32)
    pair = filter_patterns(tiny, "conv_b", [3, 2], size=32)
    for other, pos in ((crowd, 1), (pair, 0)):
        diff = np.abs(other.patterns[pos].astype(int) - alone.patterns[0].astype(int))
        assert diff.max() <= 1
        np.testing.assert_allclose(other.activations[pos], alone.activations[0], rtol=1e-3)
        np.testing.assert_allclose(other.trace[pos], alone.trace[0], rtol=1e-3, atol=1e-6)


def test_receptive_field_of_a_tiny_cnn_by_hand(tiny):
    # conv 3x3 -> 3 px; conv 3x3 after 2x2 pooling -> 3 + 1 + 2 * 2 = 8 px, stride 2
    first = receptive_field(tiny, "conv_a")
    second = receptive_field(tiny, "conv_b")
    assert (first.size, first.jump, first.bounded) == (3, 1, True)
    assert (second.size, second.jump, second.bounded) == (8, 2, True)
    assert first.offset == -1  # 'same' padding: unit 0 looks one pixel before the image


def test_dead_filter_is_flagged_not_fatal():
    model = tiny_cnn(size=24, seed=4)
    kernel, bias = model.get_layer("conv_b").get_weights()
    kernel[..., 2], bias[2] = 0.0, -1.0  # filter 2 can never fire after its ReLU
    model.get_layer("conv_b").set_weights([kernel, bias])
    loaded = wrap(model)
    for method in ("fast", "classic"):
        result = filter_patterns(loaded, "conv_b", [1, 2], method=method, steps=3, size=24)
        assert result.dead.tolist() == [False, True]
        assert result.activations[1] == 0.0
        assert result.by_filter(2).dead and result.by_filter(2).pattern.shape == (24, 24, 3)


def test_nested_layer(tiny):
    loaded = wrap(nested_cnn(size=32, seed=5))
    result = filter_patterns(loaded, "base/conv_b", [0, 1, 2], size=40)
    start = mean_activations(loaded, "base/conv_b",
                             starting_images(loaded, "base/conv_b", [0, 1, 2], size=40),
                             [0, 1, 2])
    assert result.patterns.shape == (3, 40, 40, 3)
    live = ~result.dead
    assert live.any() and np.all(result.activations[live] > start[live])


def test_one_channel_model_gives_grey_rgb_patterns():
    loaded = wrap(tiny_cnn(size=28, channels=1, seed=6))
    result = filter_patterns(loaded, "conv_a", [0, 1, 2, 3], size=28)
    p = result.patterns
    assert p.shape == (4, 28, 28, 3)
    assert np.array_equal(p[..., 0], p[..., 1]) and np.array_equal(p[..., 1], p[..., 2])
    classic = filter_patterns(loaded, "conv_a", [0], method="classic", steps=2, size=28)
    assert classic.patterns.shape == (1, 28, 28, 3)


def test_model_that_only_runs_at_its_own_size():
    # A Reshape pins the input size: both methods fall back to the model's own 24x32 canvas.
    keras.utils.set_random_seed(9)
    model = keras.Sequential([
        keras.Input((24, 32, 3)),
        keras.layers.Reshape((24, 32, 3), name="pin"),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, activation="softmax"),
    ])
    loaded = wrap(model)
    for method in ("fast", "classic"):
        result = filter_patterns(loaded, "conv", [0, 1, 2, 3], method=method)
        assert result.patterns.shape == (4, 24, 32, 3) and result.canvas == 32
        start = mean_activations(loaded, "conv", starting_images(
            loaded, "conv", [0, 1, 2, 3], method=method), [0, 1, 2, 3])
        live = ~result.dead
        assert live.any() and np.all(result.activations[live] > start[live])
    grid = pattern_grid(result.patterns, columns=2, gap=3)
    assert grid.image.shape == (3 + 2 * 27, 3 + 2 * 35, 3) and grid.origin(3) == (30, 38)


def test_cache_hit_after_restart(tmp_path):
    model = tiny_cnn(size=24, seed=8)
    first = wrap(model, name="cached")
    made = filter_patterns(first, "conv_b", "0:3", size=24, disk=DiskCache(tmp_path))
    # a "restart": new cache object on the same folder, a model object with the same identity
    again = wrap(model, name="cached")
    object.__setattr__(again, "identity", first.identity)
    calls = []
    hit = filter_patterns(again, "conv_b", (0, 1, 2), size=24, disk=DiskCache(tmp_path),
                          progress=lambda f, m: calls.append((f, m)),
                          should_stop=lambda: True)  # any computing would raise Cancelled
    assert hit.from_cache and not made.from_cache
    assert np.array_equal(hit.patterns, made.patterns)
    np.testing.assert_array_equal(hit.activations, made.activations)
    assert calls == [(1.0, "from the cache")]
    other = filter_patterns(again, "conv_b", (0, 1, 2), size=24, steps=5,
                            disk=DiskCache(tmp_path))  # other parameters: computed
    assert not other.from_cache


def test_progress_every_step_and_cancel_between_steps(tiny):
    seen = []
    filter_patterns(tiny, "conv_a", [0, 1], steps=4, size=32,
                    progress=lambda f, m: seen.append(f))
    assert len(seen) == 5 and seen[-1] == 1.0 and seen == sorted(seen)
    asked = []

    def stop():
        asked.append(1)
        return len(asked) > 3

    with pytest.raises(Cancelled, match="Stopped after 3 of"):
        filter_patterns(tiny, "conv_a", [0], method="classic", steps=10, size=32,
                        should_stop=stop)


def test_parse_filters():
    assert parse_filters("0:4") == (0, 1, 2, 3)
    assert parse_filters("2:10:3") == (2, 5, 8)
    assert parse_filters("1, 4,9") == (1, 4, 9)
    with pytest.raises(ParameterError, match="'a:b'"):
        parse_filters("a:b")


@pytest.mark.parametrize("kwargs, message", [
    (dict(layer="nope"), "no layer called 'nope'"),
    (dict(layer="head"), "'head' has output shape"),
    (dict(filters=[0, 6]), "Filter 6 does not exist: 'conv_b' has 6 filters"),
    (dict(method="lucid"), "Unknown method 'lucid'"),
    (dict(steps=0), "got 0"),
    (dict(size=4), "got 4"),
    (dict(filters=[1, 1]), "list a filter twice"),
])
def test_bad_parameters_are_explained(tiny, kwargs, message):
    args = dict(layer="conv_b", filters=[0])
    args.update(kwargs)
    with pytest.raises(ParameterError, match=message):
        filter_patterns(tiny, args.pop("layer"), args.pop("filters"), **args)


def test_pattern_grid_places_tiles_and_outlines_dead():
    tiles = np.zeros((3, 4, 4, 3), np.uint8)
    tiles[1] = 100
    grid = pattern_grid(tiles, columns=2, gap=1, dead=np.array([False, False, True]))
    assert grid.image.shape == (1 + 2 * 5, 1 + 2 * 5, 3)
    assert tuple(grid.image[2, 7]) == (100, 100, 100)  # tile 1: row 0, column 1
    assert tuple(grid.image[6, 1]) == DEAD_COLOR  # tile 2's outline
    assert tuple(grid.image[0, 0]) == (255, 255, 255)
    assert grid.position(2, 7) == 1 and grid.position(0, 0) is None


@pytest.mark.slow
@pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not trained yet")
def test_demo_model_filters_rise_for_both_methods():
    from viz_core.models.catalog import load_demo_model

    demo = load_demo_model()
    raised = {"fast": [], "classic": []}
    for layer in demo.info.conv_layers:
        # Both at 48 px: the fast ascent runs on its own small canvas whatever the size, and
        # measuring the first 64 filters' patterns at 150 px cost four times as much (seeded,
        # 191 of 191 live filters rose at 48 px, 186 of 186 at 150 px).
        for method, filters, size in (("fast", None, 48), ("classic", tuple(range(6)), 48)):
            result = filter_patterns(demo, layer, filters, method=method, size=size)
            start = mean_activations(demo, layer, starting_images(
                demo, layer, result.filters, method=method, size=size), result.filters)
            live = ~result.dead
            raised[method] += list(result.activations[live] > start[live])
    for method, above in raised.items():  # pooled over the four conv layers
        assert len(above) >= 12 and np.mean(above) >= 0.95, (method, np.mean(above))


# -- fourier and maco ------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["fourier", "maco"])
def test_seeds_make_runs_repeatable(tiny, method):
    first = filter_patterns(tiny, "conv_b", [1, 4], method=method, steps=4, size=32, seed=5)
    again = filter_patterns(tiny, "conv_b", [1, 4], method=method, steps=4, size=32, seed=5)
    other = filter_patterns(tiny, "conv_b", [1, 4], method=method, steps=4, size=32, seed=6)
    np.testing.assert_array_equal(first.patterns, again.patterns)
    np.testing.assert_array_equal(first.trace, again.trace)
    assert not np.array_equal(first.patterns, other.patterns)


@pytest.mark.parametrize("method", ["fourier", "maco"])
def test_prior_methods_do_not_depend_on_batch_mates(tiny, method):
    alone = filter_patterns(tiny, "conv_b", [3], method=method, steps=4, size=32)
    crowd = filter_patterns(tiny, "conv_b", [5, 3, 0], method=method, steps=4, size=32)
    diff = np.abs(crowd.patterns[1].astype(int) - alone.patterns[0].astype(int))
    assert diff.max() <= 1
    np.testing.assert_allclose(crowd.trace[1], alone.trace[0], rtol=1e-3, atol=1e-6)


def test_maco_returns_its_transparency_and_others_none(tiny):
    maco = filter_patterns(tiny, "conv_b", [0, 3], method="maco", steps=4, size=40)
    assert maco.alpha.shape == (2, 40, 40) and maco.alpha.dtype == np.float32
    assert 0.0 <= maco.alpha.min() and maco.alpha.max() == pytest.approx(1.0)
    assert maco.item(1).alpha.shape == (40, 40)
    assert filter_patterns(tiny, "conv_b", [0], method="fourier", steps=2, size=40).alpha is None


@pytest.mark.parametrize("preprocessing", PREPROCESSING_NAMES)
def test_prior_methods_through_every_preprocessing(preprocessing):
    loaded = wrap(tiny_cnn(size=24, seed=12), preprocessing=preprocessing)
    for method in ("fourier", "maco"):
        result = filter_patterns(loaded, "conv_a", [0, 1, 2, 3], method=method, steps=6,
                                 size=24)
        live = ~result.dead
        assert live.sum() >= 2, (preprocessing, method)
        assert np.all(result.trace[live, -1] > result.trace[live, 0]), (preprocessing, method)


def test_prior_methods_on_nested_one_channel_and_fixed_size_models():
    nested = wrap(nested_cnn(size=32, seed=5))
    grey = wrap(tiny_cnn(size=28, channels=1, seed=6))
    keras.utils.set_random_seed(9)
    fixed = wrap(keras.Sequential([
        keras.Input((24, 32, 3)), keras.layers.Reshape((24, 32, 3)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv"),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")]))
    for method in ("fourier", "maco"):
        result = filter_patterns(nested, "base/conv_b", [0, 1], method=method, steps=4, size=32)
        assert result.patterns.shape == (2, 32, 32, 3)
        p = filter_patterns(grey, "conv_a", [0, 1], method=method, steps=4, size=28).patterns
        assert np.array_equal(p[..., 0], p[..., 2])
        result = filter_patterns(fixed, "conv", [0, 1], method=method, steps=4)
        assert result.patterns.shape == (2, 24, 32, 3) and result.canvas == 32


@pytest.mark.parametrize("method", ["fourier", "maco"])
def test_prior_methods_report_progress_and_stop(tiny, method):
    seen = []
    filter_patterns(tiny, "conv_a", [0, 1], method=method, steps=3, size=32,
                    progress=lambda f, m: seen.append(f))
    assert len(seen) == 4 and seen[-1] == 1.0 and seen == sorted(seen)
    asked = []
    with pytest.raises(Cancelled, match="Stopped after 2 of"):
        filter_patterns(tiny, "conv_a", [0], method=method, steps=10, size=32,
                        should_stop=lambda: asked.append(1) or len(asked) > 2)


def test_maco_cache_keeps_the_transparency(tmp_path, tiny):
    made = filter_patterns(tiny, "conv_b", [0, 1], method="maco", steps=3, size=32,
                           disk=DiskCache(tmp_path))
    hit = filter_patterns(tiny, "conv_b", [0, 1], method="maco", steps=3, size=32,
                          disk=DiskCache(tmp_path), should_stop=lambda: True)
    assert hit.from_cache
    np.testing.assert_array_equal(hit.alpha, made.alpha)
    np.testing.assert_array_equal(hit.robustness, made.robustness)


@pytest.mark.parametrize("method", METHODS)
def test_readability_numbers_are_those_of_the_displayed_patterns(tiny, method):
    result = filter_patterns(tiny, "conv_b", [0, 2, 3], method=method, steps=3, size=32)
    np.testing.assert_allclose(result.spectral_slopes, spectral_slopes(result.patterns))
    expected = robustness(lambda images, owners: mean_activations(tiny, "conv_b", images, owners),
                          result.patterns, [0, 2, 3])
    np.testing.assert_allclose(result.robustness, expected, rtol=1e-5, equal_nan=True)
    item = result.by_filter(2)
    assert item.robustness == pytest.approx(float(result.robustness[1]), nan_ok=True)
    summary = result.summary()
    assert summary["filters"] == int((~result.dead).sum())
    live = ~result.dead
    assert summary["activation"] == pytest.approx(float(np.median(result.activations[live])))


def test_transparency_as_alpha_channel_and_over_a_checkerboard():
    from viz_core.render.filter_grid import CHECKER, over_checkerboard, with_alpha

    tiles = np.full((2, 16, 16, 3), 100, np.uint8)
    alpha = np.zeros((2, 16, 16), "float32")
    alpha[0] = 1.0
    alpha[1, :, :8] = 0.5
    rgba = with_alpha(tiles, alpha)
    assert rgba.shape == (2, 16, 16, 4) and rgba[0, 0, 0, 3] == 255 and rgba[1, 0, 0, 3] == 128
    shown = over_checkerboard(tiles, alpha)
    assert tuple(shown[0, 3, 3]) == (100, 100, 100)  # opaque: the pattern
    assert shown[1, 3, 12, 0] == CHECKER[1] and shown[1, 3, 3, 0] == round((100 + CHECKER[0]) / 2)
    grid = pattern_grid(tiles, columns=2, gap=0, alpha=alpha)
    np.testing.assert_array_equal(grid.image[:, 16:], shown[1])
    with pytest.raises(ParameterError, match=r"got \(2, 16, 16, 3\) uint8 and \(16, 16\)"):
        with_alpha(tiles, alpha[0])


def test_receptive_field_jump_is_the_stride_when_valid_convolutions_trim_the_edges():
    # 32 px -> dilated 3x3 (dilation 4, valid) -> 24 units -> 3x3 stride 2 (valid) -> 11 units.
    # The input/output ratio says 3 (32 / 11); the stride is 2. By hand: a first-layer unit sees
    # pixels {0, 4, 8} from its own column; three neighbours span 0..10, so 11 px, starting at
    # column 2 * (unit index): offset 0.
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(4, 3, dilation_rate=4, padding="valid", name="dilated"),
        keras.layers.Conv2D(4, 3, strides=2, padding="valid", name="strided"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, activation="softmax"),
    ])
    rf = receptive_field(wrap(model, name="dilated"), "strided")
    assert (rf.size, rf.jump, rf.offset, rf.bounded) == (11, 2, 0, True)
