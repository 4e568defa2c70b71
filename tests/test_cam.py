"""Class heatmaps (viz_core.methods.heatmap and its kernels): hand-computed maps, references, nested models, sign rules,
pointing on generated scenes, completeness of Integrated Gradients."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from skimage.transform import resize

from tests.conftest import clashing_names_cnn, nested_cnn, tiny_cnn, wrap
from viz_core.methods import registry as methods
from viz_core.methods import layer, scores, steps
from viz_core.methods.heatmap import class_heatmap
from viz_core.methods.scores import score_coefficients
from viz_core.methods.steps import layer_forward
from viz_core.models.catalog import DEMO_MODEL_FILE
from viz_core.errors import Cancelled, ParameterError
from viz_core.inputs.intake import ModelImage, image_from_array
from viz_core.maps import resize_map
from viz_core.models.targets import Target, class_score


def _image(seed=0, height=32, width=32):
    rng = np.random.default_rng(seed)
    return image_from_array(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), f"img{seed}")


# ----------------------------------------------------------------------------------------------
# Hand-computed maps
# ----------------------------------------------------------------------------------------------
U = np.array([[1.0, -0.5, 0.2], [0.3, 0.8, -1.0], [-0.4, 0.1, 0.6]], dtype="float32")  # 3 -> 3
C = np.array([0.1, -0.2, 0.05], dtype="float32")
W = np.array([[2.0, -1.0], [-0.5, 1.5], [1.0, 0.25]], dtype="float32")  # 3 channels -> 2 classes
B = np.array([0.3, -0.1], dtype="float32")


def _cam_model():
    """1x1 conv (fixed weights, ReLU) -> global average pooling -> dense softmax (fixed)."""
    x = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(3, 1, activation="relu", name="conv")
    head = keras.layers.Dense(2, activation="softmax", name="head")
    out = head(keras.layers.GlobalAveragePooling2D(name="gap")(conv(x)))
    model = keras.Model(x, out)
    conv.set_weights([U[None, None], C])
    head.set_weights([W, B])
    return wrap(model, labels=["left", "right"], preprocessing="none")


def _cam_view(model):
    pixels = np.arange(192, dtype="float32").reshape(8, 8, 3) % 7 - 3.0  # mixed signs, by hand
    return ModelImage(original=np.zeros((8, 8, 3), "uint8"), pixels=pixels, name="hand",
                          digest="hand-8x8")


def test_gradcam_equals_hand_computed_map():
    model = _cam_model()
    view = _cam_view(model)
    acts = np.maximum(view.pixels @ U + C, 0.0)  # (6, 6, 3)
    logits = acts.mean(axis=(0, 1)) @ W + B
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    for k in (0, 1):
        # d logit_k / d A_ijc = W[c, k] / 64 everywhere, so Grad-CAM weights are W[:, k] / 64
        raw = acts @ (W[:, k] / 64.0)
        result = class_heatmap(model, view, Target(k))
        np.testing.assert_allclose(result.raw, raw, rtol=1e-5, atol=1e-7)
        expected = np.maximum(raw, 0) / np.maximum(raw, 0).max()
        np.testing.assert_allclose(result.heatmap, expected, atol=1e-6)
        assert result.score == pytest.approx(float(logits[k]), abs=1e-5)
        assert result.probability == pytest.approx(float(probs[k]), abs=1e-6)
        assert (result.layer, result.label, result.score_kind) == ("conv", ["left", "right"][k],
                                                                   "logit")


def test_gradcam_plus_plus_equals_hand_computed_weights():
    model = _cam_model()
    view = _cam_view(model)
    acts = np.maximum(view.pixels @ U + C, 0.0)
    g = W[:, 1] / 64.0  # the gradient is the same at every position
    total = acts.sum(axis=(0, 1))
    # alpha = g^2 / (2 g^2 + S g^3) = 1 / (2 + S g); w = sum_ij alpha * relu(g) = 64 relu(g) alpha
    weights = 64.0 * np.maximum(g, 0) / (2.0 + total * g)
    result = class_heatmap(model, view, Target(1), "gradcam++")
    np.testing.assert_allclose(result.raw, acts @ weights, rtol=1e-5, atol=1e-7)


def test_probability_score_is_labelled_and_scales_gradcam_by_softmax_derivative():
    model = _cam_model()
    view = _cam_view(model)
    logit_map = class_heatmap(model, view, Target(0))
    prob_map = class_heatmap(model, view, Target(0, score="probability"))
    p = logit_map.probability
    # d p0 / d A = p0 (1 - p0) d(logit0 - logit1) / dA: a different map, hand-computable
    acts = np.maximum(view.pixels @ U + C, 0.0)
    np.testing.assert_allclose(prob_map.raw, acts @ (p * (1 - p) * (W[:, 0] - W[:, 1]) / 64.0),
                               rtol=1e-4, atol=1e-7)
    assert prob_map.score_kind == "probability"
    assert prob_map.score == pytest.approx(p, abs=1e-6)


def _linear_model():
    """A linear network (1x1 conv, flatten, dense): pixel gradients are known by hand."""
    keras.utils.set_random_seed(3)
    x = keras.Input((10, 8, 3))
    conv = keras.layers.Conv2D(2, 1, name="conv")
    out = keras.layers.Dense(3, activation="softmax", name="head")(
        keras.layers.Flatten()(conv(x)))
    return wrap(keras.Model(x, out), preprocessing="unit")


def test_pixel_methods_on_linear_model_equal_hand_gradients():
    model = _linear_model()
    view = model.view(_image(4, 10, 8))
    conv_kernel, _ = model.model.get_layer("conv").get_weights()
    dense_kernel, _ = model.model.get_layer("head").get_weights()
    k = 2
    # logit_k = sum_ijf (x_ijc / 255 * U_cf + c_f) W[(ij, f), k]  =>  d/dx_ijc = sum_f U_cf W / 255
    per_position = dense_kernel[:, k].reshape(10, 8, 2)
    grad = np.einsum("cf,ijf->ijc", conv_kernel[0, 0], per_position) / 255.0
    saliency = class_heatmap(model, view, Target(k), "saliency")
    np.testing.assert_allclose(saliency.raw, np.abs(grad).max(axis=-1), rtol=1e-4, atol=1e-8)
    assert saliency.layer == "input"
    # the gradient of a linear function does not change with noise
    smooth = class_heatmap(model, view, Target(k), "smoothgrad", samples=3, noise=0.3)
    np.testing.assert_allclose(smooth.raw, saliency.raw, rtol=1e-4, atol=1e-8)
    ig = class_heatmap(model, view, Target(k), "integrated_gradients", steps=4)
    attributions = view.pixels * grad  # exact for a linear score and a black baseline
    np.testing.assert_allclose(ig.raw, np.abs(attributions).sum(axis=-1), rtol=1e-4, atol=1e-6)
    assert ig.attribution_sum == pytest.approx(float(attributions.sum()), rel=1e-4)


# ----------------------------------------------------------------------------------------------
# References and model shapes
# ----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_vgg16_gradcam_equals_direct_gradient_tape(bench):
    model = bench.builtin_model("vgg16", "none")
    view = model.view(_image(7, 224, 224))
    vgg = model.model
    conv = vgg.get_layer("block5_conv3")
    head = vgg.get_layer("predictions")
    probe = keras.Model(vgg.inputs, [conv.output, head.input])
    kernel, bias = head.get_weights()
    x = tf.constant(model.batch([view]))
    result = None
    for k in (0, 1, 2):
        with tf.GradientTape() as tape:
            acts, penultimate = probe(x, training=False)
            logit = tf.matmul(penultimate, kernel)[:, k] + bias[k]
        grads = tape.gradient(logit, acts)[0].numpy()
        acts = acts[0].numpy()
        raw = (acts * grads.mean(axis=(0, 1))).sum(axis=-1)
        if raw.max() <= 0:  # random weights: use a class with positive evidence
            continue
        result = class_heatmap(model, view, Target(k))
        scale = np.abs(raw).max()
        np.testing.assert_allclose(result.raw / scale, raw / scale, atol=1e-5)
        heat = resize(np.maximum(raw, 0), (224, 224), order=1, mode="edge")
        np.testing.assert_allclose(result.heatmap, heat / heat.max(), atol=1e-5)
        assert result.layer == "block5_conv3"
        assert result.score == pytest.approx(float(logit[0]), rel=1e-5, abs=1e-5)
        break
    assert result is not None, "no class with positive Grad-CAM evidence among 0..2"


def _flat_twin(nested):
    base = nested.get_layer("base")
    twin = keras.Sequential([keras.Input((32, 32, 3))] + [
        type(layer).from_config(layer.get_config()) for layer in base.layers
    ] + [keras.layers.Flatten(name="flatten"),
         keras.layers.Dense(1, activation="sigmoid", name="head")])
    for new, old in zip(twin.layers, list(base.layers) + [nested.get_layer("flatten"),
                                                          nested.get_layer("head")]):
        new.set_weights(old.get_weights())
    return twin


def test_nested_transfer_model_gives_same_map_as_flat_twin():
    nested = nested_cnn()
    flat = _flat_twin(nested)
    nested_model, flat_model = wrap(nested, name="nested"), wrap(flat, name="flat")
    assert nested_model.info.last_conv_layer == "base/conv_b"
    image = _image(1)
    for method in methods.names():
        params = {"smoothgrad": {"samples": 4}, "rise": {"masks": 64}}.get(method, {})
        a = class_heatmap(nested_model, nested_model.view(image), Target(1), method, **params)
        b = class_heatmap(flat_model, flat_model.view(image), Target(1), method, **params)
        assert a.layer == ("base/conv_b" if methods.uses_layer(method) else "input")
        np.testing.assert_allclose(a.heatmap, b.heatmap, atol=1e-5, err_msg=method)
        assert a.probability == pytest.approx(b.probability, abs=1e-6)


def test_single_sigmoid_class_maps_follow_sign_rule():
    model = wrap(nested_cnn(), labels=["cat", "dog"])
    view = model.view(_image(2))
    dog = class_heatmap(model, view, Target(1))
    cat = class_heatmap(model, view, Target(0))
    # class 0 is scored by -logit, so its gradients and its raw map are exactly negated
    np.testing.assert_allclose(cat.raw, -dog.raw, atol=1e-7)
    assert cat.score == pytest.approx(-dog.score, abs=1e-6)
    assert cat.probability == pytest.approx(1.0 - dog.probability, abs=1e-6)
    # after the ReLU, class 0 keeps exactly the places where class 1's map is negative
    negative = resize_map(np.maximum(-dog.raw, 0), 32, 32)
    if negative.max() > 0:
        np.testing.assert_allclose(cat.heatmap, negative / negative.max(), atol=1e-6)
    else:
        assert cat.empty and not dog.empty
    assert (cat.label, dog.label) == ("cat", "dog")


def test_skip_connection_model_matches_tape_reference():
    keras.utils.set_random_seed(5)
    x = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="a")(x)
    b = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="b")(a)
    s = keras.layers.Add(name="add")([a, b])
    out = keras.layers.Dense(3, activation="softmax", name="head")(
        keras.layers.GlobalAveragePooling2D()(s))
    model = wrap(keras.Model(x, out))
    view = model.view(_image(3, 16, 16))
    probe = keras.Model(x, [model.model.get_layer("b").output,
                            model.model.get_layer("head").input])
    kernel, bias = model.model.get_layer("head").get_weights()
    with tf.GradientTape() as tape:
        acts, pooled = probe(model.batch([view]))
        logit = tf.matmul(pooled, kernel)[:, 2] + bias[2]
    grads = tape.gradient(logit, acts)[0].numpy()
    raw = (acts[0].numpy() * grads.mean(axis=(0, 1))).sum(axis=-1)
    result = class_heatmap(model, view, Target(2), layer="b")
    np.testing.assert_allclose(result.raw, raw, rtol=1e-5, atol=1e-6)
    assert len(layer_forward(model, view, "b").context) == 1  # the skip branch "a"


def test_models_that_cannot_be_cut_fall_back_to_the_whole_model():
    # the same layer name inside and outside the nested model: Keras refuses a flat graph
    keras.utils.set_random_seed(6)
    model = clashing_names_cnn()
    loaded = wrap(model)
    view = loaded.view(_image(5, 16, 16))
    probe = keras.Model(model.inputs, [model.get_layer("conv").output,
                                       model.get_layer("out").input])
    kernel, bias = model.get_layer("out").get_weights()
    with tf.GradientTape() as tape:
        acts, pooled = probe(loaded.batch([view]))
        logit = tf.matmul(pooled, kernel)[:, 0] + bias[0]
    grads = tape.gradient(logit, acts)[0].numpy()
    raw = (acts[0].numpy() * grads.mean(axis=(0, 1))).sum(axis=-1)
    result = class_heatmap(loaded, view, Target(0), layer="conv")
    np.testing.assert_allclose(result.raw, raw, rtol=1e-5, atol=1e-6)
    assert steps.model_split(loaded, "conv").headless


def test_score_coefficients_agree_with_targets_class_score(rng):
    logits = rng.normal(size=(4, 5)).astype("float32")
    for kind, units in (("softmax", 5), ("multilabel", 5), ("linear", 5), ("binary", 1)):
        lg = logits[:, :units]
        out = {"softmax": tf.nn.softmax(lg).numpy(), "multilabel": tf.sigmoid(lg).numpy(),
               "linear": lg, "binary": tf.sigmoid(lg).numpy()}[kind]
        for k in range(2 if kind == "binary" else units):
            for score in ("logit", "probability"):
                target = Target(k, score)
                v_logit, v_prob, offset = score_coefficients(target, kind, units)
                got = scores.score_tensor(lg, out, v_logit, v_prob, offset, kind)
                want = class_score(lg, out, target, kind)
                np.testing.assert_allclose(got, want, atol=1e-6, err_msg=f"{kind} {k} {score}")


def test_score_cam_weights_are_masked_image_probabilities():
    model = wrap(tiny_cnn(classes=3))
    view = model.view(_image(8))
    forward = layer_forward(model, view, "conv_b")
    acts = forward.activations  # (16, 16, 6)
    result = class_heatmap(model, view, Target(1, "probability"), "scorecam")
    weights = []
    for c in range(acts.shape[-1]):
        up = resize(acts[:, :, c], (32, 32), order=1, mode="edge")
        span = up.max() - up.min()
        if acts[:, :, c].max() - acts[:, :, c].min() <= 1e-7:
            weights.append(0.0)
            continue
        mask = (up - up.min()) / span
        masked = view.pixels * mask[:, :, None] / 255.0
        weights.append(float(model.model(masked[None])[0, 1]))
    np.testing.assert_allclose(result.raw, acts @ np.array(weights, "float32"), rtol=1e-5,
                               atol=1e-6)


def test_integrated_gradients_sum_to_score_difference():
    model = wrap(tiny_cnn(classes=3))
    view = model.view(_image(9))
    result = class_heatmap(model, view, Target(0), "integrated_gradients", steps=128)
    pooled = keras.Model(model.model.inputs, model.model.get_layer("head").input)
    kernel, bias = model.model.get_layer("head").get_weights()
    x = np.concatenate([model.batch([view]), np.zeros((1, 32, 32, 3), "float32")])
    logits = np.asarray(pooled(x)) @ kernel + bias
    direct = float(logits[0, 0] - logits[1, 0])
    assert result.score_difference == pytest.approx(direct, rel=1e-4, abs=1e-6)
    assert abs(result.attribution_sum - direct) <= 0.05 * abs(direct)


# ----------------------------------------------------------------------------------------------
# Contract over every method, errors, progress, cancellation, caching
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", methods.names())
def test_every_method_returns_a_map_in_unit_range_at_input_resolution(method):
    model = wrap(tiny_cnn(size=24, classes=4), labels=["a", "b", "c", "d"])
    view = model.view(_image(10, 40, 30))
    seen = []
    result = class_heatmap(model, view, Target(3), method,
                           progress=lambda f, m: seen.append(f))
    assert result.heatmap.shape == (24, 24) and result.heatmap.dtype == np.float32
    assert result.heatmap.min() >= 0.0
    assert result.heatmap.max() == pytest.approx(1.0) or result.empty
    assert (result.method, result.class_index, result.label) == (method, 3, "d")
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    expected_raw = (12, 12) if methods.uses_layer(method) else (24, 24)
    assert result.raw.shape == expected_raw
    np.testing.assert_allclose(
        result.heatmap,
        resize_map(np.maximum(result.raw, 0), 24, 24) / resize_map(np.maximum(result.raw, 0),
                                                                   24, 24).max(), atol=1e-6)


def test_bad_inputs_raise_parameter_errors_naming_the_value():
    model = wrap(tiny_cnn(classes=3))
    view = model.view(_image(11))
    cases = [
        (dict(method="gradcam_pp"), "gradcam_pp"),
        (dict(method="gradcam", layer="gap"), "gap"),
        (dict(method="gradcam", layer="conv_z"), "conv_z"),
        (dict(method="gradcam", steps=3), "steps"),
        (dict(method="integrated_gradients", steps=1), "1"),
        (dict(method="smoothgrad", noise=2.0), "2.0"),
        (dict(method="scorecam", max_channels=0), "0"),
    ]
    for kwargs, named in cases:
        with pytest.raises(ParameterError, match=named):
            class_heatmap(model, view, Target(0), **kwargs)
    with pytest.raises(ParameterError, match="7"):
        class_heatmap(model, view, Target(7))
    other = wrap(tiny_cnn(size=24))
    with pytest.raises(ParameterError, match="24"):
        class_heatmap(other, view, Target(0))


def test_should_stop_cancels_between_batches():
    model = wrap(tiny_cnn(classes=3))
    view = model.view(_image(12))
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(Cancelled):
        class_heatmap(model, view, Target(0), "smoothgrad", samples=40, should_stop=stop)
    assert len(calls) == 2  # the first batch ran, the second was refused


def test_class_switch_reuses_the_forward_pass_and_model_is_untouched():
    keras_model = tiny_cnn(classes=3)
    model = wrap(keras_model)
    view = model.view(_image(13))
    x = model.batch([view])
    before = np.asarray(keras_model(x))
    weights = [w.copy() for w in keras_model.get_weights()]
    cache = steps.step_cache(model)
    class_heatmap(model, view, Target(0))
    misses = cache.stats.misses
    class_heatmap(model, view, Target(1))
    class_heatmap(model, view, Target(1), "gradcam++")
    # one new entry (class 1's gradient); the forward pass and class 1 again come from the cache
    assert cache.stats.misses == misses + 1
    assert ("forward", view.cache_key, "conv_b") in cache
    np.testing.assert_array_equal(np.asarray(keras_model(x)), before)
    assert len(keras_model.layers) == 5
    for a, b in zip(weights, keras_model.get_weights()):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------------------------
# Demo model: does the map point at the shape?
# ----------------------------------------------------------------------------------------------
demo_only = pytest.mark.skipif(not DEMO_MODEL_FILE.exists(),
                               reason="the demo model is not built yet")


def _inside(peak, box):
    x, y = peak
    x0, y0, x1, y1 = box
    return x0 <= x < x1 and y0 <= y < y1


@pytest.mark.slow
@demo_only
def test_demo_gradcam_equals_the_training_check(bench):
    """The demo package's own small Grad-CAM (used for the model card) is an independent
    implementation: both must give the same maps."""
    from viz_core.demo.evaluate import class_heatmaps
    from viz_core.demo.shapes import draw_scene

    model = bench.builtin_model("demo")
    scenes = [draw_scene(seed) for seed in range(7_300_000, 7_300_006)]
    classes = np.array([scene.shapes[0].class_index for scene in scenes])
    pixels = np.stack([scene.image for scene in scenes]).astype("float32") / 255.0
    reference = class_heatmaps(model.model, pixels, classes)
    for scene, k, expected in zip(scenes, classes, reference):
        view = model.view(image_from_array(scene.image, f"scene{scene.seed}"))
        np.testing.assert_allclose(class_heatmap(model, view, Target(int(k))).heatmap, expected,
                                   atol=1e-4)


@pytest.mark.slow
@demo_only
def test_demo_gradcam_points_at_single_shapes(bench):
    from viz_core.demo.shapes import draw_scene

    model = bench.builtin_model("demo")
    hits = []
    for seed in range(7_000_000, 7_000_040):
        scene = draw_scene(seed)
        shape = scene.shapes[0]
        view = model.view(image_from_array(scene.image, f"scene{seed}"))
        result = class_heatmap(model, view, Target(shape.class_index))
        hits.append(_inside(result.peak, shape.box))
    assert np.mean(hits) >= 0.90, f"pointing {np.mean(hits):.0%}"


@pytest.mark.slow
@demo_only
def test_demo_gradcam_separates_two_shapes(bench):
    from viz_core.demo.shapes import CLASS_NAMES, draw_scene

    model = bench.builtin_model("demo")
    hits = []
    pairs = [(a, b) for a in CLASS_NAMES for b in CLASS_NAMES if a < b]
    for i, seed in enumerate(range(7_100_000, 7_100_030)):
        scene = draw_scene(seed, pairs[i % len(pairs)])
        view = model.view(image_from_array(scene.image, f"pair{seed}"))
        for shape in scene.shapes:
            result = class_heatmap(model, view, Target(shape.class_index))
            hits.append(_inside(result.peak, shape.box))
    assert np.mean(hits) >= 0.85, f"pointing {np.mean(hits):.0%}"


@pytest.mark.slow
@demo_only
def test_demo_integrated_gradients_complete_within_five_percent(bench):
    from viz_core.demo.shapes import draw_scene

    model = bench.builtin_model("demo")
    scene = draw_scene(7_200_000, ("star",))
    view = model.view(image_from_array(scene.image, "star"))
    # Completeness improves with steps (5.4% at 64, 1.4% at 256 on this model).
    result = class_heatmap(model, view, Target(3), "integrated_gradients", steps=256)
    assert abs(result.attribution_sum - result.score_difference) <= 0.05 * abs(
        result.score_difference)


@pytest.mark.parametrize("ending", ["softmax_layer", "linear"])
def test_softmax_layer_and_linear_outputs_are_cut_and_scored_before_the_softmax(ending):
    """Grad-CAM of the logit for a model ending in a Softmax layer, or in no activation,
    equals a GradientTape reference on the Dense scores, computed from the model cut at the
    layer (not the whole-model fallback)."""
    keras.utils.set_random_seed(8)
    x = keras.Input((20, 20, 3))
    acts_t = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    scores_t = keras.layers.Dense(3, name="scores")(
        keras.layers.GlobalAveragePooling2D()(acts_t))
    out = keras.layers.Softmax(name="probabilities")(scores_t) if ending != "linear" else scores_t
    model = wrap(keras.Model(x, out), preprocessing="unit")
    assert model.info.output_kind == ("softmax" if ending != "linear" else "linear")
    view = model.view(_image(9, 20, 20))
    probe = keras.Model(x, [acts_t, scores_t])
    with tf.GradientTape() as tape:
        acts, scores = probe(model.batch([view]))
        score = scores[:, 1]
    grads = tape.gradient(score, acts)[0].numpy()
    raw = (acts[0].numpy() * grads.mean(axis=(0, 1))).sum(axis=-1)
    result = class_heatmap(model, view, Target(1), layer="conv")
    np.testing.assert_allclose(result.raw, raw, rtol=1e-5, atol=1e-6)
    assert not steps.model_split(model, "conv").headless


def test_score_cam_scores_each_masked_image_once(monkeypatch):
    """Another class of the same image, or more channels, only runs the model on masks it has
    not seen; the maps equal those computed from scratch."""
    model = wrap(tiny_cnn(classes=3, seed=5))
    view = model.view(_image(11))
    scored = []
    original = steps.pixel_scorer

    def counting(loaded):
        has_logits, scores, pixel_gradient = original(loaded)

        def spy(pixels):
            scored.append(int(pixels.shape[0]))
            return scores(pixels)

        return has_logits, spy, pixel_gradient

    monkeypatch.setattr(layer, "pixel_scorer", counting)
    first = class_heatmap(model, view, Target(0), "scorecam", max_channels=3)
    assert sum(scored) == 3
    other_class = class_heatmap(model, view, Target(2), "scorecam", max_channels=3)
    assert sum(scored) == 3  # the same three masks: nothing new to run
    more = class_heatmap(model, view, Target(2), "scorecam")  # all six channels
    usable = (np.ptp(layer_forward(model, view, "conv_b").activations, axis=(0, 1))
              > 1e-7).sum()
    assert sum(scored) == usable  # only the channels not scored before
    # the same maps as a model with nothing cached
    fresh = wrap(tiny_cnn(classes=3, seed=5))
    for result, target, channels in ((first, 0, 3), (other_class, 2, 3), (more, 2, None)):
        again = class_heatmap(fresh, fresh.view(_image(11)), Target(target), "scorecam",
                              max_channels=channels)
        np.testing.assert_allclose(result.raw, again.raw, rtol=1e-5, atol=1e-7)
