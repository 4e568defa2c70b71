"""Layer-wise relevance propagation (:mod:`viz_core.methods.relevance`): conservation, every rule
against a numpy reference, the BatchNorm canonizer, max-pool routing, refusals, the sign rule of
one sigmoid unit, the command line and the pointing game on the demo model."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from tests.conftest import nested_cnn, wrap
from viz_core.cli import main
from viz_core.errors import ModelError, ParameterError
from viz_core.inputs.intake import image_from_array
from viz_core.methods.heatmap import class_heatmap, class_heatmaps, top_classes
from viz_core.methods.relevance import Rule, build_plan, propagate
from viz_core.models.graph import flat_graph
from viz_core.models.targets import Target

L = keras.layers
TINY_EPS = 1e-9


def _view(model, seed=0):
    side = model.info.input_shape[0]
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return model.view(image_from_array(pixels, name=f"noise {seed}"))


def _conserves(loaded, method="lrp_epsilon", **params):
    """The map of the image's top class (a positive logit: z+ has nothing to hand back from a
    score with no positive contribution)."""
    view = _view(loaded)
    k = top_classes(loaded, view, 1)[0][0]
    result = class_heatmap(loaded, view, Target(k), method, **params)
    assert result.score > 1e-2  # a real score, not a dead network
    return result


# ----------------------------------------------------------------------------------------------
# Conservation: bias-free models, epsilon -> 0
# ----------------------------------------------------------------------------------------------
def _sequential_cnn():
    keras.utils.set_random_seed(3)
    return keras.Sequential([
        keras.Input((16, 16, 3)),
        L.Conv2D(6, 3, padding="same", activation="relu", use_bias=False),
        L.MaxPooling2D(2),
        L.Conv2D(8, 3, padding="same", use_bias=False),
        L.ReLU(),
        L.AveragePooling2D(2),
        L.Dropout(0.5),
        L.Flatten(),
        L.Dense(10, activation="relu", use_bias=False),
        L.Dense(3, activation="softmax", use_bias=False),
    ])


def _residual_cnn():
    """Conv -> [conv, conv] added (a residual block) -> depthwise conv, concatenated with its
    input -> global average pooling -> dense; no biases."""
    keras.utils.set_random_seed(5)
    x = inputs = keras.Input((12, 12, 3))
    x = L.Conv2D(4, 3, padding="same", activation="relu", use_bias=False)(x)
    branch = L.Conv2D(4, 3, padding="same", activation="relu", use_bias=False)(x)
    branch = L.Conv2D(4, 3, padding="same", use_bias=False)(branch)
    x = L.Activation("relu")(L.Add()([x, branch]))
    deep = L.DepthwiseConv2D(3, padding="same", activation="relu", use_bias=False)(x)
    x = L.Concatenate()([x, deep])
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(3, activation="softmax", use_bias=False)(x))


@pytest.mark.parametrize("build", [_sequential_cnn, _residual_cnn])
# (alpha-beta conserves only where every unit has negative contributions too; a ReLU-sparse
# depthwise conv has units without, whose beta share is lost: checked by the numpy reference)
@pytest.mark.parametrize("method, params", [("lrp_epsilon", {"epsilon": TINY_EPS}),
                                            ("lrp_zplus", {}),
                                            ("lrp_composite", {"epsilon": TINY_EPS})])
def test_relevance_is_conserved_without_biases(build, method, params):
    result = _conserves(wrap(build()), method, **params)
    assert result.attribution_sum == pytest.approx(result.score, abs=1e-4, rel=1e-3)
    assert float(result.raw.sum()) == pytest.approx(result.score, abs=1e-4, rel=1e-3)


def _folded_bn_cnn(shift_free=True):
    """Conv (no activation) -> BatchNorm -> ReLU -> GAP -> Dense, BN statistics random. With
    ``shift_free`` the BN's shift is zero, so the folded conv has no bias either."""
    keras.utils.set_random_seed(5)
    model = keras.Sequential([
        keras.Input((10, 10, 3)),
        L.Conv2D(5, 3, padding="same", use_bias=False, name="conv"),
        L.BatchNormalization(name="bn"),
        L.ReLU(),
        L.GlobalAveragePooling2D(),
        L.Dense(2, activation="softmax", use_bias=False),
    ])
    rng = np.random.default_rng(5)
    gamma, mean = rng.uniform(0.5, 2.0, 5), rng.normal(0, 0.5, 5)
    var = rng.uniform(0.5, 2.0, 5)
    beta = mean * gamma / np.sqrt(var + 1e-3) if shift_free else rng.normal(0, 0.5, 5)
    model.get_layer("bn").set_weights([gamma, beta, mean, var])
    return model


def test_relevance_is_conserved_through_a_folded_batchnorm():
    result = _conserves(wrap(_folded_bn_cnn()), "lrp_epsilon", epsilon=TINY_EPS)
    assert result.attribution_sum == pytest.approx(result.score, abs=1e-4, rel=1e-3)


# ----------------------------------------------------------------------------------------------
# Hand formulas and a numpy reference of every rule
# ----------------------------------------------------------------------------------------------
def _dense_model(x_dim=4, hidden=3, classes=2, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((x_dim,)), L.Dense(hidden, activation="relu"),
                             L.Dense(classes, activation="softmax")])


def _propagate(model, x, k, rule):
    plan = build_plan(flat_graph(model))
    units = int(model.outputs[0].shape[-1])
    v = np.eye(units, dtype="float32")[k][None]
    r, logits, _ = propagate(plan, np.asarray(x, "float32")[None], v, lambda step: rule)
    return np.asarray(r)[0].astype("float64"), np.asarray(logits)[0].astype("float64")


def test_epsilon_on_dense_layers_equals_the_hand_formula():
    model = _dense_model()
    rng = np.random.default_rng(1)
    for layer in model.layers:
        layer.set_weights([rng.normal(size=w.shape) for w in layer.get_weights()])
    (w1, b1), (w2, b2) = (layer.get_weights() for layer in model.layers)
    x, eps, k = rng.normal(size=4), 0.1, 1
    got, logits = _propagate(model, x, k, Rule("epsilon", epsilon=eps))
    a = np.maximum(x @ w1 + b1, 0)
    z2 = a @ w2 + b2
    r2 = np.eye(2)[k] * z2
    # R_i = sum_j x_i w_ij / (z_j + eps sign z_j) R_j, layer by layer
    r1 = (a[:, None] * w2 / (z2 + eps * np.where(z2 >= 0, 1, -1))) @ r2
    z1 = x @ w1 + b1
    r0 = (x[:, None] * w1 / (z1 + eps * np.where(z1 >= 0, 1, -1))) @ r1
    assert np.allclose(logits, z2, atol=1e-5)
    assert np.allclose(got, r0, atol=1e-5)


def test_zplus_on_a_dense_layer_equals_the_hand_formula():
    model = _dense_model(x_dim=5, hidden=4)
    rng = np.random.default_rng(2)
    for layer in model.layers:
        layer.set_weights([rng.normal(size=w.shape) for w in layer.get_weights()])
    (w1, b1), (w2, b2) = (layer.get_weights() for layer in model.layers)
    x, k = rng.normal(size=5), 0  # inputs of both signs: the x- W- half counts too
    got, _ = _propagate(model, x, k, Rule("alphabeta", alpha=1.0, beta=0.0))
    a = np.maximum(x @ w1 + b1, 0)
    r2 = np.eye(2)[k] * (a @ w2 + b2)
    c2 = np.maximum(a[:, None] * w2, 0)  # positive contributions only
    r1 = (c2 / (c2.sum(0) + np.maximum(b2, 0))) @ r2
    c1 = np.maximum(x[:, None] * w1, 0)
    r0 = (c1 / (c1.sum(0) + np.maximum(b1, 0))) @ r1
    assert np.allclose(got, r0, atol=1e-5)


def _conv_pool_dense():
    """8x8x3 -> Conv2D(3, 3x3, valid, relu) -> MaxPool 2 -> Flatten -> Dense(2), random biases."""
    keras.utils.set_random_seed(6)
    model = keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(3, 3, activation="relu"),
                              L.MaxPooling2D(2), L.Flatten(), L.Dense(2, activation="softmax")])
    rng = np.random.default_rng(6)
    conv, dense = model.layers[0], model.layers[3]
    conv.set_weights([rng.normal(0, 0.5, (3, 3, 3, 3)), rng.normal(0, 0.1, 3)])
    dense.set_weights([rng.normal(0, 0.5, (27, 2)), rng.normal(0, 0.1, 2)])
    return model


def _conv_matrix(kernel):
    """The valid 3x3 convolution on an 8x8 image as a (192, 108) matrix and its receptive-field
    mask, written with loops (indices in C order: y, x, channel)."""
    kh, kw, cin, cout = kernel.shape
    matrix, mask = np.zeros((8 * 8 * cin, 6 * 6 * cout)), np.zeros((8 * 8 * cin, 6 * 6 * cout))
    for oy in range(6):
        for ox in range(6):
            for f in range(cout):
                for dy in range(kh):
                    for dx in range(kw):
                        for c in range(cin):
                            i = ((oy + dy) * 8 + ox + dx) * cin + c
                            matrix[i, (oy * 6 + ox) * cout + f] = kernel[dy, dx, c, f]
                            mask[i, (oy * 6 + ox) * cout + f] = 1.0
    return matrix, mask


def _numpy_rule(rule, x, w, b, r, mask=None):
    """The rule on a dense layer ``x @ w + b`` from the contributions ``x_i w_ij``."""
    if rule.name == "flat":
        return (mask / mask.sum(0)) @ r
    c = x[:, None] * w
    if rule.name == "epsilon":
        z = c.sum(0) + b
        return (c / (z + rule.epsilon * np.where(z >= 0, 1, -1))) @ r
    pos, neg = np.maximum(c, 0), np.minimum(c, 0)
    out = rule.alpha * (pos / (pos.sum(0) + np.maximum(b, 0))) @ r
    if rule.beta:
        out -= rule.beta * (neg / (neg.sum(0) + np.minimum(b, 0))) @ r
    return out


def _numpy_lrp(model, x, k, conv_rule, dense_rule):
    (kernel, b1), (w2, b2) = model.layers[0].get_weights(), model.layers[3].get_weights()
    matrix, mask = _conv_matrix(kernel)
    x = x.reshape(-1)
    a = np.maximum(x @ matrix + np.tile(b1, 36), 0).reshape(6, 6, 3)
    pooled = np.zeros((3, 3, 3))
    winner = {}
    for py in range(3):
        for px in range(3):
            for f in range(3):
                window = a[2 * py:2 * py + 2, 2 * px:2 * px + 2, f]
                dy, dx = np.unravel_index(np.argmax(window), (2, 2))
                pooled[py, px, f] = window[dy, dx]
                winner[(py, px, f)] = ((2 * py + dy) * 6 + 2 * px + dx) * 3 + f
    h = pooled.reshape(-1)
    r_out = np.eye(2)[k] * (h @ w2 + b2)
    r_pooled = _numpy_rule(dense_rule, h, w2, b2, r_out)
    r_act = np.zeros(108)
    for (py, px, f), i in winner.items():
        r_act[i] = r_pooled[(py * 3 + px) * 3 + f]
    r_in = _numpy_rule(conv_rule, x, matrix, np.tile(b1, 36), r_act, mask)
    return r_in.reshape(8, 8, 3).sum(-1)


@pytest.mark.parametrize("method, params, conv_rule, dense_rule", [
    ("lrp_epsilon", {"epsilon": 0.05}, Rule("epsilon", 0.05), Rule("epsilon", 0.05)),
    ("lrp_zplus", {}, Rule("alphabeta"), Rule("alphabeta")),
    ("lrp_alphabeta", {"alpha": 2.0, "beta": 1.0}, Rule("alphabeta", alpha=2.0, beta=1.0),
     Rule("alphabeta", alpha=2.0, beta=1.0)),
    ("lrp_composite", {"epsilon": 0.05}, Rule("flat"), Rule("epsilon", 0.05)),
])
def test_every_rule_equals_a_numpy_reference(method, params, conv_rule, dense_rule):
    model = _conv_pool_dense()
    loaded = wrap(model)
    for k in (0, 1):
        view = _view(loaded, seed=k)
        result = class_heatmap(loaded, view, Target(k), method, **params)
        x = view.pixels.astype("float64") / 255.0  # the "unit" preprocessing
        reference = _numpy_lrp(model, x, k, conv_rule, dense_rule)
        assert np.corrcoef(result.raw.ravel(), reference.ravel())[0, 1] >= 0.999
        assert np.allclose(result.raw, reference, atol=1e-5)
        assert result.attribution_sum == pytest.approx(reference.sum(), abs=1e-5)


@pytest.mark.parametrize("method, params", [("lrp_epsilon", {"epsilon": 0.05}),
                                            ("lrp_zplus", {}),
                                            ("lrp_alphabeta", {"alpha": 2.0, "beta": 1.0}),
                                            ("lrp_composite", {"epsilon": 0.05}),
                                            ("lrp_composite", {"epsilon": 0.05, "bounded": 1})])
def test_a_batch_gives_each_image_its_one_by_one_map(method, params, monkeypatch):
    """class_heatmaps runs LRP on the whole batch in one call (a residual model with a
    depthwise conv and a Concatenate, three images, three classes) and every map, sum and
    score equals class_heatmap's for that image within 1e-5."""
    from viz_core.methods import relevance

    loaded = wrap(_residual_cnn())
    views = [_view(loaded, seed) for seed in range(3)]
    targets = [Target(k) for k in (0, 2, 1)]
    alone = [class_heatmap(loaded, v, t, method, **params) for v, t in zip(views, targets)]
    calls = []
    original = relevance.relevance_maps
    monkeypatch.setattr(relevance, "relevance_maps",
                        lambda model, pixels, *a: calls.append(len(pixels)) or original(
                            model, pixels, *a))
    together = class_heatmaps(loaded, views, targets, method, params=params)
    assert calls == [3]  # one call for the three images
    for one, batched in zip(alone, together):
        assert batched.class_index == one.class_index
        assert np.abs(batched.raw).max() > 0
        assert np.allclose(batched.raw, one.raw, atol=1e-5)
        assert batched.attribution_sum == pytest.approx(one.attribution_sum, abs=1e-5)
        assert batched.score == pytest.approx(one.score, abs=1e-5)
        assert batched.probability == pytest.approx(one.probability, abs=1e-5)


def test_a_batch_too_large_for_one_sweep_is_cut_into_calls_with_the_same_maps(monkeypatch):
    from viz_core.methods import relevance

    loaded = wrap(_residual_cnn())
    views = [_view(loaded, seed) for seed in range(3)]
    whole = class_heatmaps(loaded, views, Target(1), "lrp_alphabeta")
    plan = relevance.build_plan(relevance.flat_model_graph(loaded))
    # room for one image's sweep only: three calls
    monkeypatch.setattr(relevance, "_CALL_BYTES", 3 * 4 * plan.values_per_image)
    assert relevance._images_per_call(loaded) == 1
    cut = class_heatmaps(loaded, views, Target(1), "lrp_alphabeta")
    for a, b in zip(whole, cut):
        assert np.allclose(a.raw, b.raw, atol=1e-6) and a.score == pytest.approx(b.score)


def test_the_bounded_first_layer_rule_equals_the_hand_formula():
    """z^B on a one-layer model (8x8 grey image -> Conv2D(2, 8x8) -> softmax, only the first
    two pixels weighted), "symmetric" preprocessing (x / 127.5 - 1: pixels 0 and 255 give the
    bounds l = -1, h = 1): R_i = (x_i w_i - l w+_i - h w-_i) / sum_i'(...) * z."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(2, 8), L.Flatten(),
                              L.Activation("softmax")])
    kernel = np.zeros((8, 8, 1, 2), "float32")
    kernel[0, :2, 0] = [[0.5, -1.0], [-2.0, 0.25]]
    model.layers[0].set_weights([kernel, np.array([0.1, -0.3], "float32")])
    loaded = wrap(model, preprocessing="symmetric")
    pixels = np.full((8, 8, 3), 128, "uint8")
    pixels[0, 0], pixels[0, 1] = 51, 204  # x = -0.6 and 0.6
    view = loaded.view(image_from_array(pixels, "two"))
    result = class_heatmap(loaded, view, Target(0), "lrp_composite", bounded=1)
    # by hand, class 0: w = (0.5, -2); x w = (-0.3, -1.2); l w+ = (-0.5, 0); h w- = (0, -2)
    # shares: (-0.3 + 0.5 - 0, -1.2 - 0 + 2) = (0.2, 0.8), sum 1; z = -0.3 - 1.2 + 0.1 = -1.4
    expected = np.zeros((8, 8))
    expected[0, :2] = [0.2 * -1.4, 0.8 * -1.4]
    assert result.score == pytest.approx(-1.4, abs=1e-5)
    assert np.allclose(result.raw, expected, atol=1e-5)
    flat = class_heatmap(loaded, view, Target(0), "lrp_composite")  # flat: 64 equal shares
    assert np.allclose(flat.raw, -1.4 / 64, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# The canonizer, max pooling, refusals
# ----------------------------------------------------------------------------------------------
def test_batchnorm_folding_equals_the_model_folded_by_hand():
    model = _folded_bn_cnn(shift_free=False)
    before = [w.copy() for w in model.get_weights()]
    gamma, beta, mean, var = model.get_layer("bn").get_weights()
    scale = gamma / np.sqrt(var + 1e-3)
    keras.utils.set_random_seed(0)
    by_hand = keras.Sequential([
        keras.Input((10, 10, 3)), L.Conv2D(5, 3, padding="same"), L.ReLU(),
        L.GlobalAveragePooling2D(), L.Dense(2, activation="softmax", use_bias=False)])
    by_hand.layers[0].set_weights([model.get_layer("conv").get_weights()[0] * scale,
                                   beta - mean * scale])
    by_hand.layers[-1].set_weights(model.layers[-1].get_weights())
    plan = build_plan(flat_graph(model))
    assert not any(isinstance(s.layer, L.BatchNormalization) for s in plan.steps)
    a, b = wrap(model), wrap(by_hand)
    for method in ("lrp_epsilon", "lrp_zplus", "lrp_composite"):
        ours = class_heatmap(a, _view(a), Target(1), method)
        theirs = class_heatmap(b, _view(b), Target(1), method)
        assert ours.score == pytest.approx(theirs.score, abs=1e-5)
        assert np.allclose(ours.raw, theirs.raw, atol=1e-5)
    assert all(np.array_equal(x, y) for x, y in zip(before, model.get_weights()))


def test_max_pooling_routes_relevance_to_each_window_winner():
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((4, 4, 1)), L.MaxPooling2D(2), L.Flatten(),
                              L.Dense(2, activation="softmax", use_bias=False)])
    x = np.random.default_rng(7).permutation(16).reshape(4, 4, 1).astype("float32") + 1
    got, _ = _propagate(model, x, 0, Rule("epsilon", epsilon=TINY_EPS))
    w = model.layers[-1].get_weights()[0]
    for py in range(2):
        for px in range(2):
            window = x[2 * py:2 * py + 2, 2 * px:2 * px + 2, 0]
            dy, dx = np.unravel_index(np.argmax(window), (2, 2))
            expected = np.zeros((2, 2))
            expected[dy, dx] = window[dy, dx] * w[py * 2 + px, 0]  # its share of logit 0
            assert np.allclose(got[2 * py:2 * py + 2, 2 * px:2 * px + 2, 0], expected, atol=1e-5)


def test_global_max_pooling_routes_relevance_to_each_channel_winner():
    keras.utils.set_random_seed(8)
    model = keras.Sequential([keras.Input((3, 3, 2)), L.GlobalMaxPooling2D(),
                              L.Dense(2, activation="softmax", use_bias=False)])
    x = np.random.default_rng(8).permutation(18).reshape(3, 3, 2).astype("float32") + 1
    got, _ = _propagate(model, x, 1, Rule("epsilon", epsilon=TINY_EPS))
    w = model.layers[-1].get_weights()[0]
    expected = np.zeros_like(got)
    for c in range(2):
        y, z = np.unravel_index(np.argmax(x[..., c]), (3, 3))
        expected[y, z, c] = x[y, z, c] * w[c, 1]
    assert np.allclose(got, expected, atol=1e-5)


class Doubler(L.Layer):
    def call(self, x):
        return x * 2.0


def test_a_layer_without_a_rule_is_refused_by_name():
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(2, 3, activation="relu")(inputs)
    x = Doubler(name="twice")(x)
    x = L.GlobalAveragePooling2D()(x)
    loaded = wrap(keras.Model(inputs, L.Dense(2, activation="softmax")(x)))
    with pytest.raises(ModelError, match=r"LRP has no rule for layer 'twice' \(Doubler\)"):
        class_heatmap(loaded, _view(loaded), Target(0), "lrp_epsilon")


def test_alpha_minus_beta_must_be_one_and_the_score_a_logit():
    loaded = wrap(_conv_pool_dense())
    with pytest.raises(ParameterError, match="alpha 3.0 and beta 1.0"):
        class_heatmap(loaded, _view(loaded), Target(0), "lrp_alphabeta", alpha=3.0, beta=1.0)
    with pytest.raises(ParameterError, match="logit"):
        class_heatmap(loaded, _view(loaded), Target(0, "probability"), "lrp_epsilon")


@pytest.mark.parametrize("method", ["lrp_epsilon", "lrp_alphabeta", "lrp_composite"])
def test_one_sigmoid_unit_class_0_is_the_negative_of_class_1(method):
    loaded = wrap(nested_cnn(size=16, classes=1))  # nested base model, flattened too
    view = _view(loaded)
    one = class_heatmap(loaded, view, Target(1), method)
    zero = class_heatmap(loaded, view, Target(0), method)
    assert np.abs(one.raw).max() > 0
    assert np.allclose(zero.raw, -one.raw, atol=1e-6)
    assert zero.score == pytest.approx(-one.score)


# ----------------------------------------------------------------------------------------------
# The command line and the demo model
# ----------------------------------------------------------------------------------------------
def test_heatmap_command_runs_lrp_and_reports_the_sum(tmp_path, capsys):
    from PIL import Image

    _conv_pool_dense().save(tmp_path / "tiny.keras")
    picture = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(picture).save(tmp_path / "noise.png")  # resized to the model's 8x8
    code = main(["heatmap", "--model", str(tmp_path / "tiny.keras"), "--image",
                 str(tmp_path / "noise.png"), "--class", "1", "--method", "lrp_epsilon",
                 "--epsilon", "0.05", "--out", str(tmp_path), "--json"])
    assert code == 0
    row = json.loads(capsys.readouterr().out)["results"][0]
    assert (row["method"], row["class_index"], row["params"]) == ("lrp_epsilon", 1,
                                                                    {"epsilon": 0.05})
    model = _conv_pool_dense()
    view = wrap(model).view(image_from_array(picture))
    x = view.pixels.astype("float64") / 255.0
    reference = _numpy_lrp(model, x, 1, Rule("epsilon", 0.05), Rule("epsilon", 0.05))
    assert row["attribution_sum"] == pytest.approx(reference.sum(), abs=1e-5)
    heat = np.load(row["npy"])
    assert np.unravel_index(np.argmax(heat), heat.shape) == np.unravel_index(
        np.argmax(reference), reference.shape)


def test_lrp_composite_points_at_the_shape_on_the_demo_model():
    from viz_core.metrics.pointing import pointing_game
    from viz_core.models.catalog import load_demo_model

    result = pointing_game(load_demo_model(), ["lrp_composite"], scenes=10)
    # measured: 10 of 10 (and 60 of 60 on 60 scenes); the floor leaves room for one miss
    assert result.score("lrp_composite").hit_rate >= 0.9
