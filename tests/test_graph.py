"""Side models: extra outputs from any layer, nested ones included, logits before softmax."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.conftest import nested_cnn, tiny_cnn
from viz_core.errors import ModelError
from viz_core.graph import side_model


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
