"""KernelSHAP and GradientSHAP (viz_core.methods.shap) against brute-force Shapley values and
hand-computed expected gradients."""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.conftest import tiny_cnn, wrap
from viz_core.inputs.intake import image_from_array
from viz_core.methods.context import PixelBatch
from viz_core.methods.heatmap import class_heatmap
from viz_core.methods.lime import hidden_image
from viz_core.methods.lime_options import DEFAULT_HIDE
from viz_core.methods.shap import (coalitions, gradientshap_attributions, gradientshap_points,
                                   shapley_fit, shapley_kernel)
from viz_core.methods.superpixels import superpixels
from viz_core.models.preprocess import preprocess
from viz_core.models.targets import Target


def brute_force_shapley(f, m):
    """Shapley values by their definition: weighted marginal contributions over all subsets."""
    values = np.zeros(m)
    for i in range(m):
        others = [j for j in range(m) if j != i]
        for size in range(m):
            for subset in itertools.combinations(others, size):
                z = np.zeros(m, np.uint8)
                z[list(subset)] = 1
                with_i = z.copy()
                with_i[i] = 1
                weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
                values[i] += weight * (f(with_i[None])[0] - f(z[None])[0])
    return values


def toy(z):
    """Linear-ish: additive terms, a pairwise and a three-way interaction."""
    z = np.asarray(z, dtype="float64")
    return (0.5 + z @ np.array([1.0, -2.0, 0.5, 3.0, 0.25]) + 1.5 * z[:, 0] * z[:, 1]
            - 0.75 * z[:, 2] * z[:, 3] * z[:, 4])


def test_the_shapley_kernel_weights():
    # (M - 1) / (C(M, s) s (M - s)) for M = 4
    np.testing.assert_allclose(shapley_kernel(4, np.array([1, 2, 3])),
                               [3 / (4 * 1 * 3), 3 / (6 * 2 * 2), 3 / (4 * 3 * 1)])


def test_every_coalition_gives_the_exact_shapley_values_of_a_toy():
    z, weights = coalitions(5, samples=30, seed=0)
    assert len(z) == 30 and len({tuple(row) for row in z}) == 30  # all 2^5 - 2 coalitions
    full, empty = toy(np.ones((1, 5)))[0], toy(np.zeros((1, 5)))[0]
    values = shapley_fit(z, toy(z), weights, empty, full)
    np.testing.assert_allclose(values, brute_force_shapley(toy, 5), atol=1e-10)
    assert values.sum() == pytest.approx(full - empty, abs=1e-12)


def test_sampled_coalitions_are_seeded_paired_and_exact_for_an_additive_game():
    z, weights = coalitions(12, samples=200, seed=3)
    again, _ = coalitions(12, samples=200, seed=3)
    np.testing.assert_array_equal(z, again)
    assert z.shape == (200, 12) and np.all(weights == 1)
    np.testing.assert_array_equal(z[1::2], 1 - z[0::2])  # complementary pairs
    assert np.all((z.sum(axis=1) > 0) & (z.sum(axis=1) < 12))
    w = np.random.default_rng(1).normal(size=12)
    values = shapley_fit(z, 2.0 + z @ w, weights, 2.0, 2.0 + w.sum())
    np.testing.assert_allclose(values, w, atol=1e-9)  # an additive game's values are its terms


def test_kernelshap_on_a_model_equals_brute_force_and_sums_to_the_score_change():
    model = wrap(tiny_cnn(size=16, classes=3, seed=5))
    image = np.zeros((16, 16, 3), np.uint8)  # four coloured quarters: four superpixels
    image[:8, :8], image[:8, 8:] = (200, 30, 30), (30, 200, 30)
    image[8:, :8], image[8:, 8:] = (30, 30, 200), (220, 220, 40)
    image += np.random.default_rng(8).integers(0, 20, image.shape, dtype=np.uint8)
    view = model.view(image_from_array(image, "quarters"))
    params = dict(n_superpixels=4, compactness=10.0, samples=64, seed=0)
    result = class_heatmap(model, view, Target(1), "kernelshap", **params)
    # the reference: every coalition scored here, with the same cut and fill, through keras
    cut = superpixels(view, n_superpixels=4, compactness=10.0, seed=0)
    m = cut.count
    assert m == 4 and 2 ** m - 2 <= 64
    pixels = view.pixels.astype("float32")
    fill = hidden_image(pixels, cut.segments, DEFAULT_HIDE)
    logits = model.side_model((), logits=True)

    def f(z):
        keep = z[:, cut.segments].astype(bool)[..., None]
        images = np.where(keep, pixels[None], fill[None])
        out = logits(preprocess("unit", images))
        return np.asarray(out[0] if isinstance(out, list) else out, "float64")[:, 1]

    want = brute_force_shapley(f, m)
    got = np.array([result.raw[cut.segments == s][0] for s in range(m)])
    np.testing.assert_allclose(got, want, atol=1e-4 * max(1.0, np.abs(want).max()))
    change = f(np.ones((1, m), np.uint8))[0] - f(np.zeros((1, m), np.uint8))[0]
    assert result.attribution_sum == pytest.approx(change, abs=1e-4)
    assert result.score_difference == pytest.approx(change, abs=1e-4)
    assert result.score == pytest.approx(f(np.ones((1, m), np.uint8))[0], abs=1e-4)


def linear_model(seed=0):
    """Identity 1x1 conv -> Flatten -> Dense(3, softmax), no preprocessing: the logit's
    gradient with respect to the pixels is the dense kernel's column everywhere."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8, 8, 3)),
                              keras.layers.Conv2D(3, 1, use_bias=False, name="identity"),
                              keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax", name="head")])
    model.get_layer("identity").set_weights([np.eye(3, dtype="float32")[None, None]])
    return model


@pytest.mark.parametrize("blur", [0.0, 2.0])
def test_gradientshap_of_a_linear_model_is_the_difference_to_the_mean_baseline_times_w(blur):
    keras_model = linear_model()
    model = wrap(keras_model, preprocessing="none")
    x = np.random.default_rng(2).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    targets = (Target(0), Target(2))
    got = gradientshap_attributions(PixelBatch(model, x, targets), samples=5, blur=blur, seed=4)
    baselines, points = gradientshap_points(x, samples=5, blur=blur, seed=4)
    assert baselines.shape == points.shape == (2, 5, 8, 8, 3)
    kernel, _ = keras_model.get_layer("head").get_weights()
    for i, target in enumerate(targets):
        w = kernel[:, target.class_index].reshape(8, 8, 3)
        want = (x[i] - baselines[i].mean(axis=0)) * w
        np.testing.assert_allclose(got[i], want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    # the points lie on the straight paths from the baselines to the images
    along = (points - baselines) / (x[:, None] - baselines)
    np.testing.assert_allclose(along, along[..., :1, :1, :1] * np.ones_like(along), atol=1e-3)
    assert 0.0 <= along.min() and along.max() <= 1.0


def test_the_heatmap_command_reports_what_kernelshap_shares_out(tmp_path, capsys):
    """``heatmap --method kernelshap --json``: ``score`` is f(x) - f(baseline), the sum the
    values share out (``attribution_sum``, within 1e-3 with every coalition enumerated);
    ``class_score`` keeps the class's own score."""
    import json

    from viz_core.cli import main

    star = str(Path(__file__).resolve().parents[1] / "assets" / "samples" / "star.png")
    code = main(["heatmap", "--image", star, "--method", "kernelshap", "--n-superpixels", "6",
                 "--samples", "64", "--out", str(tmp_path), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    row = json.loads(out.out)["results"][0]
    assert row["score"] == row["score_difference"]
    assert abs(row["attribution_sum"] - row["score"]) <= 1e-3
    assert row["class_score"] != row["score"]  # the logit of 'star', not the change
