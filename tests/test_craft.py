"""CRAFT on the shortcut demo (the star class's corner tag is found and ranked first), Sobol
total indices against a brute-force estimate, and the model kinds: grayscale, one sigmoid unit
(both classes), a nested transfer-learning model."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.conftest import nested_cnn, tiny_cnn, wrap
from viz_core.dataset.concepts import cached_concepts, class_entries
from viz_core.dataset.readers import sample_dataset
from viz_core.errors import Cancelled, ParameterError
from viz_core.methods.craft import (Craft, craft, crop_boxes, crop_side, jansen_total_indices,
                                    sobol_design)
from viz_core.runtime.cache import DiskCache


# --------------------------------------------------------------------------------------------
# The shortcut demo: the tag is a concept, and the most important one for "star"
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shortcut():
    from viz_core.demo.shortcut import load_shortcut_model

    return load_shortcut_model()


def test_the_star_class_leans_on_a_concept_in_the_tags_corner(shortcut):
    from viz_core.demo.shortcut import HELD_OUT_FIRST_SEED, TAG_BOX, shortcut_scene

    tagged = np.arange(24) % 4 != 0  # 18 tagged stars, 6 plain ones
    images = np.stack([shortcut_scene(HELD_OUT_FIRST_SEED + i, "star", bool(t))
                       for i, t in enumerate(tagged)])
    result = craft(shortcut, images, shortcut.class_index("star"), "conv2d_4", concepts=6)
    # the corner the tag sits in: the top-left quarter of the 64 px scene
    assert TAG_BOX[2] <= 32 and TAG_BOX[3] <= 32
    corner = np.zeros((64, 64), bool)
    corner[:32, :32] = True
    share = np.array([[m[corner].sum() / max(m.sum(), 1e-9) for m in result.maps(i)]
                      for i in np.nonzero(tagged)[0]]).mean(axis=0)  # (K,) per concept
    assert share.argmax() == 0, share  # the concept in the corner is the most important one
    assert share[0] > 0.6  # a quarter of the picture holds most of its mass
    assert result.importance[0] > 2 * result.importance[1]
    # the concept is the tag: it is (nearly) absent from plain stars
    on_plain = result.coefficients[~tagged, ..., 0].sum(axis=(1, 2)).mean()
    on_tagged = result.coefficients[tagged, ..., 0].sum(axis=(1, 2)).mean()
    assert on_plain < 0.25 * on_tagged
    # its best crop is a tagged star's top-left crop
    image, x0, y0, _, _ = result.crop_boxes[result.top_crops[0, 0]]
    assert tagged[image] and (x0, y0) == (0, 0)


def test_concepts_of_a_class_from_a_sample_dataset_are_cached(shortcut, tmp_path):
    data = sample_dataset("shortcut", shortcut.labels, 32)  # 8 of each group
    picked, chosen = class_entries(data, shortcut.class_index("star"), 100)
    assert chosen == "label" and len(picked) == 16
    assert all(data.entries[p].path.startswith("star/") for p in picked)
    disk = DiskCache(tmp_path)
    first = cached_concepts(shortcut, data, "star", disk=disk, concepts=4, designs=8)
    again = cached_concepts(shortcut, data, "star", disk=disk, concepts=4, designs=8)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    np.testing.assert_array_equal(again.craft.coefficients, first.craft.coefficients)
    np.testing.assert_array_equal(again.craft.top_crop_pixels, first.craft.top_crop_pixels)
    assert again.names == first.names and len(again.names) == 16
    index = again.to_index()
    assert index["class"] == "star" and index["layer"] == "conv2d_4"
    assert sum(c["importance"] for c in index["concepts"]) == pytest.approx(1.0)
    crop = index["concepts"][0]["crop_sources"][0]
    assert crop["image"] in first.names and crop["box"][2] - crop["box"][0] == 18


# --------------------------------------------------------------------------------------------
# Sobol total indices
# --------------------------------------------------------------------------------------------
def test_jansen_estimator_on_a_function_with_known_total_indices():
    # f = x0 + 2 x1 + x0 * x2 on uniform [0, 1]^3: variances by hand
    designs, k = 4096, 3
    x = sobol_design(k, designs, seed=1).astype(np.float64)
    y = x[:, 0] + 2 * x[:, 1] + x[:, 0] * x[:, 2]
    got = jansen_total_indices(y, designs, k)
    # by hand: f = x0 (1 + x2) + 2 x1, each x uniform with variance 1/12 and mean 1/2
    var_u = 1 / 12
    total = var_u * 7 / 3 + 0.25 * var_u + 4 * var_u  # Var f (E(1+x2)^2 = 7/3, Var 0.5 x2)
    st0 = var_u * 7 / 3 / total  # E[Var(f | x1, x2)] = E(1+x2)^2 Var x0
    st1 = 4 * var_u / total
    st2 = var_u / 3 / total  # E[x0^2] Var x2
    np.testing.assert_allclose(got, [st0, st1, st2], atol=0.02)


def _brute_force_total_indices(score, k: int, grid: int = 16) -> np.ndarray:
    """E_{~i}[Var_i f] / Var f on a midpoint grid of [0, 1]^k."""
    axis = (np.arange(grid) + 0.5) / grid
    points = np.stack(np.meshgrid(*[axis] * k, indexing="ij"), axis=-1).reshape(-1, k)
    f = score(points).reshape((grid,) * k)
    return np.array([f.var(axis=i).mean() for i in range(k)]) / f.var()


def test_sobol_importance_equals_a_brute_force_estimate_on_a_tiny_model():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="cut")(inputs)
    after = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="after")
    pool = keras.layers.GlobalAveragePooling2D(name="gap")
    head = keras.layers.Dense(2, name="head")
    outputs = keras.layers.Activation("softmax", name="soft")(head(pool(after(x))))
    model = wrap(keras.Model(inputs, outputs))
    image = np.random.default_rng(0).integers(0, 256, (1, 16, 16, 3)).astype(np.float32)
    result = craft(model, image, 1, "cut", concepts=3, designs=2048, seed=5)
    # brute force, by the model's own layers: logit of class 1 with each concept scaled by m_k
    u, bank = result.coefficients[0], result.bank  # (h, w, 3), (3, 5)

    def score(masks):
        acts = np.einsum("hwk,mk,kc->mhwc", u, masks, bank).astype(np.float32)
        return np.asarray(head(pool(after(acts))))[:, 1]

    expected = _brute_force_total_indices(score, 3)
    np.testing.assert_allclose(result.total_indices[0], expected, atol=0.03)
    np.testing.assert_allclose(result.importance, expected / expected.sum(), atol=0.03)
    assert result.score == "logit"


def test_the_design_replaces_one_column_of_a_with_b():
    d = sobol_design(4, 8, seed=0)
    a, b, mixed = d[:8], d[8:16], d[16:].reshape(4, 8, 4)
    for i in range(4):
        np.testing.assert_array_equal(mixed[i][:, i], b[:, i])
        others = [j for j in range(4) if j != i]
        np.testing.assert_array_equal(mixed[i][:, others], a[:, others])


# --------------------------------------------------------------------------------------------
# Crops
# --------------------------------------------------------------------------------------------
def test_crops_follow_the_papers_size_and_stride():
    assert crop_side((224, 224)) == 64
    boxes = crop_boxes(224, 224, 64)
    assert len(boxes) == 16  # stride 51: 0, 51, 102, 153
    assert boxes[1].tolist() == [51, 0, 115, 64] and boxes[-1].tolist() == [153, 153, 217, 217]
    with pytest.raises(ParameterError, match="does not fit"):
        crop_boxes(8, 8, 10)


# --------------------------------------------------------------------------------------------
# Model kinds
# --------------------------------------------------------------------------------------------
def _images(n, size, channels, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, channels)).astype(np.uint8)


def _check_result(model, result: Craft, images: np.ndarray, layer: str):
    """What every result holds, checked against the model and the images independently."""
    k = len(result)
    assert result.importance.sum() == pytest.approx(1.0)
    assert np.all(np.diff(result.importance) <= 1e-12)
    # the concepts rebuild the layer's activations, computed here by Keras directly
    side = keras.Model(model.model.inputs, model.model.get_layer(layer).output) \
        if "/" not in layer else None
    if side is not None:
        acts = np.asarray(side(images.astype(np.float32) / 255.0))
        rebuilt = result.coefficients @ result.bank
        assert np.linalg.norm(rebuilt - acts) < 0.5 * np.linalg.norm(acts)
    # a top crop is the image's pixels at its box
    image, x0, y0, x1, y1 = result.crop_boxes[result.top_crops[0, 0]]
    np.testing.assert_array_equal(result.top_crop_pixels[0, 0], images[image, y0:y1, x0:x1])
    maps = result.maps(0)
    assert maps.shape == (k, *images.shape[1:3]) and maps.dtype == np.float32
    # bilinear resizing keeps the values within the grid's range and about its mean
    grid = result.coefficients[0]
    assert np.all(maps.max(axis=(1, 2)) <= grid.max(axis=(0, 1)) + 1e-6)
    np.testing.assert_allclose(maps.mean(axis=(1, 2)), grid.mean(axis=(0, 1)), rtol=0.15,
                               atol=1e-6)


def test_grayscale_model():
    model = wrap(tiny_cnn(size=16, channels=1, classes=3))
    images = _images(4, 16, 1)
    result = craft(model, images, 2, "conv_b", concepts=3, designs=16)
    assert result.top_crop_pixels.shape[-1] == 1
    _check_result(model, result, images, "conv_b")


def test_single_sigmoid_both_classes_share_the_same_importance():
    model = wrap(tiny_cnn(size=16, classes=1, activation="sigmoid"))
    assert model.info.output_kind == "binary"
    images = _images(4, 16, 3, seed=1)
    one = craft(model, images, 1, "conv_b", concepts=3, designs=32)
    zero = craft(model, images, 0, "conv_b", concepts=3, designs=32)
    _check_result(model, one, images, "conv_b")
    # class 0 scores -logit: every difference flips sign, squares and variance do not
    np.testing.assert_allclose(zero.total_indices, one.total_indices, rtol=1e-5, atol=1e-9)
    with pytest.raises(ParameterError):
        craft(model, images, 2, "conv_b", concepts=3)


def test_nested_transfer_learning_model_gives_what_its_flat_twin_gives():
    nested = nested_cnn(size=16, classes=1)
    originals = nested.layers[0].layers + nested.layers[1:]
    flat = keras.Sequential([keras.Input((16, 16, 3))]
                            + [type(o).from_config(o.get_config()) for o in originals])
    for twin, original in zip(flat.layers, originals):
        twin.set_weights(original.get_weights())
    a, b = wrap(nested), wrap(flat)
    layer = next(p for p in a.info.conv_layers if p.endswith("conv_b"))
    assert "/" in layer  # inside the nested base model
    images = _images(3, 16, 3, seed=2)
    got = craft(a, images, 1, layer, concepts=3, designs=16)
    want = craft(b, images, 1, "conv_b", concepts=3, designs=16)
    np.testing.assert_allclose(got.coefficients, want.coefficients, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got.importance, want.importance, rtol=1e-4, atol=1e-6)
    _check_result(b, want, images, "conv_b")


def test_a_layer_with_negative_activations_is_refused_with_its_name():
    keras.utils.set_random_seed(0)
    model = wrap(keras.Sequential([keras.Input((16, 16, 3)),
                                   keras.layers.Conv2D(4, 3, name="linear_conv"),
                                   keras.layers.GlobalAveragePooling2D(),
                                   keras.layers.Dense(2, activation="softmax")]))
    with pytest.raises(ParameterError, match="linear_conv.*negative"):
        craft(model, _images(2, 16, 3), 0, "linear_conv", concepts=2, designs=4)


def test_ragged_batches_reuse_one_trace_and_give_the_unbatched_numbers(monkeypatch):
    from viz_core.methods import craft as craft_module

    model = wrap(tiny_cnn(size=16, channels=1, classes=3, seed=5))
    images = _images(9, 16, 1, seed=3)
    # 9 images x 9 crops = 81 crops: batches of 64 and 17; 16 x (3 + 2) = 80 masks: 64 and 16
    assert len(crop_boxes(16, 16, crop_side((16, 16)))) == 9
    first = craft(model, images, 2, "conv_b", concepts=3, designs=16)
    steps = craft_module.craft_steps(model, "conv_b")
    assert (steps.front.experimental_get_tracing_count(),
            steps.back.experimental_get_tracing_count()) == (1, 1)
    craft(model, images[:5], 1, "conv_b", concepts=4, designs=8)  # 45 crops, 48 masks
    assert (steps.front.experimental_get_tracing_count(),
            steps.back.experimental_get_tracing_count()) == (1, 1)
    # one batch holding everything: the ragged last batch lost or mixed no row
    monkeypatch.setattr(craft_module, "BATCH", 1024)
    whole = craft(model, images, 2, "conv_b", concepts=3, designs=16)
    np.testing.assert_allclose(whole.coefficients, first.coefficients, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(whole.total_indices, first.total_indices, rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(whole.top_crops, first.top_crops)


def test_stop_is_honoured():
    model = wrap(tiny_cnn(size=16))
    with pytest.raises(Cancelled):
        craft(model, _images(2, 16, 3), 0, "conv_b", concepts=2, should_stop=lambda: True)


# --------------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------------
def test_concept_pictures_by_the_pixel():
    from viz_core.render.concepts import (MAX_COVER, all_concepts, concept_colour,
                                          concept_overlay, crop_tile, crops_strip)

    image = np.full((4, 4, 1), 100, np.uint8)  # grey, one channel
    values = np.zeros((4, 4), np.float32)
    values[0, 0] = 2.0
    out = concept_overlay(image, values, 1)
    assert out.shape == (4, 4, 3)
    assert out[3, 3].tolist() == [100, 100, 100]  # no concept: the picture as it is
    expected = np.round(100 * (1 - MAX_COVER) + np.array(concept_colour(1)) * MAX_COVER)
    assert out[0, 0].tolist() == expected.astype(int).tolist()
    assert concept_overlay(image, np.zeros((4, 4)), 0)[0, 0].tolist() == [100] * 3
    crops = np.stack([np.full((2, 2, 3), v, np.uint8) for v in (10, 20)])
    strip = crops_strip(crops, height=4, gap=1)
    assert strip.shape == (4, 9, 3)
    assert strip[0, 0, 0] == 10 and strip[0, 4, 0] == 255 and strip[3, 8, 0] == 20
    assert crop_tile(np.zeros((18, 18, 1), np.uint8)).shape == (72, 72, 3)
    grid = all_concepts(np.zeros((4, 4, 3), np.uint8), np.ones((3, 2, 2)), columns=2, gap=1)
    assert grid.shape == (9, 9, 3) and grid[4, 0].tolist() == [255] * 3


def test_a_model_keras_cannot_cut_is_refused_in_words():
    from tests.conftest import clashing_names_cnn
    from viz_core.errors import ModelError

    model = wrap(clashing_names_cnn())
    layer = model.info.last_conv_layer
    with pytest.raises(ModelError, match="cannot cut"):
        craft(model, _images(2, 16, 3), 0, layer, concepts=2, designs=4)
