"""Deletion / insertion curves on a model whose answer is known, and rank agreement."""
from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from skimage.filters import gaussian

from tests.conftest import tiny_cnn, wrap
from viz_core.models.catalog import DEMO_MODEL_FILE
from viz_core.errors import Cancelled, ParameterError
from viz_core.metrics.agreement import rank_agreement, rank_correlation
from viz_core.metrics.faithfulness import (
    auc,
    baseline_image,
    batch_size,
    deletion_insertion,
    pixel_ranking,
    step_counts,
)
from viz_core.metrics.maps import compared_call, explanation_map
from viz_core.inputs.intake import image_from_array
from viz_core.methods.lime import LimeExplanation, lime_explanation, lime_heatmap
from viz_core.models.targets import Target

SIDE = 8
GAIN = 0.25  # logit of class 1 per fully bright pixel of the watched region


def region() -> np.ndarray:
    """The 4x4 top-left block the model looks at (16 of 64 pixels)."""
    r = np.zeros((SIDE, SIDE), dtype=bool)
    r[:4, :4] = True
    return r


def region_model():
    """Class 1's logit = GAIN * sum of brightness (mean of R, G, B in [0, 1]) over the region;
    class 0's logit = 0. So p(class 1) = sigmoid(GAIN * brightness sum over the region)."""
    model = keras.Sequential([
        keras.Input((SIDE, SIDE, 3)),
        keras.layers.Conv2D(1, 1, use_bias=False, name="brightness"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(2, activation="softmax", name="head"),
    ])
    model.get_layer("brightness").set_weights([np.full((1, 1, 3, 1), 1 / 3, dtype="float32")])
    kernel = np.zeros((SIDE * SIDE, 2), dtype="float32")
    kernel[region().ravel(), 1] = GAIN
    model.get_layer("head").set_weights([kernel, np.zeros(2, dtype="float32")])
    return wrap(model, labels=("other", "region"))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def image_with_white_region(seed: int = 0):
    """White in the region, random elsewhere (the model ignores everything else)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (SIDE, SIDE, 3)).astype("uint8")
    pixels[region()] = 255
    return image_from_array(pixels, "white_region")


def distinct(values: np.ndarray) -> np.ndarray:
    """Break ties by a tiny raster-order increment so the ranking is fixed by hand."""
    return values + np.arange(values.size).reshape(values.shape) * 1e-4


@pytest.fixture(scope="module")
def known():
    model = region_model()
    return model, model.view(image_with_white_region())


def test_deletion_and_insertion_follow_the_watched_region_by_hand(known):
    model, view = known
    on_region = distinct(np.where(region(), 1.0, 0.1))
    elsewhere = distinct(np.where(region(), 0.1, 1.0))
    full, none = sigmoid(GAIN * 16), sigmoid(0.0)  # all 16 region pixels bright / all black

    good = deletion_insertion(model, view, "region", on_region, steps=4, baseline="black")
    bad = deletion_insertion(model, view, 1, elsewhere, steps=4, baseline="black")

    # 4 steps of 16 pixels: the first step removes exactly the region for the good map and
    # exactly 16 ignored pixels for the bad map, which reaches the region only at the end.
    np.testing.assert_allclose(good.fractions, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(good.deletion, [full, none, none, none, none], atol=1e-5)
    np.testing.assert_allclose(good.insertion, [none, full, full, full, full], atol=1e-5)
    np.testing.assert_allclose(bad.deletion, [full, full, full, full, none], atol=1e-5)
    np.testing.assert_allclose(bad.insertion, [none, none, none, none, full], atol=1e-5)
    # trapezoids of width 1/4
    assert good.deletion_auc == pytest.approx(0.25 * ((full + none) / 2 + 3 * none), abs=1e-5)
    assert good.insertion_auc == pytest.approx(0.25 * ((none + full) / 2 + 3 * full), abs=1e-5)
    assert bad.deletion_auc == pytest.approx(0.25 * (3 * full + (full + none) / 2), abs=1e-5)
    assert good.deletion_auc < bad.deletion_auc
    assert good.insertion_auc > bad.insertion_auc
    assert (good.class_index, good.label, good.baseline, good.steps) == (1, "region", "black", 4)


def test_partial_step_removes_a_known_number_of_region_pixels(known):
    model, view = known
    # 8 steps of 8 pixels: rows 0-1 of the region (8 pixels) first, then rows 2-3 (8 more)
    order_map = np.zeros((SIDE, SIDE))
    order_map[:2, :4] = 3.0
    order_map[2:4, :4] = 2.0
    result = deletion_insertion(model, view, 1, distinct(order_map), steps=8, baseline="black")
    assert result.deletion[1] == pytest.approx(sigmoid(GAIN * 8), abs=1e-5)
    assert result.deletion[2] == pytest.approx(0.5, abs=1e-5)


def test_blurred_baseline_matches_an_independent_blur(known):
    model, view = known
    heat = distinct(np.where(region(), 1.0, 0.1))
    result = deletion_insertion(model, view, 1, heat, steps=2, baseline="blurred")
    blurred = gaussian(view.pixels.astype("float64"), sigma=2.0, channel_axis=-1,
                       preserve_range=True, mode="nearest")  # sigma max(2, 8 / 10)
    brightness = blurred[region()].mean(axis=-1) / 255.0
    assert result.insertion[0] == pytest.approx(sigmoid(GAIN * brightness.sum()), abs=1e-4)
    assert result.deletion[-1] == pytest.approx(result.insertion[0], abs=1e-6)
    assert result.insertion[-1] == pytest.approx(sigmoid(GAIN * 16), abs=1e-5)


def test_baselines_by_hand():
    pixels = np.zeros((4, 4, 3), dtype="float32")
    pixels[:2] = [200.0, 100.0, 0.0]
    np.testing.assert_array_equal(baseline_image(pixels, "black"), 0.0)
    np.testing.assert_array_equal(baseline_image(pixels, "white"), 255.0)
    np.testing.assert_allclose(baseline_image(pixels, "mean")[3, 3], [100.0, 50.0, 0.0])
    with pytest.raises(ParameterError, match="'grey'"):
        baseline_image(pixels, "grey")


def test_ranking_breaks_ties_by_seed_and_keeps_order_of_distinct_values():
    heat = np.array([[0.2, 0.9], [0.5, 0.2]])
    ranking = pixel_ranking(heat)
    assert list(ranking[:2]) == [1, 2]  # 0.9 then 0.5
    assert sorted(ranking[2:]) == [0, 3]
    flat = np.zeros((6, 6))
    orders = {tuple(pixel_ranking(flat, seed)) for seed in range(5)}
    assert len(orders) > 1  # a flat map is a random deletion, not a raster sweep
    assert tuple(pixel_ranking(flat, 3)) == tuple(pixel_ranking(flat, 3))


def test_step_counts_and_auc_by_hand():
    assert list(step_counts(10, 4)) == [0, 2, 5, 8, 10]  # round(2.5) = 2, round(7.5) = 8
    assert auc(np.array([0.0, 0.5, 1.0]), np.array([1.0, 0.0, 0.0])) == pytest.approx(0.25)


def test_bad_inputs_name_the_value(known):
    model, view = known
    with pytest.raises(ParameterError, match="1000"):
        deletion_insertion(model, view, 1, np.zeros((SIDE, SIDE)), steps=1000)
    with pytest.raises(ParameterError, match="4x4"):
        deletion_insertion(model, view, 1, np.zeros((4, 4)))
    with pytest.raises(ParameterError, match="7"):
        deletion_insertion(model, view, 7, np.zeros((SIDE, SIDE)))
    with pytest.raises(Cancelled):
        deletion_insertion(model, view, 1, np.zeros((SIDE, SIDE)), should_stop=lambda: True)


def test_progress_reaches_one(known):
    model, view = known
    seen = []
    deletion_insertion(model, view, 1, np.zeros((SIDE, SIDE)), steps=40,
                       progress=lambda f, m: seen.append(f))
    assert batch_size(model) == 16  # tiny activations: the largest batch
    assert seen[-1] == 1.0 and len(seen) == 6  # 82 images in batches of 16


def test_batch_size_keeps_a_batch_of_activations_near_16_mb():
    wide = keras.Sequential([keras.Input((150, 150, 3)),
                             keras.layers.Conv2D(32, 3, padding="same"),
                             keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(2, activation="softmax")])
    # 150 * 150 * 32 float32 = 2.88 MB per image: 16 MiB / 2.88 MB = 5.8 -> 5
    assert batch_size(wrap(wide)) == 5
    huge = keras.Sequential([keras.Input((224, 224, 3)),
                             keras.layers.Conv2D(128, 3, padding="same"),
                             keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(2, activation="softmax")])
    assert batch_size(wrap(huge)) == 2  # 25.7 MB per image: never below 2


def test_rank_correlation_by_hand():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert rank_correlation(a, a) == pytest.approx(1.0)
    assert rank_correlation(a, -a) == pytest.approx(-1.0)
    # one swapped pair: 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 6 * 2 / 60 = 0.8
    assert rank_correlation(a, np.array([[1.0, 3.0], [2.0, 4.0]])) == pytest.approx(0.8)
    assert math.isnan(rank_correlation(a, np.zeros((2, 2))))
    with pytest.raises(ParameterError, match=r"\(2, 2\) and \(3, 3\)"):
        rank_correlation(a, np.zeros((3, 3)))


def test_rank_agreement_matrix():
    rng = np.random.default_rng(0)
    m = rng.random((6, 6))
    result = rank_agreement({"a": m, "b": m ** 3, "c": 1 - m, "empty": np.zeros((6, 6))})
    assert result.methods == ("a", "b", "c", "empty")
    assert result.pair("a", "b") == pytest.approx(1.0)  # monotone transform keeps the ranking
    assert result.pair("b", "c") == pytest.approx(-1.0)
    np.testing.assert_allclose(result.matrix, result.matrix.T, equal_nan=True)
    assert math.isnan(result.pair("a", "empty")) and math.isnan(result.pair("empty", "empty"))
    with pytest.raises(ParameterError):
        rank_agreement({"a": m})


def test_rank_agreement_is_every_pair_of_rank_correlation():
    # All maps ranked at once must give what ranking each pair gives, ties included (coarse
    # maps, like Grad-CAM's upsampled 7x7, tie many pixels).
    rng = np.random.default_rng(1)
    maps = {"fine": rng.random((30, 40)), "tied": np.round(rng.random((30, 40)) * 4) / 4,
            "flat": np.full((30, 40), 0.5), "mixed": rng.random((30, 40)) ** 2}
    maps["near"] = maps["fine"] + 0.2 * rng.random((30, 40))
    result = rank_agreement(maps)
    for i, a in enumerate(maps):
        for j, b in enumerate(maps):
            expected = 1.0 if a == b and a != "flat" else rank_correlation(maps[a], maps[b])
            np.testing.assert_allclose(result.matrix[i, j], expected, atol=1e-6,
                                       equal_nan=True)
    assert result.pair("fine", "near") > 0.9
    with pytest.raises(ParameterError, match=r"\(30, 40\) and \(3, 3\)"):
        rank_agreement({"a": maps["fine"], "b": np.zeros((3, 3))})


def test_compared_call_passes_the_heatmaps_page_defaults_by_hand():
    """The Class heatmaps page's untouched sliders, written out: the Compare page must ask the
    workbench with exactly these arguments to reuse that page's maps."""
    model = wrap(tiny_cnn(size=16, classes=3, seed=1))  # last conv: conv_b, 6 channels
    view = model.view(image_from_array(np.zeros((16, 16, 3), "uint8"), "black"))
    expected = {
        "gradcam": {"method": "gradcam", "layer": "conv_b"},
        "gradcam++": {"method": "gradcam++", "layer": "conv_b"},
        "scorecam": {"method": "scorecam", "layer": "conv_b", "max_channels": None},
        "saliency": {"method": "saliency", "layer": None},
        "smoothgrad": {"method": "smoothgrad", "layer": None, "samples": 25, "noise": 0.15},
        "integrated_gradients": {"method": "integrated_gradients", "layer": None, "steps": 64},
    }
    for method, kwargs in expected.items():
        function, args, called = compared_call(model, view, Target(1), method)
        assert called == kwargs, method
        assert args == (model, view, Target(1))
    wide = wrap(keras.Sequential([  # more than 64 channels: the page scores the first 64
        keras.Input((8, 8, 3)), keras.layers.Conv2D(80, 3, name="wide"),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax"),
    ]))
    wide_view = wide.view(image_from_array(np.zeros((8, 8, 3), "uint8"), "black"))
    assert compared_call(wide, wide_view, Target(0), "scorecam")[2] == {
        "method": "scorecam", "layer": "wide", "max_channels": 64}
    # LIME is a registered method: the Class heatmaps page's sliders (superpixels, samples)
    assert compared_call(model, view, Target(1), "lime")[2] == {
        "method": "lime", "layer": None, "n_superpixels": 35, "samples": 500}


def test_lime_heatmap_paints_positive_weights():
    segments = np.array([[0, 0, 1], [2, 2, 1]], dtype="int32")
    explanation = LimeExplanation(
        segments=segments, image=np.zeros((2, 3, 3), "uint8"), class_indices=(0, 1),
        labels=("a", "b"), weights=np.array([[0.2, -0.5, 0.1], [0, 0, 0]], "float32"),
        intercepts=np.zeros(2, "float32"), r2=np.ones(2, "float32"),
        local_predictions=np.zeros(2, "float32"), probabilities=np.ones(2, "float32"),
        samples=10, hide="white", seed=0, algorithm="slic", n_superpixels=3, compactness=10.0)
    np.testing.assert_allclose(lime_heatmap(explanation, 0), [[1, 1, 0], [0.5, 0.5, 0]])
    np.testing.assert_array_equal(lime_heatmap(explanation, 1), 0.0)


def test_explanation_map_matches_class_heatmap_and_lime(known):
    model = wrap(tiny_cnn(size=32))
    pixels = np.random.default_rng(1).integers(0, 256, (32, 32, 3)).astype("uint8")
    view = model.view(image_from_array(pixels, "noise"))
    from viz_core.methods.heatmap import class_heatmap

    gradcam = explanation_map(model, view, Target(0), "gradcam")
    np.testing.assert_array_equal(gradcam, class_heatmap(model, view, Target(0)).heatmap)
    # LIME through the registry is the LIME page's explanation, painted (lime_heatmap)
    region_net, region_view = known
    lime = explanation_map(region_net, region_view, Target(1), "lime", samples=100,
                           n_superpixels=4)
    page = lime_explanation(region_net, region_view, (1,), samples=100, n_superpixels=4)
    np.testing.assert_array_equal(lime, lime_heatmap(page, 1))
    assert lime.shape == (SIDE, SIDE) and lime.dtype == np.float32
    # on the region model, hiding the (white) region in black is all that lowers class 1
    from viz_core.methods.context import MethodContext
    from viz_core.methods.lime import lime_map

    raw = lime_map(MethodContext(region_net, region_view, Target(1)), samples=100,
                   n_superpixels=4, hide="black")
    assert raw.shape == (SIDE, SIDE) and raw.max() > 0
    assert raw[region()].mean() > raw[~region()].mean()
    with pytest.raises(ParameterError, match="'deconvnet'"):
        explanation_map(model, view, Target(0), "deconvnet")


@pytest.mark.slow
@pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="the demo model is not committed yet")
def test_demo_model_gradcam_is_more_faithful_than_its_reverse():
    """On fresh one-shape scenes, removing Grad-CAM's top pixels first kills the class faster
    (and revealing them first restores it faster) than taking the same pixels in reverse order."""
    from viz_core.methods.heatmap import class_heatmap
    from viz_core.demo.shapes import draw_scene
    from viz_core.runtime.workbench import Workbench

    demo = Workbench(allow_download=False).builtin_model("demo")
    for seed, label in ((1_600_000_000, "circle"), (1_600_000_001, "star")):
        scene = draw_scene(seed, (label,))
        view = demo.view(image_from_array(scene.image, label))
        k = demo.class_index(label)
        heat = class_heatmap(demo, view, Target(k)).heatmap
        good = deletion_insertion(demo, view, k, heat, steps=10)
        reverse = deletion_insertion(demo, view, k, 1.0 - heat, steps=10)
        assert good.deletion_auc < reverse.deletion_auc
        assert good.insertion_auc > reverse.insertion_auc
        assert good.deletion[0] == pytest.approx(good.insertion[-1], abs=1e-5)  # the image itself


# ----------------------------------------------------------------------------------------------
# More metrics: sparseness, ROAD's imputation and curves, random-logit, max-sensitivity
# ----------------------------------------------------------------------------------------------
def test_sparseness_is_the_gini_index_by_hand():
    from viz_core.metrics.complexity import sparseness

    # sorted a = 0, 0, 1, 3: sum((2i - n - 1) a_i) = -3*0 - 1*0 + 1*1 + 3*3 = 10; n sum a = 16
    assert sparseness(np.array([[3.0, 0.0], [1.0, 0.0]])) == pytest.approx(10 / 16, abs=1e-6)
    assert sparseness(np.ones((5, 5))) == pytest.approx(0.0, abs=1e-9)
    one = np.zeros((10, 10))
    one[3, 4] = 1.0
    assert sparseness(one) == pytest.approx(99 / 100, abs=1e-5)
    assert sparseness(-one) == sparseness(one)  # absolute values


def test_noisy_linear_imputation_by_hand():
    from viz_core.metrics.road import noisy_linear_imputation

    # a linear ramp: every interior pixel is the weighted mean of its symmetric neighbours
    i, j = np.mgrid[0:9, 0:9]
    ramp = np.stack([10.0 * i + 3.0 * j, 5.0 * i, 20.0 + 2.0 * j], axis=-1)
    removed = np.zeros((9, 9), dtype=bool)
    removed[2:7, 3:6] = True
    np.testing.assert_allclose(noisy_linear_imputation(ramp, removed, noise=0.0), ramp,
                               atol=1e-4)
    # one removed pixel: (1/6 (sum of 4 direct) + 1/12 (sum of 4 diagonal)) / (4/6 + 4/12)
    spot = np.zeros((3, 3, 1))
    spot[0, 1] = spot[1, 0] = 60.0  # two direct neighbours
    spot[0, 0] = 120.0  # one diagonal
    centre = np.zeros((3, 3), dtype=bool)
    centre[1, 1] = True
    assert noisy_linear_imputation(spot, centre, noise=0.0)[1, 1, 0] == pytest.approx(
        (120 / 6 + 120 / 12) / 1.0, abs=1e-4)
    noisy = noisy_linear_imputation(np.full((40, 40, 3), 100.0), np.ones((40, 40), bool)
                                    & ~np.eye(40, dtype=bool), noise=5.0, seed=1)
    assert noisy[0, 0].tolist() == [100.0] * 3  # kept pixels are unchanged
    assert np.std(noisy[~np.eye(40, dtype=bool)]) == pytest.approx(5.0, rel=0.1)


def test_road_curves_follow_the_watched_region(known):
    from viz_core.metrics.road import noisy_linear_imputation, road

    model, view = known
    on_region = distinct(np.where(region(), 1.0, 0.1))
    curves = road(model, view, 1, on_region, fractions=(0.25, 0.5), noise=0.0)
    order = np.argsort(-on_region.ravel(), kind="stable")
    expected = []
    for ranked in (order, order[::-1]):
        for f in (0.25, 0.5):
            removed = np.zeros(64, bool)
            removed[ranked[:int(f * 64)]] = True
            imputed = noisy_linear_imputation(view.pixels, removed.reshape(8, 8), noise=0.0)
            expected.append(sigmoid(GAIN * imputed[region()].mean(axis=-1).sum() / 255.0))
    np.testing.assert_allclose(np.concatenate([curves.morf, curves.lerf]), expected, atol=1e-5)
    assert curves.morf_area < curves.lerf_area  # removing the region first hurts most
    with pytest.raises(ParameterError, match="1.0"):
        road(model, view, 1, on_region, fractions=(0.5, 1.0))


def test_random_logit_and_max_sensitivity_by_reference():
    from skimage.metrics import structural_similarity

    from viz_core.methods.heatmap import class_heatmap
    from viz_core.metrics.evaluation import map_metrics
    from viz_core.metrics.randomisation import random_logit
    from viz_core.metrics.robustness import max_sensitivity

    def explain(method, net=None):
        return lambda image, target: class_heatmap(net or model, image, target, method).heatmap

    model = wrap(tiny_cnn(classes=4, seed=2))
    view = model.view(image_from_array(np.random.default_rng(3).integers(
        0, 256, (32, 32, 3), dtype=np.uint8), "metrics"))
    other, ssim = random_logit(model, view, Target(1), explain("gradcam"), seed=5)
    assert other == int(np.random.default_rng(5).choice([0, 2, 3]))
    a = class_heatmap(model, view, Target(1), "gradcam").heatmap
    b = class_heatmap(model, view, Target(other), "gradcam").heatmap
    assert ssim == pytest.approx(structural_similarity(a.astype("float64"), b.astype("float64"),
                                                       data_range=1.0, win_size=7), abs=1e-6)
    # EigenCAM has no class: the other class's map is the same map
    assert random_logit(model, view, Target(1), explain("eigencam"))[1] == pytest.approx(1.0)
    binary = wrap(tiny_cnn(classes=1, activation="sigmoid"), labels=["no", "yes"])
    assert random_logit(binary, binary.view(view_image()), Target(1),
                        explain("gradcam", binary))[0] == 0
    # max-sensitivity by hand: the noisy copies' maps, the same seed
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(3):
        noisy = np.clip(view.pixels + rng.uniform(-5.1, 5.1, view.pixels.shape), 0, 255)
        from viz_core.inputs.intake import ModelImage

        copy = ModelImage(view.original, noisy.astype("float32"), "n", f"n{_}")
        other_map = class_heatmap(model, copy, Target(1), "gradcam").heatmap
        worst = max(worst, np.linalg.norm(other_map - a) / np.linalg.norm(a))
    assert max_sensitivity(view, Target(1), explain("gradcam"), samples=3) == pytest.approx(
        worst, rel=1e-5)
    # map_metrics: every registered metric by its name, the same numbers
    metrics = map_metrics(model, view, Target(1), "gradcam",
                          params={"max_sensitivity": {"samples": 3}})
    other0, ssim0 = random_logit(model, view, Target(1), explain("gradcam"))
    assert metrics["random_logit"] == pytest.approx(ssim0, abs=1e-9)
    assert metrics.random_logit_class == other0
    assert metrics["max_sensitivity"] == pytest.approx(worst, rel=1e-5)
    assert metrics["deletion_auc"] == pytest.approx(
        deletion_insertion(model, view, 1, a).deletion_auc, abs=1e-9)
    assert 0.0 <= metrics["sparseness"] < 1.0 and 0.0 <= metrics["road_morf"] <= 1.0
    assert metrics.as_dict()["random_logit_class"] == other0


def view_image():
    return image_from_array(np.random.default_rng(4).integers(0, 256, (32, 32, 3),
                                                              dtype=np.uint8), "binary")
