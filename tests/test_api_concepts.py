"""vc.concepts and vc.tcav: CRAFT and TCAV from what a notebook holds (images, a folder), drawn
in Jupyter. Values are checked against the backend called directly on the same pixels."""
from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

import viz_core as vc
from tests.conftest import tiny_cnn, wrap
from viz_core.errors import ParameterError
from viz_core.methods.craft import craft
from viz_core.methods.tcav import tcav as backend_tcav


@pytest.fixture(scope="module")
def model():
    return wrap(tiny_cnn(size=16, classes=3, seed=4), labels=["a", "b", "c"])


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(8)]


def _pngs(html: str) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))
            for data in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


# --------------------------------------------------------------------------------------------
# CRAFT
# --------------------------------------------------------------------------------------------
def test_concepts_equal_the_backends_for_the_same_seed(model, images):
    result = vc.concepts(model, images, "b", "conv_b", concepts=3, designs=8, top=4, seed=2)
    assert isinstance(result, vc.Concepts) and len(result) == 3
    # an unlabelled list: every image is one of the class, in the order given
    assert result.chosen_by == "all" and result.names == tuple(f"image {i}" for i in range(8))
    direct = craft(model, np.stack(images), 1, "conv_b", concepts=3, designs=8, top=4, seed=2)
    np.testing.assert_array_equal(result.importance, direct.importance)
    np.testing.assert_array_equal(result.craft.coefficients, direct.coefficients)
    np.testing.assert_array_equal(result.craft.top_crops, direct.top_crops)
    assert result.importance.sum() == pytest.approx(1.0)
    assert result.to_index()["class"] == "b"
    # another seed, another factorisation start and other Sobol points
    other = vc.concepts(model, images, "b", "conv_b", concepts=3, designs=8, top=4, seed=3)
    assert not np.array_equal(other.craft.total_indices, result.craft.total_indices)


def test_labels_pick_the_class_images(model, images):
    labels = ["a", "b"] * 4
    result = vc.concepts(model, images, "a", "conv_b", concepts=2, designs=4, top=2,
                         labels=labels)
    assert result.chosen_by == "label"
    assert result.names == tuple(f"image {i}" for i in range(0, 8, 2))
    direct = craft(model, np.stack(images[0::2]), 0, "conv_b", concepts=2, designs=4, top=2)
    np.testing.assert_array_equal(result.importance, direct.importance)


def test_concepts_draw_one_row_per_concept(model, images):
    from viz_core.render.concepts import crop_tile, mean_map_picture

    result = vc.concepts(model, images, 1, "conv_b", concepts=3, designs=4, top=2)
    html = result._repr_html_()
    assert html.count("<tr>") == 1 + 3  # a header and one row per concept
    for k in range(3):
        assert f"importance {result.importance[k]:.2f}" in html
    pngs = _pngs(html)
    assert len(pngs) == 3 * (2 + 1)  # each concept: its crops and its mean map
    np.testing.assert_array_equal(pngs[0], crop_tile(result.craft.top_crop_pixels[0, 0]))
    np.testing.assert_array_equal(pngs[2], mean_map_picture(result.craft.mean_map(0)))
    np.testing.assert_array_equal(pngs[5], mean_map_picture(result.craft.mean_map(1)))


def test_concepts_refuse_an_unknown_class_and_labels_with_a_folder(model, images, tmp_path):
    with pytest.raises(ParameterError, match="zebra"):
        vc.concepts(model, images, "zebra", concepts=2)
    with pytest.raises(ParameterError, match="labels="):
        vc.concepts(model, str(tmp_path), "a", labels=["a"])


# --------------------------------------------------------------------------------------------
# TCAV
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sets():
    rng = np.random.default_rng(11)
    stripes = np.zeros((6, 16, 16, 3), np.uint8)
    stripes[:, :, ::4] = 255  # the concept: vertical stripes
    stripes[:, :, :, 1] = rng.integers(0, 60, (6, 16, 16))
    random = rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    return list(stripes), list(random)


def test_tcav_score_equals_the_backend_call(model, images, sets):
    stripes, random = sets
    result = vc.tcav(model, images, stripes, random, "c", "conv_b", random_runs=4, seed=5)
    assert isinstance(result, vc.Tcav)
    direct = backend_tcav(model, np.stack(images), np.stack(stripes), np.stack(random), 2,
                          "conv_b", runs=4, concept="concept", seed=5)
    assert result.score == direct.score and 0.0 <= result.score <= 1.0
    assert result.p_value == direct.p_value
    assert result.significant == direct.significant
    np.testing.assert_array_equal(result.random_scores, direct.random_scores)
    np.testing.assert_array_equal(result.concept_scores, direct.concept_scores)
    assert len(result.random_scores) == 4
    assert result.to_dict()["class"] == "c" and result.concept_source == "concept"


def test_tcav_draws_random_images_from_the_data_when_none_are_given(model, images, sets):
    stripes, _ = sets
    result = vc.tcav(model, images, stripes, None, "a", "conv_b", random_runs=2)
    assert result.random_source == "images" and result.random_images == 8
    assert result.result.random_set_size == 4  # at most half the pool of 8


def test_tcav_draws_a_summary(model, images, sets):
    stripes, random = sets
    result = vc.tcav(model, images, stripes, random, "c", "conv_b", random_runs=3)
    html = result._repr_html_()
    assert f"{result.score:.2f}" in html and f"{result.p_value:.3g}" in html
    assert ("not significant" in html) == (not result.significant)
    runs = re.search(r"random runs</th><td>([^<]+)</td>", html).group(1)
    assert [float(v) for v in runs.split(", ")] == pytest.approx(
        np.round(result.random_scores, 2).tolist())


def test_tcav_refuses_too_few_concept_images(model, images, sets):
    _, random = sets
    with pytest.raises(ParameterError, match="concept images"):
        vc.tcav(model, images, images[:1], random, "a", "conv_b", random_runs=2)
