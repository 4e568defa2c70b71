"""Input x Gradient, VarGrad and SquareGrad (viz_core.methods.pixel) against numpy references
on tiny seeded models whose gradients are written out by hand."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.conftest import wrap
from viz_core.methods import registry as methods
from viz_core.methods.context import PixelBatch
from viz_core.methods.pixel import (input_x_gradient_map, noisy_copies, smoothgrad_map,
                                    squaregrad_map, vargrad_map)
from viz_core.models.preprocess import PREPROCESSING_NAMES, preprocess
from viz_core.models.targets import Target

SIZE = 8


def dense_model(hidden=0, seed=0, classes=3):
    """Identity 1x1 conv -> Flatten -> (Dense(hidden, relu) ->) Dense(classes, softmax):
    gradients by hand (the conv is there because only CNNs are accepted)."""
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((SIZE, SIZE, 3)),
              keras.layers.Conv2D(3, 1, use_bias=False, name="identity"),
              keras.layers.Flatten(name="flat")]
    if hidden:
        layers.append(keras.layers.Dense(hidden, activation="relu", name="hidden"))
    layers.append(keras.layers.Dense(classes, activation="softmax", name="head"))
    model = keras.Sequential(layers, name="dense")
    model.get_layer("identity").set_weights([np.eye(3, dtype="float32")[None, None]])
    return model


def pixels(n=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, SIZE, SIZE, 3)).astype("float32")


def relu_net_gradient(model, x, k):
    """d logit_k / d pixels of Flatten -> Dense(relu) -> Dense, 'unit' preprocessing: numpy."""
    w1, b1 = model.get_layer("hidden").get_weights()
    w2, _ = model.get_layer("head").get_weights()
    flat = x.reshape(len(x), -1).astype("float64") / 255.0
    on = (flat @ w1 + b1) > 0
    grads = (on * w2[:, k]) @ w1.T / 255.0
    return grads.reshape(x.shape)


@pytest.mark.parametrize("preprocessing", PREPROCESSING_NAMES)
def test_input_x_gradient_is_the_model_input_times_the_weights_of_a_linear_model(preprocessing):
    keras_model = dense_model()
    model = wrap(keras_model, preprocessing=preprocessing)
    x = pixels()
    raw = input_x_gradient_map(PixelBatch(model, x, (Target(2), Target(0))))
    w, _ = keras_model.get_layer("head").get_weights()
    inputs = preprocess(preprocessing, x).astype("float64")  # what the model reads
    for i, k in enumerate((2, 0)):
        want = (inputs[i] * w[:, k].reshape(SIZE, SIZE, 3)).sum(axis=-1)
        np.testing.assert_allclose(raw[i], want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_input_x_gradient_of_a_bias_free_relu_network_sums_to_the_logit():
    keras.utils.set_random_seed(3)
    keras_model = keras.Sequential([
        keras.Input((SIZE, SIZE, 3)),
        keras.layers.Conv2D(4, 3, activation="relu", use_bias=False, name="conv"),
        keras.layers.Flatten(),
        keras.layers.Dense(3, use_bias=False, activation="softmax", name="head")])
    model = wrap(keras_model)
    x = pixels(1, seed=5)
    raw = input_x_gradient_map(PixelBatch(model, x, (Target(1),)))
    logits = model.side_model((), logits=True)(preprocess("unit", x))
    logit = float(np.asarray(logits[0] if isinstance(logits, list) else logits)[0, 1])
    assert float(raw.sum()) == pytest.approx(logit, rel=1e-4)


def test_vargrad_and_squaregrad_are_the_variance_and_mean_square_of_noisy_gradients():
    keras_model = dense_model(hidden=5, seed=1)
    model = wrap(keras_model)
    x = pixels(2, seed=2)
    params = {"samples": 6, "noise": 0.2, "seed": 7}
    batch = PixelBatch(model, x, (Target(1), Target(2)))
    copies = noisy_copies(x, **params)
    # the noise SmoothGrad always drew: each image gets default_rng(seed)'s first draws
    np.testing.assert_allclose(copies[1] - x[1], np.random.default_rng(7).normal(
        0.0, 0.2 * 255, (6, SIZE, SIZE, 3)), rtol=1e-5, atol=1e-3)
    grads = np.stack([relu_net_gradient(keras_model, copies[i], k)
                      for i, k in enumerate((1, 2))])  # (2, 6, H, W, C)
    np.testing.assert_allclose(vargrad_map(batch, **params), grads.var(axis=1).sum(axis=-1),
                               rtol=1e-3, atol=1e-12)
    np.testing.assert_allclose(squaregrad_map(batch, **params),
                               (grads ** 2).mean(axis=1).sum(axis=-1), rtol=1e-3, atol=1e-12)
    np.testing.assert_allclose(smoothgrad_map(batch, **params),
                               np.abs(grads.mean(axis=1)).max(axis=-1), rtol=1e-3, atol=1e-9)


def test_vargrad_of_a_linear_model_is_zero_and_squaregrad_the_squared_weights():
    keras_model = dense_model()
    model = wrap(keras_model)
    batch = PixelBatch(model, pixels(1), (Target(0),))
    params = {"samples": 4, "noise": 0.3, "seed": 0}
    w, _ = keras_model.get_layer("head").get_weights()
    grad = w[:, 0].reshape(SIZE, SIZE, 3) / 255.0  # the same gradient at every copy
    assert float(np.abs(vargrad_map(batch, **params)).max()) < 1e-12
    np.testing.assert_allclose(squaregrad_map(batch, **params)[0], (grad ** 2).sum(axis=-1),
                               rtol=1e-4)


def test_the_family_is_registered_with_smoothgrads_noise_parameters():
    for name in ("input_x_gradient", "vargrad", "squaregrad"):
        spec = methods.get(name)
        assert (spec.family, spec.inputs) == ("pixel-gradient", "pixel-gradients")
    assert methods.get("vargrad").params is methods.get("smoothgrad").params
    assert methods.get("squaregrad").params is methods.get("smoothgrad").params
    assert "preprocessing" in methods.get("input_x_gradient").help
