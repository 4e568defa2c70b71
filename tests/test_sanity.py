"""Sanity check: cascading randomisation flags a method that ignores the model, passes Grad-CAM."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.filters import sobel

from tests.conftest import nested_cnn, tiny_cnn, wrap
from viz_core.models.catalog import DEMO_MODEL_FILE
from viz_core.errors import Cancelled, ParameterError
from viz_core.inputs.intake import image_from_array
from viz_core.metrics.sanity import (
    EDGE_CONTROL,
    cascading_randomisation,
    default_steps,
    edge_map,
    flag_rule,
    model_clone,
    randomise_layer,
    similarity_scores,
    weighted_layers,
)
from viz_core.models.targets import Target


def sobel_of_image(model, image, target):
    """An "explanation" that only looks at the image: Sobel edge magnitude of its grey level."""
    return sobel(image.pixels.mean(axis=-1))


def scene(size=32, seed=0):
    """A bright square on a noisy background."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 80, (size, size, 3)).astype("uint8")
    pixels[8:20, 10:22] = (230, 200, 40)
    return image_from_array(pixels, "square")


@pytest.fixture(scope="module")
def tiny():
    model = wrap(tiny_cnn(size=32, classes=3, seed=3))
    return model, model.view(scene())


def test_flags_the_edge_detector_and_passes_gradcam(tiny):
    model, view = tiny
    before = [w.copy() for w in model.model.get_weights()]
    report = cascading_randomisation(model, view, Target(1),
                                     ["gradcam", ("sobel", sobel_of_image)], seed=0)
    # the tiny model has three weighted layers: head, conv_b, conv_a (top first)
    assert report.layers == ("head", "conv_b", "conv_a")
    assert report.methods == ("gradcam", "sobel")
    assert report.flagged == (False, True)
    assert report.is_flagged("sobel") and not report.is_flagged("gradcam")
    sobel_column = report.methods.index("sobel")
    np.testing.assert_allclose(report.spearman[:, sobel_column], 1.0, atol=1e-6)
    np.testing.assert_allclose(report.ssim[:, sobel_column], 1.0, atol=1e-6)
    assert report.spearman[1, 0] < 0.9  # random head: Grad-CAM already differs
    # the map at step 0 is the trained model's Grad-CAM
    from viz_core.methods.heatmap import class_heatmap

    np.testing.assert_allclose(report.maps[0, 0], class_heatmap(model, view, Target(1)).heatmap,
                               atol=1e-6)
    assert report.maps.shape == (4, 2, 32, 32) and report.maps.dtype == np.float32
    # the model's probability changes as its layers are randomised; step 0 is the original
    original = model.model(model.batch([view])).numpy()[0, 1]
    assert report.probability[0] == pytest.approx(original, abs=1e-5)
    assert not np.allclose(report.probability[1:], report.probability[0], atol=1e-4)
    # the caller's model is untouched
    for a, b in zip(before, model.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_built_in_edge_control_is_flagged_and_steps_limit_the_cascade(tiny):
    model, view = tiny
    report = cascading_randomisation(model, view, Target(0), [EDGE_CONTROL, "saliency"],
                                     steps=1, seed=1)
    assert report.layers == ("head",)
    assert report.flagged[0] is True
    assert report.maps.shape[0] == 2


def test_ssim_metric_drives_the_flag(tiny):
    model, view = tiny
    report = cascading_randomisation(model, view, Target(1), ["gradcam", EDGE_CONTROL],
                                     steps=2, metric="ssim", threshold=0.9)
    assert report.metric == "ssim"
    assert report.flagged == tuple(bool(v) for v in np.all(report.ssim[1:] > 0.9, axis=0))
    assert report.flagged[1] is True


def test_same_seed_same_randomisation(tiny):
    model, view = tiny
    a = cascading_randomisation(model, view, Target(1), ["gradcam"], steps=2, seed=5)
    b = cascading_randomisation(model, view, Target(1), ["gradcam"], steps=2, seed=5)
    np.testing.assert_array_equal(a.maps, b.maps)


def test_weighted_layers_top_down_through_nested_models():
    model = nested_cnn(size=16)
    assert weighted_layers(model) == ("head", "base/conv_b", "base/conv_a")


def test_randomise_layer_touches_only_that_layer_of_the_clone():
    loaded = wrap(nested_cnn(size=16, seed=2))
    clone = model_clone(loaded)
    original = {p: [w.copy() for w in loaded.model.get_layer("base").get_layer(p).get_weights()]
                for p in ("conv_a", "conv_b")}
    head_before = loaded.model.get_layer("head").get_weights()[0].copy()
    randomise_layer(clone, "base/conv_b", seed=0)
    base = clone.get_layer("base")
    np.testing.assert_array_equal(base.get_layer("conv_a").get_weights()[0], original["conv_a"][0])
    kernel = base.get_layer("conv_b").get_weights()[0]
    assert not np.allclose(kernel, original["conv_b"][0])
    limit = np.sqrt(6.0 / (3 * 3 * 4 + 3 * 3 * 6))  # Glorot uniform: fan_in + fan_out
    assert np.abs(kernel).max() <= limit
    np.testing.assert_array_equal(base.get_layer("conv_b").get_weights()[1], 0.0)  # zero bias
    np.testing.assert_array_equal(clone.get_layer("head").get_weights()[0], head_before)
    # the caller's model keeps its weights
    np.testing.assert_array_equal(
        loaded.model.get_layer("base").get_layer("conv_b").get_weights()[0], original["conv_b"][0])


def test_nested_model_cascade_runs_on_a_sigmoid_model():
    loaded = wrap(nested_cnn(size=16, seed=1))
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3)).astype("uint8")
    view = loaded.view(image_from_array(pixels, "noise"))
    report = cascading_randomisation(loaded, view, Target(1), ["gradcam", EDGE_CONTROL])
    assert report.layers == ("head", "base/conv_b", "base/conv_a")
    assert report.flagged[1] is True


def test_flag_rule_by_hand():
    similarity = np.array([[1.0, 1.0, 1.0],
                           [0.95, 0.5, 0.99],
                           [0.91, 0.2, 0.85]])
    assert flag_rule(similarity, 0.9) == (True, False, False)
    assert flag_rule(similarity, 0.8) == (True, False, True)
    with pytest.raises(ParameterError):
        flag_rule(similarity[:1])


def test_default_steps_are_every_layer_at_most_eight():
    assert [default_steps(n) for n in (0, 1, 3, 8, 9, 20)] == [1, 1, 3, 8, 8, 8]


def test_similarity_scores_by_hand():
    a = np.linspace(0, 1, 64).reshape(8, 8)
    rho, ssim = similarity_scores(a, a)
    assert (rho, ssim) == (pytest.approx(1.0), pytest.approx(1.0))
    rho, _ = similarity_scores(a, 1 - a)
    assert rho == pytest.approx(-1.0)
    rho, _ = similarity_scores(a, np.zeros((8, 8)))
    assert rho == 0.0  # a constant map ranks nothing


def test_edge_map_is_sobel_of_grey(tiny):
    model, view = tiny
    edges = edge_map(model, view, Target(0))
    assert edges.max() == pytest.approx(1.0)
    # the square's border is an edge, its inside is flat
    assert edges[8, 15] > 0.5 and edges[14, 15] == pytest.approx(0.0, abs=1e-6)


def test_bad_arguments_name_the_value(tiny):
    model, view = tiny
    with pytest.raises(ParameterError, match="'deconvnet'"):
        cascading_randomisation(model, view, Target(0), ["deconvnet"])
    with pytest.raises(ParameterError, match="9"):
        cascading_randomisation(model, view, Target(0), ["gradcam"], steps=9)
    with pytest.raises(ParameterError, match="'pearson'"):
        cascading_randomisation(model, view, Target(0), ["gradcam"], metric="pearson")
    with pytest.raises(ParameterError, match="'smoothgrad'"):
        cascading_randomisation(model, view, Target(0), ["gradcam"],
                                params={"smoothgrad": {"samples": 5}})
    with pytest.raises(ParameterError, match="shape"):
        cascading_randomisation(model, view, Target(0), [("small", lambda m, i, t: np.ones((3, 3)))])
    with pytest.raises(Cancelled):
        cascading_randomisation(model, view, Target(0), ["gradcam"], should_stop=lambda: True)


def test_progress_goes_from_zero_to_one(tiny):
    model, view = tiny
    seen = []
    cascading_randomisation(model, view, Target(0), [EDGE_CONTROL], steps=2,
                            progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert "top 2 layer(s) random" in seen[-2][1]


def test_each_step_matches_a_model_randomised_from_scratch(tiny):
    """Steps share compiled functions; their maps must equal a fresh copy randomised alone."""
    from viz_core.methods.heatmap import class_heatmap

    model, view = tiny
    report = cascading_randomisation(model, view, Target(2), ["gradcam", "saliency"], seed=4)
    for step in (1, 3):
        fresh = model_clone(model)
        for path in report.layers[:step]:
            randomise_layer(fresh, path, seed=4)
        loaded = wrap(fresh)
        for m, method in enumerate(report.methods):
            heat = class_heatmap(loaded, loaded.view(scene()), Target(2), method).heatmap
            np.testing.assert_allclose(report.maps[step, m], heat, atol=1e-6)


@pytest.mark.slow
@pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="the demo model is not committed yet")
def test_demo_model_gradcam_passes_and_the_edge_control_fails():
    from viz_core.inputs.samples import sample_bytes
    from viz_core.inputs.intake import load_image
    from viz_core.runtime.workbench import Workbench

    demo = Workbench(allow_download=False).builtin_model("demo")
    view = demo.view(load_image(sample_bytes("star"), "star"))
    before = [w.copy() for w in demo.model.get_weights()]
    report = cascading_randomisation(demo, view, Target(demo.class_index("star")),
                                     ["gradcam", EDGE_CONTROL], steps=2)
    assert report.layers[0] == demo.info.layers[-1].path  # the output layer goes first
    assert report.flagged == (False, True)
    assert report.probability[0] > 0.9
    for a, b in zip(before, demo.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_lime_is_checked_through_the_registry_at_its_quick_setting(tiny):
    from viz_core.metrics.maps import explanation_map
    from viz_core.metrics.sanity import fast_params, sanity_methods

    model, view = tiny
    assert "lime" in sanity_methods()
    assert fast_params(["gradcam", "lime"]) == {"lime": {"samples": 200}}
    report = cascading_randomisation(model, view, Target(1), ("lime",), steps=1,
                                     params={"lime": {"samples": 30, "n_superpixels": 6}})
    expected = explanation_map(model, view, Target(1), "lime", samples=30, n_superpixels=6)
    top = float(expected.max())
    np.testing.assert_allclose(report.maps[0, 0], expected / top if top > 0 else expected,
                               atol=1e-6)
