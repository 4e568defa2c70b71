"""The alpha-beta rule's two paths (:mod:`viz_core.methods.relevance`): on a non-negative input
(after a ReLU, or pixels scaled to [0, 1]) the ``x-`` halves vanish and two products per layer
do; on an input with negative values the full four-term rule runs."""
from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import wrap
from tests.test_relevance import _conv_pool_dense, _numpy_lrp, _view
from viz_core.methods import relevance
from viz_core.methods.heatmap import class_heatmap
from viz_core.methods.relevance import Rule, build_plan, propagate
from viz_core.models.graph import flat_graph
from viz_core.models.targets import Target

L = keras.layers
RULES = [Rule("alphabeta", alpha=2.0, beta=1.0), Rule("alphabeta", alpha=1.0, beta=0.0)]


def _four_layer_cnn():
    """10x10x3 -> Conv2D(4, relu) -> DepthwiseConv2D(relu) -> MaxPool 2 -> Conv2D(5, relu) ->
    Flatten -> Dense(3): a stacked conv, a depthwise one and a dense layer, random biases."""
    keras.utils.set_random_seed(8)
    model = keras.Sequential([
        keras.Input((10, 10, 3)),
        L.Conv2D(4, 3, padding="same", activation="relu"),
        L.DepthwiseConv2D(3, padding="same", activation="relu"),
        L.MaxPooling2D(2),
        L.Conv2D(5, 3, padding="same", activation="relu"),  # kernel 180 > output 125 values
        L.Flatten(),
        L.Dense(3, activation="softmax"),
    ])
    rng = np.random.default_rng(8)
    for layer in model.layers:
        layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    return model


@pytest.mark.parametrize("rule", RULES)
def test_the_non_negative_shortcut_equals_the_full_four_term_rule(rule, monkeypatch):
    """Pixels in [0, 1] and ReLU outputs: the two-product path, and the four-term path forced
    on every layer (no layer known non-negative, the sign check always failing), give the same
    relevance within 1e-5."""
    model = _four_layer_cnn()
    plan = build_plan(flat_graph(model))
    assert len(plan.nonnegative) > 0  # the ReLU outputs are known non-negative
    x = np.random.default_rng(1).uniform(0, 1, (2, 10, 10, 3)).astype("float32")
    v = np.eye(3, dtype="float32")[[0, 2]]
    shortcut = np.asarray(propagate(plan, x, v, lambda step: rule)[0])

    calls = []
    signed_pair = relevance._signed_pair
    monkeypatch.setattr(relevance, "_signed_pair",
                        lambda *a: calls.append(type(a[0]).__name__) or signed_pair(*a))
    monkeypatch.setattr(relevance, "_no_negative_value", lambda x: tf.constant(False))
    full = np.asarray(propagate(replace(plan, nonnegative=frozenset()), x, v,
                                lambda step: rule)[0])
    assert calls == ["Conv2D", "DepthwiseConv2D", "Conv2D", "Dense"]  # every layer: four terms
    assert np.abs(shortcut).max() > 1e-3
    np.testing.assert_allclose(full, shortcut, atol=1e-5)


@pytest.mark.parametrize("method, params, rule", [
    ("lrp_alphabeta", {"alpha": 2.0, "beta": 1.0}, RULES[0]),
    ("lrp_zplus", {}, RULES[1]),
])
def test_a_first_layer_with_negative_inputs_uses_the_full_rule(method, params, rule,
                                                                monkeypatch):
    """Pixels scaled to [-1, 1] ("symmetric"): the first conv's input has negative values, so
    its x- W- (and x- W+) contributions count; the map equals the numpy reference written from
    the signed contributions x_i w_ij (correlation >= 0.999, values within 1e-5)."""
    model = _conv_pool_dense()
    loaded = wrap(model, preprocessing="symmetric")
    for k in (0, 1):
        view = _view(loaded, seed=k)
        result = class_heatmap(loaded, view, Target(k), method, **params)
        x = view.pixels.astype("float64") / 127.5 - 1.0
        assert x.min() < -0.5
        reference = _numpy_lrp(model, x, k, rule, rule)
        assert np.corrcoef(result.raw.ravel(), reference.ravel())[0, 1] >= 0.999
        np.testing.assert_allclose(result.raw, reference, atol=1e-5)
        assert result.attribution_sum == pytest.approx(reference.sum(), abs=1e-5)
        # the two-product shortcut, forced on this input, would have been wrong
        with monkeypatch.context() as patch:
            patch.setattr(relevance, "_no_negative_value", lambda x: tf.constant(True))
            plan = build_plan(flat_graph(model))
            v = np.eye(2, dtype="float32")[[k]]
            r = np.asarray(propagate(plan, x[None].astype("float32"), v, lambda step: rule)[0])
        assert np.abs(r[0].sum(-1) - reference).max() > 1e-3
