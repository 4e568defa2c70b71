"""Compare's metrics against Quantus (Hedström et al. 2023), an independent implementation, on
the same numpy inputs: sparseness (Gini index), ROAD's noisy linear imputation and
max-sensitivity.

Quantus 0.6.0 installs without PyTorch (its torch and tensorflow support are extras; it is a
test-only dependency in requirements-dev.txt) and is skipped where it is missing. Its ROAD
metric scores whether the top class survives (0 or 1 per fraction, MoRF only) where ours
follows the class probability both ways, so the part they share, the imputation, is compared.
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import tiny_cnn, wrap
from viz_core.methods.heatmap import class_heatmap
from viz_core.metrics.complexity import sparseness
from viz_core.metrics.registry import SENSITIVITY_RADIUS
from viz_core.metrics.road import noisy_linear_imputation
from viz_core.metrics.robustness import max_sensitivity
from viz_core.inputs.intake import ModelImage, image_from_array
from viz_core.models.targets import Target

quantus = pytest.importorskip("quantus")
from quantus.functions.perturb_func import noisy_linear_imputation as quantus_imputation  # noqa: E402


@pytest.mark.parametrize("seed, shape", [(0, (12, 10)), (1, (32, 32)), (2, (7, 19))])
def test_sparseness_equals_quantus_gini(seed, shape):
    rng = np.random.default_rng(seed)
    heat = rng.random(shape) ** (1 + 4 * seed)  # more and more concentrated maps
    heat[rng.random(shape) < 0.3] = 0.0
    metric = quantus.Sparseness(abs=True, normalise=False, disable_warnings=True)
    x = rng.random((1, 3, *shape))  # Quantus wants the input; Sparseness does not read it
    theirs = metric(model=None, x_batch=x, y_batch=np.array([0]), a_batch=heat[None, None].copy())
    assert sparseness(heat) == pytest.approx(float(theirs[0]), rel=1e-9)
    assert sparseness(-heat) == pytest.approx(float(theirs[0]), rel=1e-9)  # absolute values


@pytest.mark.parametrize("seed, share", [(0, 0.1), (1, 0.5), (2, 0.9)])
def test_noisy_linear_imputation_equals_quantus(seed, share):
    rng = np.random.default_rng(seed)
    pixels = rng.uniform(0, 255, (14, 11, 3))
    removed = rng.random((14, 11)) < share
    removed[0, 0] = False  # at least one pixel kept
    # Quantus: channels first, flat indices of the removed pixels; its noise is unseeded, so 0
    theirs = quantus_imputation(pixels.transpose(2, 0, 1).copy(),
                                np.flatnonzero(removed.ravel()), noise=0.0)
    ours = noisy_linear_imputation(pixels, removed, noise=0.0)
    np.testing.assert_allclose(ours, theirs.transpose(1, 2, 0), rtol=0, atol=1e-3)
    np.testing.assert_array_equal(ours[~removed], pixels[~removed].astype("float32"))


def test_max_sensitivity_equals_quantus_on_the_same_noisy_copies():
    model = wrap(tiny_cnn(classes=3, seed=5))
    view = model.view(image_from_array(np.random.default_rng(8).integers(
        0, 256, (32, 32, 3), dtype=np.uint8), "sens"))
    samples, seed = 3, 4
    ours = max_sensitivity(view, Target(2),
                           lambda image, target: class_heatmap(model, image, target).heatmap,
                           samples=samples, seed=seed)

    # the noisy copies ours draws (uniform, +-radius x 255, clipped), handed to Quantus in turn
    rng = np.random.default_rng(seed)
    copies = [np.clip(view.pixels + rng.uniform(-SENSITIVITY_RADIUS * 255.0,
                                                SENSITIVITY_RADIUS * 255.0, view.pixels.shape),
                      0, 255).astype("float32") for _ in range(samples)]
    drawn = iter(copies)
    ours_model = model  # Quantus calls explain(model=None, ...): the name is taken

    def perturb(arr, indices, **kwargs):  # Quantus passes the batch channels-first, flat
        return next(drawn).transpose(2, 0, 1).reshape(1, -1)

    def explain(model, inputs, targets, **kwargs):  # channels-first batch -> our maps
        maps = []
        for x, k in zip(inputs, targets):
            image = ModelImage(view.original, np.ascontiguousarray(x.transpose(1, 2, 0)),
                               "sens", f"sens-{hash(x.tobytes())}")
            maps.append(class_heatmap(ours_model, image, Target(int(k)), "gradcam").heatmap)
        return np.stack(maps)[:, None]

    metric = quantus.MaxSensitivity(nr_samples=samples, perturb_func=perturb,
                                    disable_warnings=True)
    heat = class_heatmap(model, view, Target(2), "gradcam").heatmap
    theirs = metric(model=None, x_batch=view.pixels.transpose(2, 0, 1)[None].copy(),
                    y_batch=np.array([2]), a_batch=heat[None, None].copy(),
                    explain_func=explain, channel_first=True)
    assert ours > 0.0
    assert ours == pytest.approx(float(theirs[0]), rel=1e-5)
