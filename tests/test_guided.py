"""Guided Backpropagation and Guided Grad-CAM (viz_core.methods.guided): the guided gradient of
a tiny model written out in numpy, the caller's model untouched, clear refusals, and the
sanity check's lesson on the demo model (Adebayo et al. 2018)."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.conftest import clashing_names_cnn, tiny_cnn, wrap
from viz_core.errors import ModelError
from viz_core.inputs.intake import image_from_array
from viz_core.maps import resize_map
from viz_core.methods.context import PixelBatch
from viz_core.methods.guided import guided_gradients, guided_model
from viz_core.methods.heatmap import class_heatmap
from viz_core.models.catalog import DEMO_MODEL_FILE
from viz_core.models.targets import Target

SIZE = 8


def relu_model(seed=0):
    """Conv(relu) -> Conv 1x1 -> ReLU layer -> Flatten -> Dense(relu) -> Dense(softmax):
    the three ways a ReLU appears."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((SIZE, SIZE, 3)),
        keras.layers.Conv2D(2, 3, activation="relu", name="conv"),
        keras.layers.Conv2D(3, 1, name="mix"),
        keras.layers.ReLU(name="relu"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(5, activation="relu", name="hidden"),
        keras.layers.Dense(3, activation="softmax", name="head"),
    ], name="relus")


def guided_reference(model, pixels, k):
    """The guided gradient of logit ``k`` w.r.t. the pixels, by hand (numpy, float64)."""
    kc, bc = (w.astype("float64") for w in model.get_layer("conv").get_weights())
    km, bm = (w.astype("float64") for w in model.get_layer("mix").get_weights())
    kh, bh = (w.astype("float64") for w in model.get_layer("hidden").get_weights())
    ko, _ = (w.astype("float64") for w in model.get_layer("head").get_weights())
    x = pixels.astype("float64") / 255.0  # "unit" preprocessing
    out = SIZE - 2
    patches = np.stack([x[i:i + 3, j:j + 3] for i in range(out) for j in range(out)])
    z1 = np.einsum("pabc,abcf->pf", patches, kc).reshape(out, out, 2) + bc
    a1 = np.maximum(z1, 0)
    z2 = a1 @ km[0, 0] + bm
    a2 = np.maximum(z2, 0)
    z3 = a2.reshape(-1) @ kh + bh

    def guided(grad, z):  # a guided ReLU: input positive and gradient positive
        return grad * (z > 0) * (grad > 0)

    g = guided(ko[:, k], z3)
    g = guided((kh @ g).reshape(out, out, 3), z2)
    g = guided(g @ km[0, 0].T, z1)
    grad_x = np.zeros_like(x)
    for p, (i, j) in enumerate((i, j) for i in range(out) for j in range(out)):
        grad_x[i:i + 3, j:j + 3] += np.einsum("abcf,f->abc", kc, g.reshape(-1, 2)[p])
    return grad_x / 255.0


def views(model, n=2, seed=0):
    rng = np.random.default_rng(seed)
    return [model.view(image_from_array(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8),
                                        f"img{i}")) for i in range(n)]


def test_guided_gradient_equals_the_hand_computed_one():
    keras_model = relu_model(seed=2)
    model = wrap(keras_model)
    images = views(model, 3)
    pixels = np.stack([v.pixels for v in images]).astype("float32")
    targets = (Target(0), Target(1), Target(2))
    got = guided_gradients(PixelBatch(model, pixels, targets))
    for i, target in enumerate(targets):
        want = guided_reference(keras_model, pixels[i], target.class_index)
        assert np.abs(want).max() > 0
        np.testing.assert_allclose(got[i], want, atol=1e-5 * max(1.0, np.abs(want).max()))
    # not the plain gradient: some negative gradients were stopped
    _, plain = PixelBatch(model, pixels, targets).gradients(pixels[:, None])
    assert not np.allclose(plain[:, 0], got, atol=1e-6)
    # the registered method: the largest magnitude over the colour channels
    single = class_heatmap(model, images[1], Target(1), "guided_backprop")
    np.testing.assert_allclose(single.raw, np.abs(guided_reference(keras_model, pixels[1], 1))
                               .max(axis=-1), atol=1e-5 * np.abs(single.raw).max())


def test_the_callers_model_keeps_its_weights_layers_and_outputs():
    keras_model = relu_model(seed=3)
    model = wrap(keras_model)
    images = views(model, 2, seed=1)
    x = model.batch(images)
    weights = [w.copy() for w in keras_model.get_weights()]
    layers = [(layer.name, getattr(layer, "activation", None)) for layer in keras_model.layers]
    before = np.asarray(keras_model(x, training=False))
    class_heatmap(model, images[0], Target(1), "guided_backprop")
    guided = guided_model(model)
    assert guided is guided_model(model)  # built once per model
    for a, b in zip(weights, keras_model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert [(layer.name, getattr(layer, "activation", None))
            for layer in keras_model.layers] == layers
    np.testing.assert_array_equal(np.asarray(keras_model(x, training=False)), before)
    # the side model computes the same outputs with the same (shared) weights
    np.testing.assert_allclose(np.asarray(guided.model(x, training=False)), before, atol=1e-6)
    assert keras_model.get_layer("conv").kernel is next(
        layer for layer in guided.model.layers if layer.name == "conv").kernel


def test_the_cached_side_model_sees_new_weights_as_the_sanity_check_assigns_them():
    keras_model = relu_model(seed=5)
    model = wrap(keras_model)
    pixels = np.stack([v.pixels for v in views(model, 1, seed=6)]).astype("float32")
    batch = PixelBatch(model, pixels, (Target(2),))
    first = guided_gradients(batch)[0]
    rng = np.random.default_rng(0)
    for name in ("hidden", "mix"):  # in place, as randomise_layer does on its clone
        for variable in keras_model.get_layer(name).weights:
            variable.assign(rng.normal(0, 0.5, variable.shape).astype("float32"))
    again = guided_gradients(batch)[0]
    want = guided_reference(keras_model, pixels[0], 2)
    assert not np.allclose(first, again)
    np.testing.assert_allclose(again, want, atol=1e-5 * max(1.0, np.abs(want).max()))


def test_guided_gradcam_is_guided_backprop_times_upsampled_gradcam():
    model = wrap(tiny_cnn(size=16, classes=3, seed=4))
    view = model.view(image_from_array(np.random.default_rng(3).integers(
        0, 256, (16, 16, 3), dtype=np.uint8), "img"))
    guided = class_heatmap(model, view, Target(2), "guided_backprop").raw
    cam = class_heatmap(model, view, Target(2), "gradcam").raw
    want = guided * resize_map(np.maximum(cam, 0), 16, 16)
    got = class_heatmap(model, view, Target(2), "guided_gradcam").raw
    assert want.max() > 0
    np.testing.assert_allclose(got, want, atol=1e-6 * want.max())


def test_a_model_that_cannot_be_rebuilt_is_refused_naming_the_layer():
    model = wrap(clashing_names_cnn())
    view = model.view(image_from_array(np.zeros((16, 16, 3), np.uint8), "black"))
    with pytest.raises(ModelError, match="Guided Backpropagation.*'conv'"):
        class_heatmap(model, view, Target(1), "guided_backprop")


@pytest.mark.slow  # loads the demo model and draws 3 methods x 3 models (about 5 s)
@pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="the demo model is not committed")
@pytest.mark.parametrize("shape", ["star", "circle"])
def test_guided_backprop_keeps_its_picture_when_the_top_layers_are_random(shape):
    """Adebayo et al. 2018 on the demo model: with the output layer random, Guided Backprop's
    map stays (SSIM above the page's 0.9: flagged) while the gradient's and Grad-CAM's change.
    Measured (seed 0), Spearman / SSIM after 1 and 2 random layers:
    star: guided 0.84 / 0.98, 0.65 / 0.84; saliency 0.72 / 0.77, 0.55 / 0.44;
    Grad-CAM 0.25 / 0.22, 0.60 / 0.16. circle: guided 0.91 / 0.98, 0.71 / 0.79; saliency
    0.71 / 0.80, 0.58 / 0.58; Grad-CAM 0.27 / 0.62, -0.34 / 0.18."""
    from viz_core.inputs.intake import load_image
    from viz_core.inputs.samples import sample_bytes
    from viz_core.metrics.sanity import DEFAULT_THRESHOLD, cascading_randomisation, flag_rule
    from viz_core.models.catalog import load_demo_model

    demo = load_demo_model()
    view = demo.view(load_image(sample_bytes(shape), shape))
    report = cascading_randomisation(demo, view, Target(demo.class_index(shape)),
                                     ["guided_backprop", "saliency", "gradcam"], steps=2)
    guided, saliency, gradcam = report.spearman.T
    assert np.all(guided[1:] > saliency[1:]) and np.all(guided[1:] > gradcam[1:])
    ssim = report.ssim[1]
    assert ssim[0] > 0.95 and ssim[1] < 0.9 and ssim[2] < 0.9
    # with only the output layer random, the page's flag rule (SSIM, 0.9) flags guided only
    assert flag_rule(report.ssim[:2], DEFAULT_THRESHOLD) == (True, False, False)
