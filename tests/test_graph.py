"""Graph surgery: side models (nested layers, logits before softmax), flat graphs, splits."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.conftest import clashing_names_cnn, nested_cnn, tiny_cnn
from viz_core.errors import ModelError
from viz_core.models.graph import flat_graph, side_model, split_at


@pytest.fixture
def x():
    return np.random.default_rng(1).uniform(0, 1, (2, 32, 32, 3)).astype("float32")


def test_top_level_tap_equals_direct_model(x):
    model = tiny_cnn()
    side = side_model(model, ["conv_b"], output=True)
    conv_b, out = side(x)
    direct = keras.Model(model.inputs, model.get_layer("conv_b").output)
    np.testing.assert_allclose(conv_b, direct(x), atol=1e-6)
    np.testing.assert_allclose(out, model(x), atol=1e-6)


def test_logits_are_pre_softmax(x):
    model = tiny_cnn(classes=3)
    conv_b, logits = side_model(model, ["conv_b"], logits=True)(x)
    head = model.get_layer("head")
    kernel, bias = head.get_weights()
    pooled = np.asarray(conv_b).mean(axis=(1, 2))
    np.testing.assert_allclose(logits, pooled @ kernel + bias, atol=1e-5)
    np.testing.assert_allclose(keras.ops.softmax(logits), model(x), atol=1e-6)


def test_nested_tap_matches_inner_model_and_caller_model_untouched(x):
    model = nested_cnn()
    weights_before = [w.copy() for w in model.get_weights()]
    n_layers = len(model.layers)
    inner, logits, out = side_model(model, ["base/conv_b"], logits=True, output=True)(x)
    base = model.get_layer("base")
    np.testing.assert_allclose(inner, base(x), atol=1e-6)
    np.testing.assert_allclose(keras.ops.sigmoid(logits), out, atol=1e-6)
    np.testing.assert_allclose(out, model(x), atol=1e-6)
    assert len(model.layers) == n_layers
    assert model.get_layer("head").activation.__name__ == "sigmoid"
    for a, b in zip(weights_before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_side_model_shares_weights(x):
    model = nested_cnn()
    side = side_model(model, ["base/conv_a"], output=True)
    conv = model.get_layer("base").get_layer("conv_a")
    kernel, bias = conv.get_weights()
    conv.set_weights([kernel * 0.0, bias])
    inner, _ = side(x)
    assert float(np.abs(inner).max()) == pytest.approx(max(0.0, float(bias.max())), abs=1e-6)


def test_bad_layer_path_is_a_clear_error():
    with pytest.raises(ModelError, match="no layer called 'base/nope'"):
        side_model(nested_cnn(), ["base/nope"])


# --------------------------------------------------------------------------------------------
# flat_graph and split_at: the model cut at a layer into a front and a back half
# --------------------------------------------------------------------------------------------
def _fixed_weights(model, seed=3):
    """Overwrite every weight with seeded values, so the numbers do not depend on Keras init."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.3, w.shape).astype("float32")
                       for w in model.get_weights()])
    return model


def _skip_cnn():
    """Functional: conv_a -> conv_b, conv_a + conv_b (skip) -> GAP -> Dense(softmax)."""
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_b")(a)
    added = keras.layers.Add(name="add")([a, b])
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(added)
    out = keras.layers.Dense(3, activation="softmax", name="head")(pooled)
    return _fixed_weights(keras.Model(inputs, out, name="skip"))


def _functional_transfer():
    """Functional base CNN nested in a functional head (the Keras Applications shape)."""
    base_in = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(base_in)
    x = keras.layers.MaxPooling2D(2, name="pool_a")(x)
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="conv_b")(x)
    base = keras.Model(base_in, x, name="base")
    inputs = keras.Input((16, 16, 3))
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(base(inputs))
    out = keras.layers.Dense(4, activation="softmax", name="head")(pooled)
    return _fixed_weights(keras.Model(inputs, out, name="transfer_fn")), base


def _pixels(shape, seed=5):
    return np.random.default_rng(seed).uniform(0, 1, shape).astype("float32")


def test_split_front_then_back_equals_the_whole_model():
    model = _skip_cnn()
    x = _pixels((2, 8, 8, 3))
    halves = split_at(model, "conv_b")
    acts, context = halves.run_front(x)
    logits, out = halves.run_back(acts, context)
    np.testing.assert_allclose(out, model(x), atol=1e-6)
    # independent references: the model's own graph, and numpy for the dense head
    direct = keras.Model(model.inputs, [model.get_layer("conv_a").output,
                                        model.get_layer("conv_b").output,
                                        model.get_layer("gap").output])
    conv_a, conv_b, pooled = (np.asarray(t) for t in direct(x))
    np.testing.assert_allclose(acts, conv_b, atol=1e-6)
    assert halves.context_count == 1  # the skip branch conv_a, needed by "add"
    np.testing.assert_allclose(context[0], conv_a, atol=1e-6)
    kernel, bias = model.get_layer("head").get_weights()
    np.testing.assert_allclose(logits, pooled @ kernel + bias, atol=1e-5)
    assert halves.has_logits and halves.layer == "conv_b"
    # the back half alone: changed activations give the model's answer on those activations
    doubled = np.asarray(acts) * 2.0
    _, out2 = halves.run_back(doubled, [np.asarray(c) for c in context])
    pooled2 = (conv_a + doubled).mean(axis=(1, 2))
    want = keras.ops.softmax(pooled2 @ kernel + bias)
    np.testing.assert_allclose(out2, want, atol=1e-5)


def test_split_of_a_plain_chain_has_no_context_and_the_halves_are_models():
    model = _fixed_weights(tiny_cnn(size=16, classes=3))
    x = _pixels((3, 16, 16, 3))
    halves = split_at(model, "pool_a")
    assert halves.context_count == 0
    pooled = halves.front(x)  # one output: a tensor, not a list
    assert tuple(pooled.shape) == (3, 8, 8, 4)
    direct = keras.Model(model.inputs, model.get_layer("pool_a").output)
    np.testing.assert_allclose(pooled, direct(x), atol=1e-6)
    logits, out = halves.back([pooled])
    np.testing.assert_allclose(out, model(x), atol=1e-6)
    np.testing.assert_allclose(keras.ops.softmax(logits), out, atol=1e-6)


@pytest.mark.parametrize("layer", ["base/conv_a", "base/pool_a", "base/conv_b"])
def test_split_inside_a_nested_functional_base_matches_the_base(layer):
    model, base = _functional_transfer()
    x = _pixels((2, 16, 16, 3))
    halves = split_at(model, layer)
    acts, context = halves.run_front(x)
    inner = layer.split("/")[1]
    reference = keras.Model(base.input, base.get_layer(inner).output)
    np.testing.assert_allclose(acts, reference(x), atol=1e-6)
    assert context == []
    logits, out = halves.run_back(acts, context)
    np.testing.assert_allclose(out, model(x), atol=1e-6)
    kernel, bias = model.get_layer("head").get_weights()
    pooled = np.asarray(base(x)).mean(axis=(1, 2))
    np.testing.assert_allclose(logits, pooled @ kernel + bias, atol=1e-5)


def test_split_inside_a_nested_sequential_base_and_caller_model_untouched():
    model = _fixed_weights(nested_cnn())
    weights_before = [w.copy() for w in model.get_weights()]
    n_layers = len(model.layers)
    x = _pixels((2, 32, 32, 3))
    halves = split_at(model, "base/conv_a")
    acts, context = halves.run_front(x)
    base = model.get_layer("base")
    reference = keras.Model(base.inputs, base.get_layer("conv_a").output)
    np.testing.assert_allclose(acts, reference(x), atol=1e-6)
    logits, out = halves.run_back(acts, context)
    np.testing.assert_allclose(out, model(x), atol=1e-6)
    np.testing.assert_allclose(keras.ops.sigmoid(logits), out, atol=1e-6)
    assert len(model.layers) == n_layers
    assert model.get_layer("head").activation.__name__ == "sigmoid"
    for a, b in zip(weights_before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_flat_graph_names_every_layer_by_path_and_reads_logits():
    model, base = _functional_transfer()
    flat = flat_graph(model)
    assert {"base", "base/conv_a", "base/pool_a", "base/conv_b", "gap", "head"} <= set(flat.tensors)
    x = _pixels((1, 16, 16, 3))
    conv_b, logits, out = keras.Model(flat.inputs, [flat.tensors["base/conv_b"], flat.logits,
                                                    flat.output])(x)
    np.testing.assert_allclose(conv_b, base(x), atol=1e-6)
    np.testing.assert_allclose(out, model(x), atol=1e-6)
    np.testing.assert_allclose(keras.ops.softmax(logits), out, atol=1e-6)
    # a flat graph given to split_at is reused, not rebuilt
    halves = split_at(model, "base/conv_b", flat=flat)
    np.testing.assert_allclose(halves.run_front(x)[0], base(x), atol=1e-6)


@pytest.mark.parametrize("activation", ["tanh", "linear"])
def test_flat_graph_logits_when_the_output_activation_cannot_be_undone(activation):
    model = _fixed_weights(keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(3, 3, activation="relu", name="conv"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(2, activation=activation, name="out"),
    ]))
    flat = flat_graph(model)
    x = _pixels((2, 8, 8, 3))
    np.testing.assert_allclose(keras.Model(flat.inputs, flat.output)(x), model(x), atol=1e-6)
    if activation == "tanh":
        assert flat.logits is None
    else:  # a linear output is its own logits
        assert flat.logits is flat.output


def test_split_errors_are_model_errors():
    with pytest.raises(ModelError, match="no layer called 'base/nope'"):
        split_at(nested_cnn(), "base/nope")
    # the same layer name inside and outside the nested model: Keras cannot cut the graph
    model = clashing_names_cnn()
    with pytest.raises(ModelError, match="cannot be (rebuilt as one flat graph|cut at the layer)"):
        split_at(model, "conv")


def test_a_linear_output_model_is_cut_with_the_output_as_its_logits():
    # Keras will not list one tensor twice as the output of a model cut inside; the back half
    # then returns it once and run_back hands it out as both logits and output.
    model = _fixed_weights(keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(3, 3, activation="relu", name="conv"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(2, name="out"),
    ]))
    halves = split_at(model, "conv")
    assert halves.has_logits and halves.logits_are_output
    x = _pixels((2, 8, 8, 3))
    acts, context = halves.run_front(x)
    logits, out = halves.run_back(acts, context)
    kernel, bias = model.get_layer("out").get_weights()
    expected = np.asarray(acts).mean(axis=(1, 2)) @ kernel + bias  # by hand, in numpy
    np.testing.assert_allclose(out, expected, atol=1e-5)
    np.testing.assert_allclose(logits, expected, atol=1e-5)


def test_a_softmax_layer_at_the_end_gives_the_scores_before_it():
    dense = keras.Sequential([keras.Input((8, 8, 3)),
                              keras.layers.Conv2D(3, 3, activation="relu", name="conv"),
                              keras.layers.GlobalAveragePooling2D(name="gap"),
                              keras.layers.Dense(3, name="scores")])
    dense = _fixed_weights(dense)
    model = keras.Sequential([keras.Input((8, 8, 3)), *dense.layers,
                              keras.layers.Softmax(name="probabilities")])
    x = _pixels((2, 8, 8, 3))
    scores = np.asarray(dense(x))  # the same layers without the Softmax
    flat = flat_graph(model)
    np.testing.assert_allclose(keras.Model(flat.inputs, flat.logits)(x), scores, atol=1e-6)
    halves = split_at(model, "conv", flat=flat)
    assert halves.has_logits and not halves.logits_are_output
    logits, out = halves.run_back(*halves.run_front(x))
    np.testing.assert_allclose(logits, scores, atol=1e-6)
    np.testing.assert_allclose(out, keras.ops.softmax(scores), atol=1e-6)
    side_logits, side_out = side_model(model, logits=True, output=True)(x)
    np.testing.assert_allclose(side_logits, scores, atol=1e-6)
