"""The method registry (viz_core.methods.registry) and the methods added with it: validation, costs, a toy
method seen everywhere, and LayerCAM, HiResCAM, XGradCAM, EigenCAM, AblationCAM, Occlusion and
RISE against hand-computed or independent numpy references."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import nested_cnn, tiny_cnn, wrap
from viz_core.methods import context, heatmap, layer, steps
from viz_core.methods import registry as methods
from viz_core.methods.heatmap import class_heatmap
from viz_core.methods.perturbation import rise_masks
from viz_core.methods.steps import layer_forward
from viz_core.errors import ParameterError
from viz_core.inputs.intake import ModelImage, image_from_array
from viz_core.methods.registry import MethodSpec, ParamSpec
from viz_core.models.targets import Target

ROOT = Path(__file__).resolve().parents[1]
NEW_METHODS = ("layercam", "hirescam", "xgradcam", "eigencam", "ablationcam", "occlusion", "rise")
# relevance propagation and the rest of the field's attribution methods (issue 26)
ATTRIBUTION_METHODS = ("lrp_epsilon", "lrp_zplus", "lrp_alphabeta", "lrp_composite",
                       "input_x_gradient", "vargrad", "squaregrad", "guided_backprop",
                       "guided_gradcam", "kernelshap", "gradientshap")
QUICK = {"rise": {"masks": 64}, "occlusion": {"patch": 8, "stride": 4}}


def _image(seed=0, height=32, width=32, channels=3):
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    return image_from_array(rng.integers(0, 256, shape, dtype=np.uint8), f"img{seed}")


# ----------------------------------------------------------------------------------------------
# The registry itself
# ----------------------------------------------------------------------------------------------
@pytest.mark.slow  # starts a new Python process
def test_registry_imports_without_tensorflow():
    code = ("import sys, viz_core.methods.registry as m; m.get('rise').function; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, "
            "sorted(k for k in sys.modules if k.startswith(('tensorflow', 'keras')))[:3]; "
            "print(len(m.names()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == len(methods.names())


def test_every_issue_method_is_registered_with_family_and_paper():
    assert set(NEW_METHODS + ("gradcam", "gradcam++", "scorecam", "saliency", "smoothgrad",
                              "integrated_gradients", "lime") + ATTRIBUTION_METHODS
               ) == set(methods.names())
    for spec in methods.specs():
        assert spec.help and "20" in spec.help, spec.name  # cites a paper with its year
        assert spec.answers and spec.weakness
        assert callable(spec.function())
    assert methods.names("perturbation") == ("occlusion", "rise", "lime", "kernelshap")
    assert methods.names("pixel-gradient") == (
        "saliency", "smoothgrad", "integrated_gradients", "input_x_gradient", "vargrad",
        "squaregrad", "guided_backprop", "guided_gradcam", "gradientshap")
    assert methods.names("relevance") == (
        "lrp_epsilon", "lrp_zplus", "lrp_alphabeta", "lrp_composite")
    # Compare, the sanity check and the pointing game keep their readable handful by default
    assert methods.default_names() == (
        "gradcam", "gradcam++", "layercam", "hirescam", "xgradcam", "eigencam", "saliency")


@pytest.mark.parametrize("method, params, named", [
    ("smoothgrad", {"seed": -1}, "-1"),
    ("smoothgrad", {"samples": 10**9}, "1 to 256"),
    ("smoothgrad", {"samples": 2.5}, "2.5"),
    ("smoothgrad", {"samples": True}, "True"),
    ("smoothgrad", {"noise": float("nan")}, "nan"),
    ("integrated_gradients", {"steps": 10**9}, "2 to 512"),
    ("rise", {"masks": 0}, "0"),
    ("rise", {"keep": 1.0}, "0.05 to 0.95"),
    ("occlusion", {"patch": "big"}, "'big'"),
    ("gradcam", {"steps": 3}, "takes no parameters"),
    ("scorecam", {"max_channels": 0}, "or None for every channel"),
    ("lime", {"compactness": 0}, "above 0.0, up to 1000.0; got 0"),  # SLIC divides by it
])
def test_validation_names_the_value_and_the_range(method, params, named):
    with pytest.raises(ParameterError, match=named.replace("(", r"\(")):
        methods.get(method).validate(params)


def test_validation_fills_defaults_and_converts_types():
    assert methods.get("smoothgrad").validate({"samples": 4.0, "noise": 1}) == {
        "samples": 4, "noise": 1.0, "seed": 0}
    assert methods.get("scorecam").validate({}) == {"max_channels": None}
    with pytest.raises(ParameterError, match="Unknown method 'layer_cam'.*layercam"):
        methods.get("layer_cam")


def test_class_heatmap_validates_through_the_registry():
    model = wrap(tiny_cnn(classes=3))
    with pytest.raises(ParameterError, match="-1"):
        class_heatmap(model, model.view(_image()), Target(0), "rise", seed=-1)


class _Info:
    """A ModelInfo stand-in: a 150x150 input, two conv layers and a dense head."""

    class _Layer:
        def __init__(self, path, shape, params, spatial=True):
            self.path, self.output_shape, self.params = path, shape, params
            self.spatial, self.nested = spatial, False

    input_shape = (150, 150, 3)
    last_conv_layer = "conv_b"
    layers = (_Layer("conv_a", (150, 150, 8), 224), _Layer("conv_b", (75, 75, 16), 1168),
              _Layer("gap", (16,), 0, spatial=False), _Layer("head", (4,), 68, spatial=False))

    def layer(self, path):
        return next(layer for layer in self.layers if layer.path == path)


def test_costs_follow_the_parameters():
    info = _Info()
    work = [224 * 150 * 150 + 150 * 150 * 8, 1168 * 75 * 75 + 75 * 75 * 16, 16, 68 + 4]
    after = sum(work[2:]) / sum(work)
    assert methods.share_after(info, None) == pytest.approx(after)
    passes = {s.name: s.passes(info) for s in methods.specs()}
    assert passes["gradcam"] == pytest.approx(1 + 2 * after)
    assert passes["eigencam"] == 1.0
    assert passes["scorecam"] == 1 + 16  # every channel
    assert methods.get("scorecam").passes(info, {"max_channels": 5}) == 6
    assert passes["ablationcam"] == pytest.approx(1 + 16 * after)
    assert passes["smoothgrad"] == 3 * 25 and passes["integrated_gradients"] == 3 * 65
    # occlusion: corners 0, 12, ..., 120 and one flush with the edge (126): 12 per side
    assert passes["occlusion"] == 1 + 12 * 12
    assert passes["rise"] == 501
    assert all(passes[s.name] <= 3 for s in methods.specs() if s.fast)
    # AblationCAM is not "fast": its passes grow with the channels, cheap only when the part
    # after the layer is small, as here
    assert passes["ablationcam"] < 1.01
    rows = methods.which_method_rows(info)
    assert [r["Method"] for r in rows] == [s.title for s in methods.specs()]
    cost = {r["Method"]: r["Cost"] for r in rows}
    assert cost["RISE"] == cost["LIME"] == "about 501 forward passes"


def test_page_params_follow_the_widgets():
    assert methods.get("scorecam").page_params(512) == {"max_channels": 64}
    assert methods.get("scorecam").page_params(32) == {"max_channels": None}  # all of them
    assert methods.get("smoothgrad").page_params() == {"samples": 25, "noise": 0.15}
    assert methods.get("rise").page_params() == {"masks": 500}
    assert heatmap.page_params("occlusion", 0) == {"patch": 24, "stride": 12}


# ----------------------------------------------------------------------------------------------
# A toy method, registered by a test, is seen everywhere with no other edit
# ----------------------------------------------------------------------------------------------
def toy_map(activations, grads, *, strength):
    """The activations times their gradient's sign, scaled: any (h, w) map will do."""
    return strength * (activations * np.sign(grads)).sum(axis=-1)


TOY = MethodSpec(
    name="toycam", title="Toy CAM", family="layer", inputs="gradients", compute=toy_map,
    cost=lambda info, params, layer: 2.0, fast=True,
    params=(ParamSpec("strength", 2.0, 0.5, 4.0, "float", "how strong", page=(0.5, 4.0, 0.5)),),
    help="A toy (Nobody 2026).", answers="nothing", weakness="everything")


@pytest.fixture
def toy():
    with methods.registered(TOY):
        yield TOY


def test_a_registered_toy_method_is_computed_and_listed(toy, tmp_path, capsys):
    from viz_core.cli import build_parser, main
    from viz_core.dataset.engine import dataset_methods, run_dataset
    from viz_core.maps import resize_map
    from viz_core.metrics.maps import compare_methods, explanation_map, map_methods
    from viz_core.metrics.pointing import default_methods
    from viz_core.metrics.sanity import sanity_methods

    model = wrap(tiny_cnn(classes=3))
    view = model.view(_image(1))
    result = class_heatmap(model, view, Target(1), "toycam", strength=3.0)
    acts = layer_forward(model, view).activations
    grads, _ = steps.layer_gradient(model, view, Target(1))
    np.testing.assert_allclose(result.raw, 3.0 * (acts * np.sign(grads)).sum(-1), rtol=1e-6)
    assert result.params == (("strength", 3.0),) and result.layer == "conv_b"
    np.testing.assert_array_equal(explanation_map(model, view, Target(1), "toycam", strength=3.0),
                                  result.heatmap)
    for listed in (map_methods(), compare_methods(), default_methods(), sanity_methods(),
                   dataset_methods()):
        assert "toycam" in listed
    # dataset mode runs it batched, with the same map as one image at a time
    from viz_core.dataset.readers import Dataset, DatasetEntry
    from viz_core.inputs.intake import image_from_array
    pictures = {f"{i}.png": image_from_array(np.roll(view.original, 5 * i, axis=0), f"{i}.png")
                for i in range(3)}
    data = Dataset("toy", "unlabelled", tuple(DatasetEntry(p, None, None) for p in pictures),
                   (), model.labels, (), "toy", pictures.__getitem__)
    run = run_dataset(model, data, method="toycam", params={"strength": 3.0}, map_size=8)
    assert run.method == "toycam" and run.params == (("strength", 3.0),)
    for i, path in enumerate(run.paths):
        single = class_heatmap(model, model.view(pictures[path]), Target(int(run.predicted[i])),
                               "toycam", strength=3.0)
        np.testing.assert_allclose(run.maps[i], resize_map(single.heatmap, 8, 8), atol=1e-4)
    parser = build_parser(command="heatmap")
    args = parser.parse_args(["heatmap", "--image", str(ROOT / "assets/samples/star.png"),
                              "--method", "toycam",
                              "--strength", "1.5", "--out", str(tmp_path)])
    assert (args.method, args.param_strength) == ("toycam", 1.5)
    assert main(["heatmap", "--image", str(ROOT / "assets/samples/star.png"), "--method",
                 "toycam", "--strength", "9", "--out", str(tmp_path)]) == 2
    assert "--strength" in capsys.readouterr().err
    assert main(["methods", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[-1] == {"name": "toycam", "title": "Toy CAM", "family": "layer",
                          "params": {"strength": 2.0}}
    assert "toycam" not in methods.names() or methods.get("toycam") is TOY


def test_a_toy_method_plays_the_pointing_game(toy):
    from viz_core.demo.shapes import CLASS_NAMES
    from viz_core.metrics.pointing import pointing_game

    model = wrap(tiny_cnn(size=48, classes=4, seed=1), labels=CLASS_NAMES)
    result = pointing_game(model, scenes=2, seed=40)
    assert [s.method for s in result.scores] == list(methods.names())
    assert result.scores[-1].method == "toycam" and result.scores[-1].total == 2


@pytest.mark.slow  # starts a new Python process
def test_methods_command_lists_the_registry_as_json():
    out = subprocess.run([sys.executable, "-m", "viz_core", "methods", "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == methods.as_json()
    rise = next(m for m in json.loads(out.stdout) if m["name"] == "rise")
    assert rise == {"name": "rise", "title": "RISE", "family": "perturbation",
                    "params": {"masks": 500, "cells": 7, "keep": 0.5, "seed": 0}}


# ----------------------------------------------------------------------------------------------
# Layer methods against references
# ----------------------------------------------------------------------------------------------
def _tape(model, view, layer, k):
    """(activations, gradient of the logit k) at ``layer`` of a softmax tiny_cnn, by tape."""
    keras_model = model.model
    probe = keras.Model(keras_model.inputs, [keras_model.get_layer(layer).output,
                                             keras_model.get_layer("head").input])
    kernel, bias = keras_model.get_layer("head").get_weights()
    with tf.GradientTape() as tape:
        acts, pooled = probe(model.batch([view]))
        logit = tf.matmul(pooled, kernel)[:, k] + bias[k]
    return acts[0].numpy().astype("float64"), tape.gradient(logit, acts)[0].numpy()


def test_gradient_layer_methods_equal_numpy_formulas_on_a_tape_gradient():
    # conv_a sits before max pooling, so its gradient differs from place to place
    model = wrap(tiny_cnn(classes=3, seed=4))
    view = model.view(_image(4))
    acts, grads = _tape(model, view, "conv_a", 2)
    expected = {
        "layercam": (np.maximum(grads, 0) * acts).sum(-1),
        "hirescam": (grads * acts).sum(-1),
        "xgradcam": acts @ ((grads * acts).sum((0, 1)) / (acts.sum((0, 1)) + 1e-7)),
    }
    assert np.ptp(grads[..., 0]) > 0  # the per-pixel weighting is really tested
    for method, raw in expected.items():
        result = class_heatmap(model, view, Target(2), method, layer="conv_a")
        np.testing.assert_allclose(result.raw, raw, rtol=1e-4, atol=1e-6, err_msg=method)
        assert result.layer == "conv_a"


U = np.array([[1.0, -0.5, 0.2], [0.3, 0.8, -1.0], [-0.4, 0.1, 0.6]], dtype="float32")
C = np.array([0.1, -0.2, 0.05], dtype="float32")
W = np.array([[2.0, -1.0], [-0.5, 1.5], [1.0, 0.25]], dtype="float32")
B = np.array([0.3, -0.1], dtype="float32")


def _hand_model():
    """1x1 conv (fixed, ReLU) -> global average pooling -> dense softmax (fixed), 8x8 input."""
    x = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(3, 1, activation="relu", name="conv")
    head = keras.layers.Dense(2, activation="softmax", name="head")
    out = head(keras.layers.GlobalAveragePooling2D(name="gap")(conv(x)))
    model = keras.Model(x, out)
    conv.set_weights([U[None, None], C])
    head.set_weights([W, B])
    pixels = np.arange(192, dtype="float32").reshape(8, 8, 3) % 7 - 3.0
    view = ModelImage(original=np.zeros((8, 8, 3), "uint8"), pixels=pixels, name="hand",
                      digest="hand-8x8-methods")
    return wrap(model, labels=["left", "right"], preprocessing="none"), view


def test_layer_methods_by_hand_on_a_pooled_linear_head():
    model, view = _hand_model()
    acts = np.maximum(view.pixels.astype("float64") @ U + C, 0.0)  # (8, 8, 3)
    for k in (0, 1):
        g = W[:, k] / 64.0  # d logit_k / dA: the same at every position
        logit = acts.mean((0, 1)) @ W[:, k] + B[k]
        # AblationCAM: zeroing channel c removes mean(A_c) W[c, k] from the logit
        ablation = acts.mean((0, 1)) * W[:, k] / abs(logit)
        expected = {"layercam": acts @ np.maximum(g, 0), "hirescam": acts @ g,
                    "xgradcam": acts @ (g * acts.sum((0, 1)) / (acts.sum((0, 1)) + 1e-7)),
                    "ablationcam": acts @ ablation}
        for method, raw in expected.items():
            result = class_heatmap(model, view, Target(k), method)
            np.testing.assert_allclose(result.raw, raw, rtol=1e-5, atol=1e-6,
                                       err_msg=f"{method} {k}")
            assert result.score == pytest.approx(logit, abs=1e-5)


def test_eigencam_is_the_first_principal_component_with_the_activation_sign():
    model = wrap(tiny_cnn(classes=3, seed=2))
    view = model.view(_image(5))
    acts = layer_forward(model, view, "conv_b").activations.astype("float64")
    flat = acts.reshape(-1, acts.shape[-1])
    centred = flat - flat.mean(0)
    values, vectors = np.linalg.eigh(centred.T @ centred)  # independent of the SVD
    component = centred @ vectors[:, -1]
    total = flat.sum(1) - flat.sum(1).mean()
    component *= np.sign(component @ total)
    maps = [class_heatmap(model, view, Target(k), "eigencam") for k in range(3)]
    np.testing.assert_allclose(maps[0].raw, component.reshape(acts.shape[:2]), rtol=1e-4,
                               atol=1e-5)
    # no class: every class gets the same map; the sign points where the layer is active
    for other in maps[1:]:
        np.testing.assert_array_equal(other.raw, maps[0].raw)
    assert float((maps[0].raw.ravel()) @ total) > 0


@pytest.mark.parametrize("shape", [(3, 4, 20), (6, 5, 4)])  # fewer positions / fewer channels
def test_eigencam_map_equals_the_svd_projection_on_either_side(shape):
    acts = np.random.default_rng(7).random(shape).astype("float32") ** 2
    flat = acts.reshape(-1, shape[-1]).astype("float64")
    centred = flat - flat.mean(0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)  # the textbook route
    reference = u[:, 0] * s[0]
    total = flat.sum(1)
    reference *= np.sign(reference @ (total - total.mean()))
    np.testing.assert_allclose(layer.eigencam_map(acts), reference.reshape(shape[:2]), rtol=1e-4,
                               atol=1e-5)
    assert not np.any(layer.eigencam_map(np.ones(shape, "float32")))  # nothing varies: zeros


def test_ablationcam_runs_only_the_back_half_and_equals_zeroing_in_the_whole_model():
    model = wrap(tiny_cnn(classes=3, seed=6))
    view = model.view(_image(6))
    keras_model = model.model
    acts = layer_forward(model, view, "conv_a").activations
    # reference: the whole model, with the layer's output replaced by an ablated copy
    after = keras.Sequential([keras_model.get_layer(n) for n in ("pool_a", "conv_b", "gap")])
    kernel, bias = keras_model.get_layer("head").get_weights()

    def logit(a):
        return (np.asarray(after(a[None])) @ kernel + bias)[0, 1]

    base = logit(acts)
    weights = []
    for c in range(acts.shape[-1]):
        ablated = acts.copy()
        ablated[..., c] = 0.0
        weights.append((base - logit(ablated)) / abs(base) if np.any(acts[..., c]) else 0.0)
    result = class_heatmap(model, view, Target(1), "ablationcam", layer="conv_a")
    np.testing.assert_allclose(result.raw, acts @ np.array(weights, "float32"), rtol=1e-4,
                               atol=1e-6)


# ----------------------------------------------------------------------------------------------
# Perturbation methods against a linear model (scores known in closed form)
# ----------------------------------------------------------------------------------------------
def _linear():
    """1x1 conv -> flatten -> dense softmax on 10x8 pixels / 255: logit k is linear in pixels."""
    keras.utils.set_random_seed(3)
    x = keras.Input((10, 8, 3))
    conv = keras.layers.Conv2D(2, 1, name="conv")
    out = keras.layers.Dense(3, activation="softmax", name="head")(
        keras.layers.Flatten()(conv(x)))
    model = wrap(keras.Model(x, out), preprocessing="unit")
    (u,), (w, _) = model.model.get_layer("conv").get_weights()[:1], \
        model.model.get_layer("head").get_weights()
    return model, u[0, 0], w


def _pixel_gradient(u, w, k):
    """d logit_k / d pixel, (10, 8, 3): constant for a linear model."""
    return np.einsum("cf,ijf->ijc", u, w[:, k].reshape(10, 8, 2)) / 255.0


def test_occlusion_equals_the_hand_computed_mean_drop():
    model, u, w = _linear()
    view = model.view(_image(7, 10, 8))
    k, patch, stride, fill = 1, 4, 3, 50.0
    grad = _pixel_gradient(u, w, k)
    x = view.pixels.astype("float64")
    total, count = np.zeros((10, 8)), np.zeros((10, 8))
    for y in (0, 3, 6):  # 0, 3 and the last corner flush with the edge (10 - 4)
        for x0 in (0, 3, 4):  # 0, 3 and 8 - 4
            drop = (grad[y:y + patch, x0:x0 + patch] * (x[y:y + patch, x0:x0 + patch] - fill)
                    ).sum()
            total[y:y + patch, x0:x0 + patch] += drop
            count[y:y + patch, x0:x0 + patch] += 1
    result = class_heatmap(model, view, Target(k), "occlusion", patch=patch, stride=stride,
                           fill=fill)
    np.testing.assert_allclose(result.raw, total / count, rtol=1e-3, atol=1e-5)
    assert result.layer == "input" and result.raw.shape == (10, 8)


def test_occlusion_refuses_a_stride_that_needs_too_many_passes():
    model = wrap(tiny_cnn(size=96, classes=2))
    with pytest.raises(ParameterError, match="stride 1"):
        class_heatmap(model, model.view(_image(1, 96, 96)), Target(0), "occlusion", patch=2,
                      stride=1)


def test_rise_masks_are_seeded_batch_independent_and_keep_the_share():
    whole = rise_masks(20, 16, 40, cells=4, keep=0.3, seed=5)
    assert whole.shape == (40, 20, 16) and whole.dtype == np.float32
    assert 0.0 <= whole.min() and whole.max() <= 1.0
    np.testing.assert_array_equal(rise_masks(20, 16, 40, cells=4, keep=0.3, seed=5, start=16,
                                             stop=32), whole[16:32])
    assert not np.array_equal(rise_masks(20, 16, 40, cells=4, keep=0.3, seed=6), whole)
    assert abs(rise_masks(20, 16, 2000, cells=4, keep=0.3, seed=1).mean() - 0.3) < 0.02


def test_rise_equals_the_centred_weighted_sum_of_masks():
    model, u, w = _linear()
    view = model.view(_image(8, 10, 8))
    k, count = 0, 48
    grad = _pixel_gradient(u, w, k)
    masks = rise_masks(10, 8, count, cells=3, keep=0.5, seed=2).astype("float64")
    # the logit of a masked image, up to a constant the centring removes: grad . (M x)
    scores = np.einsum("nij,ijc->n", masks, grad * view.pixels)
    expected = np.tensordot(scores - scores.mean(), masks, axes=(0, 0)) / (count * 0.5)
    result = class_heatmap(model, view, Target(k), "rise", masks=count, cells=3, seed=2)
    np.testing.assert_allclose(result.raw, expected, rtol=1e-3, atol=1e-4)


def test_perturbation_batches_are_even_and_carry_the_image_itself():
    model, u, w = _linear()
    view = model.view(_image(10, 10, 8))
    asked = []

    def batch(lo, hi):
        asked.append((lo, hi))
        return np.stack([view.pixels * (1.0 - 0.01 * (n + 1)) for n in range(lo, hi)])

    ctx = context.MethodContext(model, view, Target(1))
    scores = ctx.image_scores(50, batch, with_image=True)
    # 51 images (the image first): 13 + 13 + 12 + 13, never 16 + 16 + 16 + 3
    assert asked == [(0, 12), (12, 25), (25, 37), (37, 50)]
    head = model.model.get_layer("head")
    kernel, bias = head.get_weights()
    features = keras.Model(model.model.inputs, head.input)
    image_logit = float((np.asarray(features(view.pixels[None] / 255.0)) @ kernel + bias)[0, 1])
    assert ctx.image_score() == pytest.approx(image_logit, abs=1e-4)
    # a linear logit: scaling the pixels by s moves it by (s - 1) grad . x from the image's
    grad = _pixel_gradient(u, w, 1)
    expected = image_logit - 0.01 * np.arange(1, 51) * float((grad * view.pixels).sum())
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
    # the image's own scores were kept: Occlusion's map needs no forward pass of its own
    assert ("scores", view.cache_key) in steps.step_cache(model)
    assert ("forward", view.cache_key, model.info.last_conv_layer) not in steps.step_cache(model)
    result = class_heatmap(model, view, Target(1), "occlusion", patch=4, stride=4)
    probs = np.asarray(model.model(view.pixels[None] / 255.0))[0]
    assert result.probability == pytest.approx(float(probs[1]), abs=1e-5)
    assert ("forward", view.cache_key, model.info.last_conv_layer) not in steps.step_cache(model)


# ----------------------------------------------------------------------------------------------
# Model kinds: single sigmoid (both classes), 1-channel input
# ----------------------------------------------------------------------------------------------
def test_single_sigmoid_classes_mirror_each_other():
    model = wrap(nested_cnn(), labels=["cat", "dog"])
    view = model.view(_image(2))
    for method in ("hirescam", "xgradcam", "ablationcam", "occlusion", "rise"):
        params = QUICK.get(method, {})
        dog = class_heatmap(model, view, Target(1), method, **params)
        cat = class_heatmap(model, view, Target(0), method, **params)
        # class 0 is scored by -logit: every score difference changes sign
        np.testing.assert_allclose(cat.raw, -dog.raw, rtol=1e-4,
                                   atol=1e-5 * max(1.0, np.abs(dog.raw).max()), err_msg=method)
        assert cat.probability == pytest.approx(1 - dog.probability, abs=1e-6)
    dog = class_heatmap(model, view, Target(1), "layercam")
    cat = class_heatmap(model, view, Target(0), "layercam")
    acts = layer_forward(model, view).activations
    grads, _ = steps.layer_gradient(model, view, Target(1))
    np.testing.assert_allclose(cat.raw, (np.maximum(-grads, 0) * acts).sum(-1), rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_array_equal(class_heatmap(model, view, Target(0), "eigencam").raw,
                                  class_heatmap(model, view, Target(1), "eigencam").raw)
    assert not np.allclose(cat.raw, dog.raw)


@pytest.mark.parametrize("method", NEW_METHODS)
def test_one_channel_models_get_maps_at_input_resolution(method):
    model = wrap(tiny_cnn(size=24, channels=1, classes=2, seed=3), labels=["a", "b"])
    view = model.view(_image(9, 30, 30, channels=1))
    assert view.pixels.shape == (24, 24, 1)
    result = class_heatmap(model, view, Target(1), method, **QUICK.get(method, {}))
    assert result.heatmap.shape == (24, 24) and result.heatmap.dtype == np.float32
    assert 0.0 <= result.heatmap.min() and result.heatmap.max() <= 1.0
    assert result.heatmap.max() == pytest.approx(1.0) or result.empty
    assert result.raw.shape == ((12, 12) if methods.uses_layer(method) else (24, 24))


def test_a_zero_compactness_is_refused_while_parsing(capsys):
    """--compactness 0 would divide by zero in SLIC: refused before any model loads, with the
    bound the backend checks (viz_core.runtime.limits.COMPACTNESS excludes 0 too)."""
    from viz_core.cli import main
    from viz_core.runtime.limits import COMPACTNESS

    star = str(Path(__file__).resolve().parents[1] / "assets" / "samples" / "star.png")
    code = main(["heatmap", "--image", star, "--method", "lime", "--compactness", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "--compactness: must be above 0.0, up to 1000.0; got 0" in err
    assert methods.get("lime").validate({"compactness": 0.5})["compactness"] == 0.5
    assert not COMPACTNESS.contains(0.0) and COMPACTNESS.contains(0.5)
