"""TCAV (viz_core.methods.tcav): concept vectors, scores, significance, and the shortcut demo.

The shortcut demo's star class leans on a corner tag: a concept made of tagged images raises
"star" for every star image and is significant, and scores low for "circle". The other side, for
the learner's note: a concept whose effect on the score is tiny but always of one sign scores
1.0 and is significant too (TCAV counts directions, not sizes). Gradients are checked against
the ones read off the head's weights by hand (grayscale, single-sigmoid for both classes, a
nested transfer-learning model).
"""
from __future__ import annotations

import keras
import numpy as np
import pytest
from scipy import stats

from tests.conftest import nested_cnn, tiny_cnn, wrap
from viz_core.errors import ParameterError
from viz_core.methods.tcav import (Cav, class_gradients, concept_vector, directional_derivatives,
                                   random_sets, tcav, tcav_score, two_sided_p)

SCENE_SEED = 3_300_000_000  # beyond the shortcut demo's training and held-out seeds


# -- concept vectors and scores on arrays --------------------------------------------------------
def test_the_cav_points_along_the_axis_that_separates_the_concept():
    rng = np.random.default_rng(0)
    axis = np.zeros(16)
    axis[5] = 1.0
    concept = rng.normal(size=(60, 16)) + 3.0 * axis
    other = rng.normal(size=(60, 16))
    cav = concept_vector(concept, other, seed=0)
    assert cav.vector.shape == (16,)
    assert np.linalg.norm(cav.vector) == pytest.approx(1.0, abs=1e-6)
    assert float(cav.vector @ axis) > 0.9  # a unit vector: this is the cosine
    assert cav.accuracy >= 0.9  # on the held-out third
    # swapping the sides turns the vector round
    assert float(concept_vector(other, concept, seed=0).vector @ axis) < -0.9


def test_the_cav_matches_a_logistic_regression_on_all_the_values():
    """The fit in the span of the images gives the same normal as scikit-learn on the full,
    wide activations."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    concept, other = rng.normal(size=(4, 300)) + 0.5, rng.normal(size=(4, 300))
    cav = concept_vector(concept, other)  # too few images to hold any out: fitted on all
    x = np.concatenate([concept, other])
    x = x / np.abs(x).max()
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(
        x, [1] * 4 + [0] * 4).coef_[0]
    assert float(cav.vector @ reference / np.linalg.norm(reference)) > 0.999
    assert cav.accuracy == 1.0


def test_the_score_counts_the_images_whose_score_rises():
    cav = Cav(np.array([0.6, 0.8], np.float32), 1.0)
    gradients = np.array([[1.0, 0.0], [0.0, -1.0], [0.0, 0.0], [-1.0, 1.0]])
    d = directional_derivatives(gradients, cav)
    np.testing.assert_allclose(d, [0.6, -0.8, 0.0, 0.2], atol=1e-6)
    assert tcav_score(d) == 0.5  # 0.6 and 0.2; a zero derivative is not a rise


def test_the_p_value_is_the_two_sided_t_test():
    a, b = np.array([0.9, 1.0, 0.8, 0.95]), np.array([0.4, 0.6, 0.5, 0.7, 0.3])
    pooled = ((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2)
    t = (a.mean() - b.mean()) / np.sqrt(pooled * (1 / len(a) + 1 / len(b)))
    assert two_sided_p(a, b) == pytest.approx(2 * stats.t.sf(abs(t), len(a) + len(b) - 2))
    assert two_sided_p(np.ones(5), np.ones(5)) == 1.0  # both constant and equal
    assert two_sided_p(np.ones(5), np.zeros(5)) == 0.0  # both constant, different


def test_random_sets_differ_and_are_seeded():
    sets = random_sets(40, runs=5, set_size=10, seed=3)
    assert len(sets) == 10 and all(len(np.unique(s)) == 10 for s in sets)
    assert len({tuple(s) for s in sets}) == 10
    assert all((a == b).all() for a, b in zip(sets, random_sets(40, 5, 10, seed=3)))
    with pytest.raises(ParameterError, match="too few"):
        random_sets(10, runs=5, set_size=10)


# -- gradients through the model cut, by hand ----------------------------------------------------
def test_class_gradients_of_a_grayscale_model_are_the_heads_weights():
    """conv_b -> global average pooling -> dense: the logit's gradient at every position of
    conv_b is the head's weight for that channel over the 16 x 16 positions."""
    model = wrap(tiny_cnn(channels=1, classes=3, seed=2))
    pixels = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 1)).astype(np.float32)
    kernel = model.model.get_layer("head").get_weights()[0]  # (6, 3)
    grads = class_gradients(model, pixels, 2, "conv_b")
    assert grads.shape == (3, 16, 16, 6)
    np.testing.assert_allclose(grads, np.broadcast_to(kernel[:, 2] / 256, grads.shape),
                               rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("class_index, sign", [(1, 1.0), (0, -1.0)])
def test_class_gradients_of_a_nested_sigmoid_model_serve_both_classes(class_index, sign):
    """Sequential([base CNN, Flatten, Dense(1, sigmoid)]): class 1 is scored by the logit and
    class 0 by minus the logit, so the gradients are plus and minus the head's kernel."""
    model = wrap(nested_cnn(size=16, seed=1))
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
    kernel = model.model.get_layer("head").get_weights()[0][:, 0].reshape(8, 8, 6)
    grads = class_gradients(model, pixels, class_index, "base/conv_b")
    np.testing.assert_allclose(grads, np.broadcast_to(sign * kernel, grads.shape), rtol=1e-5,
                               atol=1e-7)


def test_a_single_sigmoid_models_two_classes_score_one_minus_the_other():
    model = wrap(tiny_cnn(size=16, classes=1, activation="sigmoid", seed=4))
    rng = np.random.default_rng(2)
    images = rng.uniform(0, 255, (10, 16, 16, 3)).astype(np.float32)
    concept = images[:6].copy()
    concept[:, :8] = 255.0  # a bright top half
    pool = rng.uniform(0, 255, (30, 16, 16, 3)).astype(np.float32)
    one = tcav(model, images, concept, pool, 1, "conv_b", runs=4, seed=0)
    zero = tcav(model, images, concept, pool, 0, "conv_b", runs=4, seed=0)
    assert (one.class_name, zero.class_name) == ("class 1", "class 0")
    assert np.all(one.derivatives != 0)
    np.testing.assert_allclose(zero.derivatives, -one.derivatives, rtol=1e-5)
    np.testing.assert_allclose(zero.concept_scores, 1.0 - one.concept_scores)
    np.testing.assert_allclose(zero.random_scores, 1.0 - one.random_scores)
    with pytest.raises(ParameterError, match="classes 0 and 1"):
        tcav(model, images, concept, pool, 2, "conv_b", runs=2)


# -- the shortcut demo ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shortcut():
    from viz_core.demo.shapes import CLASS_NAMES
    from viz_core.demo.shortcut import shortcut_scene
    from viz_core.models.catalog import load_builtin_model

    def scenes(count, labels, tagged, offset):
        return np.stack([shortcut_scene(SCENE_SEED + offset + i, labels[i % len(labels)], tagged)
                         for i in range(count)]).astype(np.float32)

    return {
        "model": load_builtin_model("shortcut_demo"),
        "star": np.concatenate([scenes(10, ["star"], True, 0), scenes(10, ["star"], False, 100)]),
        "circle": scenes(20, ["circle"], False, 200),
        # the tag on shapes that are not stars: the concept is the tag, not the star
        "tag": scenes(20, ["circle", "square", "triangle"], True, 300),
        "random": scenes(60, list(CLASS_NAMES), False, 400),
    }


def test_the_tag_concept_scores_star_high_and_significant_and_circle_low(shortcut):
    model = shortcut["model"]
    star = tcav(model, shortcut["star"], shortcut["tag"], shortcut["random"],
                model.class_index("star"), runs=20, concept="tag", seed=0)
    assert star.layer == model.info.last_conv_layer and star.score_kind == "logit"
    assert star.score == 1.0  # every star's score rises along the tag, in every run
    assert star.significant and star.p_value < 0.01
    assert star.random_score < 0.6  # random directions: about half, as chance has it
    assert np.all(star.cav_accuracies >= 0.9)  # the tag is easy to tell from no tag
    circle = tcav(model, shortcut["circle"], shortcut["tag"], shortcut["random"],
                  model.class_index("circle"), runs=20, concept="tag", seed=0)
    assert circle.score <= 0.2
    assert circle.to_dict()["class"] == "circle" and len(circle.to_dict()["random_scores"]) == 20


def test_a_run_reports_its_progress(shortcut):
    model, seen = shortcut["model"], []
    tcav(model, shortcut["star"][:4], shortcut["tag"][:4], shortcut["random"][:12], 3, runs=2,
         progress=lambda f, m: seen.append(f))
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)


# -- the other side: a concept the model barely uses --------------------------------------------
def barely_used_model() -> keras.Model:
    """pixels -> 1x1 conv "cut" (identity on 3 channels) -> mean -> dense. Class 0's logit is
    ``mean(channel 0) + 1e-4 * mean(channel 1)``: channel 1 barely counts, but always upwards."""
    inputs = keras.Input((8, 8, 3))
    cut = keras.layers.Conv2D(3, 1, use_bias=False, name="cut")
    x = cut(inputs)
    head = keras.layers.Dense(2, name="head")
    out = head(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, keras.layers.Softmax()(out))
    cut.set_weights([np.eye(3, dtype=np.float32).reshape(1, 1, 3, 3)])
    head.set_weights([np.array([[1.0, 0.0], [1e-4, 0.0], [0.0, 0.0]], np.float32),
                      np.zeros(2, np.float32)])
    return model


def test_a_concept_with_a_tiny_effect_of_one_sign_is_significant():
    model = wrap(barely_used_model(), preprocessing="unit")
    rng = np.random.default_rng(0)

    def images(count, channel_1):
        x = np.zeros((count, 8, 8, 3), np.float32)
        x[..., 0] = 128.0  # the feature the class relies on: the same in every image
        x[..., 1] = channel_1
        return x

    class_images = images(20, rng.uniform(0, 255, (20, 8, 8)))
    concept = images(20, rng.uniform(150, 255, (20, 8, 8)))  # channel 1 brighter
    pool = images(60, rng.uniform(0, 255, (60, 8, 8)))
    result = tcav(model, class_images, concept, pool, 0, "cut", runs=20, seed=0)
    assert result.score == 1.0 and result.significant and result.p_value < 0.01
    # ... while the concept moves the class's logit by a hair: 1e-4 per unit of channel 1
    logits = lambda x: (x / 255.0).mean(axis=(1, 2)) @ np.array([1.0, 1e-4, 0.0])  # noqa: E731
    assert abs(logits(concept).mean() - logits(class_images).mean()) < 1e-4
    # a unit step along the CAV raises it by at most 1e-4 / 64 * sqrt(64) (all of the step on
    # channel 1); the same step along channel 0 would raise it by 1 / 8, ten thousand times more
    assert np.all(result.derivatives > 0)
    assert float(result.derivatives.max()) <= 1e-4 / 8 * (1 + 1e-4)


def test_the_example_sets_carry_the_tag_or_not():
    """The dashboard's example concept is the tag on shapes that are not stars; its example
    random images are every shape without it."""
    from viz_core.dataset.tcav_run import example_images
    from viz_core.demo.shapes import CLASS_NAMES
    from viz_core.demo.shortcut import add_tag

    tag, plain = example_images("tag", CLASS_NAMES), example_images("plain", CLASS_NAMES)
    assert (len(tag), len(plain)) == (24, 120)
    assert {e.path.split("_")[0] for e in tag.entries} == {"circle", "square", "triangle"}
    assert {e.path.split("_")[0] for e in plain.entries} == set(CLASS_NAMES)
    for entry in tag.entries[:6]:
        pixels = tag.load(entry).pixels
        assert pixels.shape == (64, 64, 3) and (pixels == add_tag(pixels)).all()
    assert not any((p == add_tag(p)).all()
                   for p in (plain.load(e).pixels for e in plain.entries[:12]))
    with pytest.raises(ParameterError, match="Unknown example"):
        example_images("stripes", CLASS_NAMES)


def test_a_grayscale_model_over_a_folder_of_colour_images(tmp_path):
    """The class's images from class folders (only the class's are read), concept images from a
    flat folder, random ones drawn from the dataset; a grayscale model sees them as one channel.
    Its head is global average pooling and a dense layer, so at conv_b every image has the same
    gradient: in each run all images share one derivative, and each run scores 0 or 1."""
    from PIL import Image

    from viz_core.dataset.readers import open_dataset
    from viz_core.dataset.tcav_run import tcav_run

    model = wrap(tiny_cnn(channels=1, classes=2, seed=5), labels=["dark", "light"])
    rng = np.random.default_rng(3)
    for label, count in (("dark", 6), ("light", 9)):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / label / f"{i}.png")
    (tmp_path / "concept").mkdir()
    for i in range(5):
        pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        pixels[:, 16:] = 255  # a bright right half
        Image.fromarray(pixels).save(tmp_path / "concept" / f"{i}.png")
    data = open_dataset(tmp_path / "data", model.labels)
    run = tcav_run(model, data, "light", open_dataset(tmp_path / "concept", ()), None, "conv_b",
                   runs=3, random_images=15)
    r = run.result
    assert (r.class_name, r.images, r.concept_images) == ("light", 9, 5)
    assert all(path.startswith("light/") for path in run.class_paths)
    assert (run.random_source, run.random_images, r.random_set_size) == ("data", 15, 5)
    assert r.derivatives.shape == (3, 9)
    np.testing.assert_allclose(r.derivatives, r.derivatives[:, :1] * np.ones((1, 9)), rtol=1e-4)
    assert set(r.concept_scores) <= {0.0, 1.0} and set(r.random_scores) <= {0.0, 1.0}
