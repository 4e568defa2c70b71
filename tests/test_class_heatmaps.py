"""Batched class heatmaps (viz_core.methods.heatmap.class_heatmaps): the same maps as one image at a
time, for every batchable method, and the layer kernels on stacks computed by hand."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import clashing_names_cnn, nested_cnn, tiny_cnn, wrap
from viz_core.errors import Cancelled, ParameterError
from viz_core.inputs.intake import image_from_array
from viz_core.methods import layer as kernels
from viz_core.methods import registry as methods
from viz_core.methods.heatmap import class_heatmap, class_heatmaps
from viz_core.models.targets import Target

BATCHED = tuple(s.name for s in methods.specs() if s.inputs != "context")
QUICK = {"smoothgrad": {"samples": 4}, "integrated_gradients": {"steps": 6}}


def views(model, n, seed=0):
    rng = np.random.default_rng(seed)
    h, w, _ = model.info.input_shape
    return [model.view(image_from_array(rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
                                        f"img{i}")) for i in range(n)]


def assert_same(batch, single):
    np.testing.assert_allclose(batch.heatmap, single.heatmap, atol=1e-4)
    np.testing.assert_allclose(batch.raw, single.raw, rtol=1e-4,
                               atol=1e-4 * max(1e-6, float(np.abs(single.raw).max())))
    assert (batch.class_index, batch.label, batch.layer, batch.method, batch.params,
            batch.image, batch.score_kind) == (
        single.class_index, single.label, single.layer, single.method, single.params,
        single.image, single.score_kind)
    assert batch.probability == pytest.approx(single.probability, abs=1e-5)
    assert batch.score == pytest.approx(single.score, rel=1e-4, abs=1e-5)
    np.testing.assert_allclose(batch.probabilities, single.probabilities, atol=1e-5)


def test_the_batchable_methods_are_the_layer_and_pixel_gradient_ones():
    assert set(BATCHED) == {"gradcam", "gradcam++", "layercam", "hirescam", "xgradcam",
                            "eigencam", "saliency", "smoothgrad", "integrated_gradients",
                            "input_x_gradient", "vargrad", "squaregrad", "guided_backprop",
                            "guided_gradcam", "gradientshap"}


@pytest.mark.parametrize("method", BATCHED)
def test_every_batchable_method_equals_one_image_at_a_time(method):
    model = wrap(tiny_cnn(classes=3, seed=1))
    images = views(model, 5)
    # the most probable class, a given class, a probability score; over two batches (3 + 2)
    targets = [None, Target(2), Target(0, "probability"), None, Target(1)]
    params = QUICK.get(method, {})
    got = class_heatmaps(model, images, targets, method, params=params, batch_size=3)
    assert len(got) == 5
    top = int(np.argmax(got[0].probabilities))
    for result, image, target in zip(got, images, targets):
        want = class_heatmap(model, image, target or Target(int(np.argmax(
            result.probabilities))), method, **params)
        assert_same(result, want)
    assert got[0].class_index == top and got[1].class_index == 2
    if method == "integrated_gradients":
        single = class_heatmap(model, images[1], Target(2), method, **params)
        assert got[1].attribution_sum == pytest.approx(single.attribution_sum, rel=1e-4)
        assert got[1].score_difference == pytest.approx(single.score_difference, rel=1e-4)


@pytest.mark.parametrize("build", [lambda: nested_cnn(classes=1), clashing_names_cnn],
                         ids=["single-sigmoid", "cannot-be-cut"])
@pytest.mark.parametrize("method", ["gradcam", "layercam", "eigencam", "saliency"])
def test_sigmoid_sign_rule_and_uncuttable_models_batch_too(build, method):
    model = wrap(build())
    images = views(model, 3, seed=4)
    targets = [Target(0), Target(1), None]
    got = class_heatmaps(model, images, targets, method)
    for result, image, target in zip(got, images, targets):
        want = class_heatmap(model, image, target or Target(int(np.argmax(
            result.probabilities))), method)
        assert_same(result, want)


def test_a_chosen_layer_and_the_context_methods_one_image_at_a_time():
    model = wrap(tiny_cnn(classes=3, seed=2))
    images = views(model, 2, seed=3)
    for method, params, layer in (("layercam", {}, "conv_a"), ("scorecam", {}, None),
                                  ("occlusion", {"patch": 16, "stride": 16}, None)):
        got = class_heatmaps(model, images, Target(1), method, layer=layer, params=params)
        for result, image in zip(got, images):
            assert_same(result, class_heatmap(model, image, Target(1), method, layer, **params))
    assert got[0].layer == "input"
    assert class_heatmaps(model, images, None, "layercam", "conv_a")[0].layer == "conv_a"


def test_hand_computed_gradcam_on_a_stack(rng):
    acts = rng.random((3, 4, 5, 6)).astype("float32")
    grads = rng.normal(size=(3, 4, 5, 6)).astype("float32")
    got = kernels.gradcam_map(acts, grads)
    assert got.shape == (3, 4, 5) and got.dtype == np.float32
    for n in range(3):
        want = np.zeros((4, 5))
        for k in range(6):
            weight = sum(grads[n, i, j, k] for i in range(4) for j in range(5)) / 20.0
            want += weight * acts[n, :, :, k]
        np.testing.assert_allclose(got[n], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["gradcam_map", "gradcam_pp_map", "layercam_map",
                                  "hirescam_map", "xgradcam_map", "eigencam_map"])
def test_layer_kernels_take_one_image_or_a_stack(name, rng):
    acts = np.maximum(rng.normal(size=(4, 6, 5, 7)), 0).astype("float32")
    grads = rng.normal(size=(4, 6, 5, 7)).astype("float32")
    fn = getattr(kernels, name)
    args = (acts,) if name == "eigencam_map" else (acts, grads)
    stacked = fn(*args)
    assert stacked.shape == (4, 6, 5)
    for n in range(4):
        np.testing.assert_allclose(stacked[n], fn(*(a[n] for a in args)), rtol=1e-5, atol=1e-6)


def test_pixel_stacks_targets_and_stop():
    model = wrap(tiny_cnn(classes=3, seed=1))
    images = views(model, 3)
    pixels = np.stack([v.pixels for v in images])
    from_pixels = class_heatmaps(model, pixels, None, "gradcam")
    from_views = class_heatmaps(model, images, None, "gradcam")
    for a, b in zip(from_pixels, from_views):
        np.testing.assert_allclose(a.heatmap, b.heatmap, atol=1e-6)
    assert from_pixels[2].image == "image 2"
    assert class_heatmaps(model, [], None, "gradcam") == ()
    with pytest.raises(ParameterError, match="3 images, 2 targets"):
        class_heatmaps(model, images, [Target(0), Target(1)], "gradcam")
    with pytest.raises(ParameterError, match="Class index 7 is out of range"):
        class_heatmaps(model, images, Target(7), "gradcam")
    with pytest.raises(ParameterError, match=r"\(N, 32, 32, 3\)"):
        class_heatmaps(model, pixels[:, :16], None, "gradcam")
    with pytest.raises(Cancelled):
        class_heatmaps(model, images, None, "saliency", should_stop=lambda: True)
    seen = []
    class_heatmaps(model, images, None, "layercam", batch_size=2,
                   progress=lambda f, m: seen.append(round(f, 3)))
    assert seen == [0.0, 0.667, 1.0]
