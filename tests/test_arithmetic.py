"""The arithmetic of one output number (lesson mode): computed from the printed numbers, it
equals what the model itself computes, on the demo model, tiny models with strides, dilation,
groups, grey input, pooling, BatchNorm, Dense, softmax and sigmoid, and on VGG16 and
MobileNetV2 (random weights, slow). Hand-computed values check the numbers themselves."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.conftest import nested_cnn, tiny_cnn, wrap
from viz_core.errors import ModelError, ParameterError, VizError
from viz_core.features.arithmetic import (layer_io, output_arithmetic, shown_layers,
                                          unit_arithmetic)
from viz_core.features.arithmetic_math import output_size, padding_before
from viz_core.features.arithmetic_results import MAX_TERMS
from viz_core.features.arithmetic_sandbox import sandbox, size_formula
from viz_core.inputs.intake import image_from_array, load_image
from viz_core.inputs.samples import list_samples, sample_bytes

TOLERANCE = 1e-4  # the bound between the hand computation and the model


def close(result) -> bool:
    return result.difference <= TOLERANCE


def picture(size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return image_from_array(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "noise")


def every_position(model, image, layer, channels=None):
    """Worst difference over every position; the channel cycles with the position, so every
    channel is met (or only ``channels``)."""
    io = layer_io(model, image, layer)
    h, w, count = io.outputs.shape
    pool = list(range(count)) if channels is None else list(channels)
    worst, k = 0.0, 0
    for y in range(h):
        for x in range(w):
            result = unit_arithmetic(model, image, layer, pool[k % len(pool)], (y, x), io=io)
            worst = max(worst, result.difference)
            k += 1
    return worst


def border_positions(h: int, w: int) -> list[tuple[int, int]]:
    """Corners and every fourth cell of each edge: where padding is read."""
    cells = {(y, x) for y in (0, h - 1) for x in range(0, w, 4)}
    cells |= {(y, x) for x in (0, w - 1) for y in range(0, h, 4)}
    return sorted(cells | {(h - 1, w - 1)})


# ---- the demo model ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo():
    from viz_core.models.catalog import load_demo_model

    model = load_demo_model()
    name = list_samples()[0].name
    return model, model.view(load_image(sample_bytes(name), name))


def test_first_two_conv_layers_of_the_demo_model_at_every_position(demo):
    model, image = demo
    assert model.info.conv_layers[:2] == ("conv2d_1", "conv2d_2")
    assert every_position(model, image, "conv2d_1") <= TOLERANCE
    assert every_position(model, image, "conv2d_2") <= TOLERANCE


def test_demo_first_layer_reads_the_image_after_preprocessing(demo):
    model, image = demo
    result = unit_arithmetic(model, image, "conv2d_1", 5, (0, 0))
    assert result.source == "image" and result.preprocessing == "unit"
    # same padding of a 3x3 kernel: row and column -1 are padding, zeros
    assert result.rows.tolist() == [-1, 0, 1] and result.cols.tolist() == [-1, 0, 1]
    assert result.padded[0].all() and result.padded[:, 0].all() and not result.padded[1:, 1:].any()
    assert np.all(result.patch[result.padded] == 0)
    # the patch is the pixels divided by 255 ("unit")
    np.testing.assert_allclose(result.patch[1:, 1:], image.pixels[0:2, 0:2] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(result.pixels[1:, 1:], image.pixels[0:2, 0:2])
    assert result.kernel.shape == (3, 3, 3)
    assert result.products_sum == pytest.approx(float((result.patch * result.kernel).sum()))
    assert result.activation == max(0.0, result.products_sum + result.bias)
    second = unit_arithmetic(model, image, "conv2d_2", 0, (10, 10))
    assert second.source == "batch_normalization_1" and second.pixels is None
    assert second.patch.shape == (3, 3, 32) and not second.padded.any()


def test_demo_pooling_norm_dense_and_softmax(demo):
    model, image = demo
    for layer in ("max_pooling2d_1", "batch_normalization_1", "global_average_pooling2d"):
        io = layer_io(model, image, layer)
        h = io.outputs.shape[0]
        at = None if io.outputs.ndim == 1 else (h - 1, h - 1)
        assert close(unit_arithmetic(model, image, layer, 3, at, io=io)), layer
    dense = unit_arithmetic(model, image, "predictions", 2)
    assert dense.activation_name == "softmax" and dense.labels[2] == "triangle"
    assert dense.probabilities.sum() == pytest.approx(1.0)
    assert close(dense)
    out = output_arithmetic(model, image)
    assert out.kind == "softmax" and out.layer == "predictions"
    np.testing.assert_allclose(out.probabilities, out.model_probabilities, atol=TOLERANCE)
    np.testing.assert_allclose(out.logits, dense.logits, atol=1e-4)
    assert out.top(1)[0][0] == out.channel == int(np.argmax(out.model_probabilities))


# ---- tiny models with known settings ------------------------------------------------------
def settings_cnn():
    """Strided, dilated, valid, grouped, separable and depthwise convolutions in a chain."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((13, 13, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu",
                            name="strided")(inputs)                       # 7x7
    x = keras.layers.Conv2D(4, 3, dilation_rate=2, padding="same", activation="tanh",
                            name="dilated")(x)                            # 7x7
    x = keras.layers.Conv2D(6, 2, strides=2, padding="valid", name="valid_even")(x)  # 3x3
    x = keras.layers.Conv2D(6, 3, groups=2, padding="same", activation="sigmoid",
                            name="grouped")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same",
                                     activation="relu6", name="depthwise")(x)
    x = keras.layers.SeparableConv2D(5, 3, depth_multiplier=2, padding="same",
                                     activation="elu", name="separable")(x)
    x = keras.layers.AveragePooling2D(2, strides=2, padding="same", name="avg")(x)   # 2x2
    x = keras.layers.GlobalMaxPooling2D(name="gmax")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    return wrap(keras.Model(inputs, outputs), name="settings")


@pytest.fixture(scope="module")
def settings():
    return settings_cnn(), picture(13)


@pytest.mark.parametrize("layer", ["strided", "dilated", "valid_even", "grouped", "depthwise",
                                   "separable", "avg"])
def test_strided_dilated_grouped_and_separable_layers_at_every_position(settings, layer):
    model, image = settings
    assert every_position(model, image, layer) <= TOLERANCE


def test_window_coordinates_follow_stride_dilation_and_padding(settings):
    model, image = settings
    strided = unit_arithmetic(model, image, "strided", 0, (6, 6))
    # 13 -> 7 with stride 2 reads 6·2 + 3 = 15 rows: 2 zeros, 1 before and 1 after
    assert padding_before(13, 3, 2, "same") == 1 and padding_before(14, 3, 2, "same") == 0
    assert strided.rows.tolist() == [11, 12, 13] and strided.padded[2].all()
    assert not strided.padded[:2, :2].any()
    dilated = unit_arithmetic(model, image, "dilated", 1, (0, 3))
    assert dilated.rows.tolist() == [-2, 0, 2] and dilated.cols.tolist() == [1, 3, 5]
    assert dilated.activation_name == "tanh"
    grouped = unit_arithmetic(model, image, "grouped", 4, (1, 1))
    assert grouped.groups == 2 and grouped.input_channels == (3, 4, 5)
    depthwise = unit_arithmetic(model, image, "depthwise", 5, (1, 1))
    assert depthwise.input_channels == (2,) and depthwise.patch.shape == (3, 3, 1)
    separable = unit_arithmetic(model, image, "separable", 2, (0, 0))
    assert separable.depthwise.shape == (24,)  # 12 input channels, 2 each
    assert float(separable.depthwise @ separable.pointwise) == pytest.approx(
        separable.products_sum, abs=1e-9)
    avg = unit_arithmetic(model, image, "avg", 0, (1, 1))
    # 3x3 pooled by 2 with same padding: the last window has one row and column inside
    assert avg.count == 1 and avg.padded.sum() == 3 and avg.operation == "mean"
    assert all(close(r) for r in (strided, dilated, grouped, depthwise, separable, avg))


def test_hand_computed_convolution_on_a_grey_model():
    inputs = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(1, 3, padding="same", activation="relu", name="conv")
    x = conv(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="out")(x)
    model = wrap(keras.Model(inputs, outputs), name="grey", preprocessing="none")
    kernel = np.arange(9, dtype="float32").reshape(3, 3, 1, 1) - 4.0  # -4 ... 4
    conv.set_weights([kernel, np.array([0.5], "float32")])
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4       # 0, 4, ..., 252
    image = image_from_array(np.repeat(grey[:, :, None], 3, axis=2), "ramp")
    result = unit_arithmetic(model, image, "conv", 0, (0, 0))
    # window rows/cols -1..1: inside are pixels (0,0)=0, (0,1)=4, (1,0)=32, (1,1)=36 under
    # kernel cells (1,1)=0, (1,2)=1, (2,1)=3, (2,2)=4
    assert result.patch.shape == (3, 3, 1)
    assert result.products_sum == pytest.approx(0 * 0 + 4 * 1 + 32 * 3 + 36 * 4)
    assert result.preactivation == pytest.approx(244.5)
    assert result.activation == pytest.approx(244.5) and close(result)
    sigmoid = output_arithmetic(model, image)
    assert sigmoid.kind == "sigmoid"
    assert close(sigmoid) and sigmoid.probabilities[0] == pytest.approx(
        1 / (1 + np.exp(-sigmoid.logits[0])))


def test_grey_tiny_cnn_at_every_position():
    model = wrap(tiny_cnn(size=20, channels=1, classes=3), name="grey")
    image = picture(20, seed=4)
    view = model.view(image)
    assert view.pixels.shape == (20, 20, 1)
    assert every_position(model, view, "conv_a") <= TOLERANCE
    assert every_position(model, view, "conv_b") <= TOLERANCE
    assert every_position(model, view, "pool_a") <= TOLERANCE


def test_max_pooling_picks_the_largest_of_its_window():
    model = wrap(tiny_cnn(size=8), name="tiny")
    image = picture(8, seed=2)
    io = layer_io(model, image, "pool_a")
    result = unit_arithmetic(model, image, "pool_a", 1, (2, 3), io=io)
    window = io.inputs[4:6, 6:8, 1]
    assert result.window.tolist() == window.astype("float64").tolist()
    assert result.activation == pytest.approx(float(window.max()))
    assert result.window[result.picked] == window.max() and close(result)


def test_batch_norm_folds_its_four_numbers():
    inputs = keras.Input((8, 8, 3))
    norm = keras.layers.BatchNormalization(epsilon=0.01, name="bn")
    x = norm(inputs)
    x = keras.layers.Conv2D(1, 1, name="conv")(x)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(x))
    model = wrap(keras.Model(inputs, outputs), name="bn", preprocessing="none")
    norm.set_weights([np.array([2.0, 1.0, 1.0], "float32"), np.array([0.5, 0.0, 0.0], "float32"),
                      np.array([100.0, 0.0, 0.0], "float32"),
                      np.array([24.99, 1.0, 1.0], "float32")])
    pixels = np.full((8, 8, 3), 130, np.uint8)
    result = unit_arithmetic(model, image_from_array(pixels, "flat"), "bn", 0, (1, 0))
    # scale = 2 / sqrt(24.99 + 0.01) = 0.4; shift = 0.5 - 100 * 0.4 = -39.5
    assert result.scale == pytest.approx(0.4) and result.shift == pytest.approx(-39.5)
    assert result.value == 130.0 and result.activation == pytest.approx(0.4 * 130 - 39.5)
    assert close(result)
    contract = result.contract()
    assert contract["terms"] == [{"input": 130.0, "weight": pytest.approx(0.4),
                                  "product": pytest.approx(52.0)}]


def test_dense_sigmoid_in_a_nested_model_and_the_contract():
    model = wrap(nested_cnn(size=16, classes=1), name="nested")
    image = picture(16, seed=5)
    assert "base/conv_b" in shown_layers(model)
    conv = unit_arithmetic(model, image, "base/conv_b", 5, (7, 0))
    assert conv.source == "base/pool_a" and close(conv)
    dense = unit_arithmetic(model, image, "head", 0)
    assert dense.activation_name == "sigmoid" and dense.source == "flatten"
    assert dense.inputs.shape == (8 * 8 * 6,) and close(dense)
    # input 100 of the flattened 8x8x6 map is row 2, column 0, channel 4 (100 = 2·48 + 0·6 + 4)
    assert dense.flattened == (8, 8, 6) and dense.input_name(100) == "(y 2, x 0, c 4)"
    conv_b = layer_io(model, image, "base/conv_b").outputs
    assert dense.inputs[100] == pytest.approx(float(conv_b[2, 0, 4]))
    contract = dense.contract()
    assert list(contract) == ["layer", "kind", "channel", "position", "patch_shape",
                              "products_sum", "bias", "preactivation", "activation",
                              "model_activation", "terms"]
    assert contract["position"] is None and contract["patch_shape"] == [384]
    terms = contract["terms"]
    assert len(terms) == MAX_TERMS
    sizes = [abs(t["product"]) for t in terms]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == np.abs(dense.products).max()
    for t in terms:
        assert t["product"] == pytest.approx(t["input"] * t["weight"])
    assert contract["activation"] == pytest.approx(1 / (1 + np.exp(-contract["preactivation"])))


def test_relu_and_softmax_layers():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(3, 3, name="conv")(inputs)
    x = keras.layers.ReLU(max_value=0.2, negative_slope=0.1, name="relu_capped")(x)
    x = keras.layers.Activation("swish", name="swish")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(4, name="logits")(x)
    outputs = keras.layers.Softmax(name="probs")(x)
    model = wrap(keras.Model(inputs, outputs), name="acts")
    image = picture(8, seed=7)
    for y in range(4):
        for x in range(4):
            assert close(unit_arithmetic(model, image, "relu_capped", (x + y) % 3, (y, x)))
            assert close(unit_arithmetic(model, image, "swish", 1, (y, x)))
    soft = unit_arithmetic(model, image, "probs", 3)
    assert soft.kind == "softmax" and close(soft)
    assert soft.exponentials[3] / soft.exponentials.sum() == pytest.approx(soft.activation)
    assert output_arithmetic(model, image, 3).activation == pytest.approx(soft.activation)


def test_layers_it_cannot_show_are_named_with_the_reason():
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(2, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2DTranspose(2, 3, padding="same", name="up")(a)
    c = keras.layers.Add(name="sum")([a, b])
    flat = keras.layers.Flatten(name="flat")(c)
    outputs = keras.layers.Dense(2, activation="softmax", name="out")(flat)
    model = wrap(keras.Model(inputs, outputs), name="odd")
    image = picture(8)
    for layer, reason in (("up", "Conv2DTranspose"), ("sum", "Add layer"),
                          ("flat", "Flatten layer")):
        with pytest.raises(ParameterError, match=f"'{layer}'.*{reason}"):
            unit_arithmetic(model, image, layer, 0, (0, 0))
    assert shown_layers(model) == ("a", "out")
    with pytest.raises(ModelError, match="no layer called 'nope'"):
        unit_arithmetic(model, image, "nope", 0, (0, 0))
    with pytest.raises(ParameterError, match=r"\(8, 0\) is outside the 8x8 map"):
        unit_arithmetic(model, image, "a", 0, (8, 0))
    with pytest.raises(ParameterError, match="channel 2 does not exist; this layer has 2"):
        unit_arithmetic(model, image, "a", 2, (0, 0))
    with pytest.raises(ParameterError, match="give a position"):
        unit_arithmetic(model, image, "a", 0, None)
    nested = wrap(nested_cnn(size=16), name="nested")
    with pytest.raises(VizError, match="'base' is a sub-model; choose a layer inside it"):
        unit_arithmetic(nested, picture(16), "base", 0, (0, 0))


# ---- the sandbox ------------------------------------------------------------------------------
@pytest.mark.parametrize("n, k, s, p, d, expected", [
    (7, 3, 1, 0, 1, 5), (7, 3, 2, 1, 1, 4), (5, 3, 1, 0, 2, 1), (224, 7, 2, 3, 1, 112),
    (6, 2, 2, 0, 1, 3), (8, 3, 3, 1, 2, 2), (4, 5, 1, 0, 1, 0)])
def test_output_size_formula_by_hand(n, k, s, p, d, expected):
    assert output_size(n, k, s, p, d) == expected


@pytest.mark.parametrize("n, k, s, d", [(13, 3, 2, 1), (7, 3, 1, 2), (10, 4, 3, 1), (9, 2, 2, 1)])
def test_same_and_valid_match_keras_output_shapes(n, k, s, d):
    for padding in ("same", "valid"):
        if s > 1 and d > 1:
            continue
        layer = keras.layers.Conv2D(1, k, strides=s, dilation_rate=d, padding=padding)
        shape = layer.compute_output_shape((1, n, n, 1))
        assert shape[1] == output_size(n, k, s, padding, d), (padding, shape)


def test_sandbox_by_hand_and_against_keras():
    grid = np.arange(1, 10, dtype="float64").reshape(3, 3)
    kernel = np.array([[1.0, 0.0], [0.0, -1.0]])
    plain = sandbox(3, 2, inputs=grid, kernel=kernel)
    assert plain.size == 2 and plain.output.tolist() == [[-4.0, -4.0], [-4.0, -4.0]]
    padded = sandbox(3, 2, stride=2, padding=1, inputs=grid, kernel=kernel)
    # padded grid 5x5; windows at rows/cols (0,1) and (2,3): by hand
    assert padded.output.tolist() == [[-1.0, -3.0], [-7.0, -4.0]]
    assert padded.formula == "⌊(3 + 2·1 − 1·(2 − 1) − 1) / 2⌋ + 1 = ⌊3 / 2⌋ + 1 = 2"
    assert padded.unused == 1  # the last padded row is never read
    assert padded.products(1, 1).tolist() == [[5.0, 0.0], [0.0, -9.0]]
    dilated = sandbox(7, 3, stride=2, padding=2, dilation=2)
    # Keras takes no stride with dilation: stride 1, then every second output
    reference = keras.ops.conv(np.pad(dilated.inputs, 2)[None, :, :, None],
                               dilated.kernel[:, :, None, None], strides=1, padding="valid",
                               dilation_rate=2)
    np.testing.assert_allclose(dilated.output, np.asarray(reference)[0, ::2, ::2, 0])
    assert size_formula(7, 3, 2, 2, 2).endswith("= 4") and dilated.size == 4
    with pytest.raises(ParameterError, match="reaches over 9 cells"):
        sandbox(3, 5, dilation=2)
    with pytest.raises(ParameterError, match="stride must be a whole number from 1 to 4"):
        sandbox(stride=9)


# ---- ImageNet-size networks, random weights ---------------------------------------------------
@pytest.mark.slow
def test_vgg16_border_positions_with_same_padding():
    from viz_core.models.catalog import load_builtin_model

    model = load_builtin_model("vgg16", "none", allow_download=False)  # VGG16(weights=None)
    assert model.preprocessing == "caffe"
    image = model.view(picture(224, seed=9))
    for layer in ("block1_conv1", "block1_conv2", "block2_conv1", "block3_conv3",
                  "block5_conv3"):
        io = layer_io(model, image, layer)
        h, w, count = io.outputs.shape
        for k, at in enumerate(border_positions(h, w)):
            result = unit_arithmetic(model, image, layer, (7 * k) % count, at, io=io)
            assert result.padding == "same"
            assert close(result), (layer, at, result.activation, result.model_activation)
            if at == (0, 0):
                assert result.padded[0].all() and result.padded[:, 0].all()
    # caffe: the input is the pixels in BGR order minus the ImageNet mean
    first = unit_arithmetic(model, image, "block1_conv1", 0, (5, 5))
    mean_bgr = np.array([103.939, 116.779, 123.68])
    np.testing.assert_allclose(first.patch, first.pixels - mean_bgr, atol=1e-3)
    np.testing.assert_allclose(first.pixels[1, 1], image.pixels[5, 5, ::-1])


@pytest.mark.slow
def test_mobilenet_v2_depthwise_layers_inside_a_nested_model():
    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), alpha=0.35,
                                          include_top=False)
    model = wrap(keras.Sequential([keras.Input((96, 96, 3)), base,
                                   keras.layers.GlobalAveragePooling2D(),
                                   keras.layers.Dense(3, activation="softmax")]),
                 name="mobilenet", preprocessing="symmetric")
    image = model.view(picture(96, seed=11))
    depthwise = [p for p in shown_layers(model) if p.endswith("_depthwise")
                 or p.endswith("dwise")]
    assert len(depthwise) == 17 and f"{base.name}/block_1_depthwise" in depthwise
    for layer in depthwise + [f"{base.name}/block_1_depthwise_BN",
                              f"{base.name}/block_1_depthwise_relu", f"{base.name}/Conv1"]:
        io = layer_io(model, image, layer)
        h, w, count = io.outputs.shape
        for k, at in enumerate(border_positions(h, w)[:12] + [(h // 2, w // 2)]):
            result = unit_arithmetic(model, image, layer, (5 * k) % count, at, io=io)
            assert close(result), (layer, at, result.activation, result.model_activation)
    strided = unit_arithmetic(model, image, f"{base.name}/block_1_depthwise", 0, (0, 0))
    assert strided.strides == (2, 2) and strided.kind == "DepthwiseConv2D"


# ---- pictures and the notebook -------------------------------------------------------------------
def test_grid_picture_colours_signs_and_hatches_padding():
    from viz_core.render.lesson import NEGATIVE, PADDING, POSITIVE, number_grid, signed_colors

    values = np.array([[2.0, -2.0], [0.0, 1.0]])
    colors = signed_colors(values)
    assert colors[0, 0].tolist() == POSITIVE.astype(int).tolist()
    assert colors[0, 1].tolist() == NEGATIVE.astype(int).tolist()
    assert colors[1, 0].tolist() == [247, 247, 247]
    padded = np.array([[False, False], [True, False]])
    picture = number_grid(values, padded=padded, cell=40)
    assert picture.shape == (81, 81, 3)
    # a corner pixel of each cell, away from the number and the hatching
    assert picture[3, 37].tolist() == POSITIVE.astype(int).tolist()
    assert picture[43, 4].tolist() == list(PADDING)


def test_vc_unit_draws_itself_and_matches_the_backend():
    import viz_core as vc
    from viz_core.render.lesson import unit_picture

    model = wrap(tiny_cnn(size=12), name="tiny")
    image = np.random.default_rng(3).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    result = vc.unit(model, image, "conv_b", 4, at=(0, 5))
    assert result.kind == "Conv2D" and close(result)
    direct = unit_arithmetic(model, image_from_array(image, "x"), "conv_b", 4, (0, 5))
    assert result.activation == direct.activation and result.products.shape == (3, 3, 4)
    html = result._repr_html_()
    assert "<img src=\"data:image/png;base64," in html and "relu →" in html
    shown = np.asarray(vc.show(result))
    np.testing.assert_array_equal(shown, unit_picture(result))
    with pytest.raises(ParameterError, match="'conv_a' has a 12x12 map; give a position"):
        vc.unit(model, image)  # the first convolution, which has a map
