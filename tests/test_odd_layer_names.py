"""Layer names Keras accepts but TensorFlow cannot trace (spaces, unicode, ':', Markdown).

Every technique traces the model in ``tf.function``, where Keras opens a name scope per layer
name; ``conv 1`` used to fail there with "'conv 1' is not a valid scope name". An uploaded
model's layers are renamed on loading (``conv 1`` -> ``conv_1``) and every technique then gives
the same maps as the same model with plain names.
"""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from viz_core.features import activations
from viz_core.methods import heatmap as cam
from viz_core.features import filters
from viz_core.methods import lime as lime_explain
from viz_core.models.catalog import load_uploaded_model
from viz_core.models.inspect import make_names_scope_safe, scope_safe_name
from viz_core.inputs.intake import load_image
from viz_core.inputs.samples import sample_bytes
from viz_core.models.targets import Target

try:  # the method registry, where it exists; the heatmap module's list otherwise
    from viz_core.methods.registry import names as _method_names

    HEATMAP_METHODS = _method_names()
except ImportError:  # pragma: no cover
    HEATMAP_METHODS = cam.METHODS

ODD = ("conv 1", "猫", "a:b [c]", "![px](px.png)")
PLAIN = ("conv_a", "conv_b", "conv_c", "conv_d")


def cnn(names, model_name="tiny") -> keras.Model:
    """Four conv layers named ``names``, seeded: the same weights whatever the names."""
    keras.utils.set_random_seed(0)
    layers = [keras.Input((32, 32, 3))]
    for i, name in enumerate(names):
        layers.append(keras.layers.Conv2D(4, 3, padding="same", activation="relu", name=name))
        if i == 1:
            layers.append(keras.layers.MaxPooling2D(2, name="pool"))
    layers += [keras.layers.GlobalAveragePooling2D(name="gap"),
               keras.layers.Dense(3, activation="softmax", name="head")]
    return keras.Sequential(layers, name=model_name)


def uploaded(model, tmp: Path, name: str):
    path = tmp / f"{name}.keras"
    model.save(path)
    return load_uploaded_model(path.read_bytes(), f"{name}.keras")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("odd_names")
    odd = uploaded(cnn(ODD, model_name="my model"), tmp, "odd")
    plain = uploaded(cnn(PLAIN), tmp, "plain")
    image = load_image(sample_bytes("circle_and_star"), "circle_and_star.png")
    return odd, plain, odd.view(image), plain.view(image)


def test_names_become_scope_safe_and_readable():
    assert [scope_safe_name(n) for n in ODD] == [
        "conv_1", "u732b", "a_b__c_", "layer___px__px.png_"]
    assert scope_safe_name("x.y") == "x.y"  # already fine: left alone
    assert scope_safe_name("block5_conv3") == "block5_conv3"


def test_renaming_keeps_sibling_names_unique_and_reports_paths():
    inner = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(2, 3, name="c 1"),
                              keras.layers.Conv2D(2, 3, name="c_1")], name="my base")
    model = keras.Sequential([keras.Input((16, 16, 3)), inner, keras.layers.Flatten()])
    renamed = make_names_scope_safe(model)
    assert renamed == (("my base", "my_base"), ("my base/c 1", "my_base/c_1_2"))
    assert [layer.name for layer in inner.layers] == ["c_1_2", "c_1"]


def test_an_uploaded_model_says_which_layers_were_renamed(pair):
    odd, plain, _, _ = pair
    assert odd.renamed_layers == (("conv 1", "conv_1"), ("猫", "u732b"),
                                  ("a:b [c]", "a_b__c_"),
                                  ("![px](px.png)", "layer___px__px.png_"))
    assert plain.renamed_layers == ()
    assert odd.info.last_conv_layer == "layer___px__px.png_"


def test_feature_maps_are_those_of_plain_names(pair):
    odd, plain, odd_view, plain_view = pair
    got = activations.feature_maps(odd, odd_view)
    want = activations.feature_maps(plain, plain_view)
    assert len(got.layers) == len(want.layers) >= 4
    for a, b in zip(got.layers, want.layers):
        np.testing.assert_allclose(a.values, b.values, rtol=1e-5, atol=1e-6)


def test_filter_patterns_are_those_of_plain_names(pair):
    odd, plain, _, _ = pair
    got = filters.filter_patterns(odd, "u732b", [0, 1], steps=3, size=32)
    want = filters.filter_patterns(plain, "conv_b", [0, 1], steps=3, size=32)
    assert got.patterns.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(got.patterns, want.patterns)
    np.testing.assert_allclose(got.activations, want.activations, rtol=1e-5)


@pytest.mark.parametrize("method", HEATMAP_METHODS)
def test_class_heatmaps_are_those_of_plain_names(pair, method):
    odd, plain, odd_view, plain_view = pair
    got = cam.class_heatmap(odd, odd_view, Target(1), method=method, layer="a_b__c_")
    want = cam.class_heatmap(plain, plain_view, Target(1), method=method, layer="conv_c")
    assert got.heatmap.shape == want.heatmap.shape
    assert got.heatmap.max() <= 1.0
    np.testing.assert_allclose(got.heatmap, want.heatmap, atol=1e-4)


def test_lime_is_that_of_plain_names(pair):
    odd, plain, odd_view, plain_view = pair
    got = lime_explain.lime_explanation(odd, odd_view, [0, 1], samples=40, seed=3)
    want = lime_explain.lime_explanation(plain, plain_view, [0, 1], samples=40, seed=3)
    assert got.weights.shape == want.weights.shape == (2, got.count)
    np.testing.assert_allclose(got.weights, want.weights, atol=1e-5)
