"""The public API (``import viz_core as vc``), through its public names only.

Maps are checked against LayerCAM computed here by hand: a GradientTape on the tiny model's
last conv layer, ``sum_k ReLU(dS/dA_k) A_k``, rectified, upsampled bilinearly (pixel centres,
edges repeated) and divided by its maximum.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import io
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from skimage.metrics import structural_similarity

import viz_core as vc

SIZE = 32
LABELS = ("cat", "dog", "bird")


def tiny(channels=3, units=3, activation="softmax", seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((SIZE, SIZE, channels)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a"),
        keras.layers.MaxPooling2D(2, name="pool_a"),
        keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_b"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(units, activation=activation, name="head"),
    ])


def scenes(count=3, size=SIZE, seed=1):
    """(count, size, size, 3) uint8: noise with a bright square in a different place each."""
    rng = np.random.default_rng(seed)
    out = rng.integers(0, 90, (count, size, size, 3), dtype=np.uint8)
    for i in range(count):
        y, x = 3 + 7 * i, 20 - 6 * i
        out[i, y:y + 8, x:x + 8] = (250, 200 - 60 * i, 40 + 80 * i)
    return out


def bilinear(values, height, width):
    """Bilinear resize with pixel centres aligned and edges repeated."""
    h, w = values.shape

    def axis(n_out, n_in):
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        low = np.floor(pos).astype(int)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, pos - low

    y0, y1, fy = axis(height, h)
    x0, x1, fx = axis(width, w)
    top = values[y0][:, x0] * (1 - fx) + values[y0][:, x1] * fx
    bottom = values[y1][:, x0] * (1 - fx) + values[y1][:, x1] * fx
    return top * (1 - fy[:, None]) + bottom * fy[:, None]


def layercam_by_hand(model, pixels, class_index, *, sigmoid=False, probability=False):
    """LayerCAM of ``class_index`` at conv_b; ``pixels`` (H, W, C) in [0, 255]; the class's
    logit (its probability if ``probability``) is differentiated."""
    head = model.get_layer("head")
    side = keras.Model(model.inputs, [model.get_layer("conv_b").output, head.input])
    x = tf.constant(pixels[None].astype("float32") / 255.0)
    with tf.GradientTape() as tape:
        acts, pooled = side(x)
        tape.watch(acts)
        logits = tf.matmul(tf.reduce_mean(acts, axis=(1, 2)), head.kernel) + head.bias
        if probability:
            score = tf.nn.softmax(logits)[0, class_index]
        elif sigmoid:
            score = logits[0, 0] if class_index == 1 else -logits[0, 0]
        else:
            score = logits[0, class_index]
    grads = tape.gradient(score, acts)[0].numpy().astype("float64")
    raw = (np.maximum(grads, 0) * acts[0].numpy()).sum(axis=-1)
    heat = bilinear(np.maximum(raw, 0), SIZE, SIZE)
    return heat / heat.max() if heat.max() > 0 else heat


@pytest.fixture(scope="module")
def keras_model():
    return tiny()


@pytest.fixture(scope="module")
def model(keras_model):
    return vc.load_model(keras_model, labels=list(LABELS))


def test_import_viz_core_loads_neither_tensorflow_nor_numpy():
    """The package's ``__init__`` run afresh with TensorFlow, Keras and NumPy unimportable."""
    blocked = []

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "keras", "numpy"):
                blocked.append(name)
                raise ImportError(f"import of {name} blocked")
            return None

    init = Path(vc.__file__)
    spec = importlib.util.spec_from_file_location("viz_core_probe", init)
    probe = importlib.util.module_from_spec(spec)
    saved = {k: sys.modules.pop(k) for k in list(sys.modules)
             if k.split(".")[0] in ("tensorflow", "keras", "numpy")}
    finder = Block()
    sys.meta_path.insert(0, finder)
    try:
        spec.loader.exec_module(probe)
    finally:
        sys.meta_path.remove(finder)
        sys.modules.update(saved)
    assert blocked == []
    assert set(probe.__all__) >= {"load_model", "explain", "feature_maps", "filter_patterns",
                                  "lime", "evaluate"}
    assert set(vc.__all__) <= set(dir(vc))


def test_explain_a_list_equals_layercam_by_hand_per_image(keras_model, model):
    images = scenes(3)
    results = vc.explain(model, list(images))
    assert isinstance(results, list) and len(results) == 3
    probabilities = keras_model(images.astype("float32") / 255.0).numpy()
    for result, pixels, probs in zip(results, images, probabilities):
        top = int(np.argmax(probs))
        assert (result.class_index, result.label) == (top, LABELS[top])
        assert (result.method, result.layer) == ("layercam", "conv_b")
        assert result.map.shape == (SIZE, SIZE) and result.map.dtype == np.float32
        assert result.probability == pytest.approx(float(probs[top]), abs=1e-5)
        np.testing.assert_allclose(result.map, layercam_by_hand(keras_model, pixels, top),
                                   atol=1e-4)


def test_a_stack_is_many_images_and_one_image_is_one_result(model):
    images = scenes(3)
    stacked = vc.explain(model, images, target=2)
    single = vc.explain(model, images[1], target=2)
    assert len(stacked) == 3 and not isinstance(single, list)
    np.testing.assert_array_equal(stacked[1].map, single.map)
    # floats in [0, 1], a PIL image and a PNG file are the same picture
    as_float = vc.explain(model, images[1] / 255.0, target=2)
    as_pil = vc.explain(model, Image.fromarray(images[1]), target=2)
    np.testing.assert_allclose(as_float.map, single.map, atol=1e-6)
    np.testing.assert_allclose(as_pil.map, single.map, atol=1e-6)


def test_target_by_name_and_by_index(keras_model, model):
    pixels = scenes(1)[0]
    by_name = vc.explain(model, pixels, target="dog")
    by_index = vc.explain(model, pixels, target=1)
    assert (by_name.class_index, by_name.label) == (1, "dog")
    assert "label='dog'" in repr(by_name) and "array" not in repr(by_name)  # no pixel dump
    np.testing.assert_array_equal(by_name.map, by_index.map)
    np.testing.assert_allclose(by_name.map, layercam_by_hand(keras_model, pixels, 1), atol=1e-4)
    per_image = vc.explain(model, list(scenes(3)), target=["bird", 0, "dog"])
    assert [r.class_index for r in per_image] == [2, 0, 1]


def test_the_probability_can_be_explained_instead_of_the_logit(keras_model, model):
    images = scenes(2)
    results = vc.explain(model, images, score="probability")
    for result, pixels in zip(results, images):
        top = int(np.argmax(keras_model(pixels[None] / 255.0)[0]))
        assert (result.class_index, result.score_kind) == (top, "probability")
        np.testing.assert_allclose(result.map,
                                   layercam_by_hand(keras_model, pixels, top, probability=True),
                                   atol=1e-4)


def test_a_grayscale_model_sees_the_luminance():
    grey_model = tiny(channels=1, seed=3)
    model = vc.load_model(grey_model)
    pixels = scenes(1)[0]
    result = vc.explain(model, pixels, target=0)
    luminance = np.asarray(Image.fromarray(pixels).convert("L"), dtype="float32")[..., None]
    np.testing.assert_allclose(result.map, layercam_by_hand(grey_model, luminance, 0), atol=1e-4)
    assert result.label == "class 0"


def test_a_single_sigmoid_model_explains_class_0_and_class_1():
    binary = tiny(units=1, activation="sigmoid", seed=5)
    model = vc.load_model(binary, labels=["no", "yes"])
    pixels = scenes(1, seed=4)[0]
    yes, no = vc.explain(model, [pixels, pixels], target=[1, 0])
    assert (yes.label, no.label) == ("yes", "no")
    np.testing.assert_allclose(yes.map, layercam_by_hand(binary, pixels, 1, sigmoid=True),
                               atol=1e-4)
    np.testing.assert_allclose(no.map, layercam_by_hand(binary, pixels, 0, sigmoid=True),
                               atol=1e-4)
    p = float(binary(pixels[None] / 255.0)[0, 0])
    assert (yes.probability, no.probability) == (pytest.approx(p, abs=1e-5),
                                                 pytest.approx(1 - p, abs=1e-5))


def test_a_model_file_loads_with_the_same_maps(tmp_path, keras_model, model):
    path = tmp_path / "tiny.keras"
    keras_model.save(path)
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nbird\n", encoding="utf-8")
    from_file = vc.load_model(path, labels=labels)
    assert from_file.labels == LABELS
    pixels = scenes(1)[0]
    np.testing.assert_allclose(vc.explain(from_file, pixels, target="bird").map,
                               vc.explain(model, pixels, target="bird").map, atol=1e-6)


@pytest.mark.parametrize("call, bad", [
    (lambda m, tmp: vc.load_model(tmp / "notes.txt"), "notes.txt"),
    (lambda m, tmp: vc.load_model(12), "int 12"),
    (lambda m, tmp: vc.explain(m, tmp / "notes.txt"), "notes"),
    (lambda m, tmp: vc.explain(m, 7), "int 7"),
    (lambda m, tmp: vc.explain(m, scenes(1)[0], method="nope"), "'nope'"),
    (lambda m, tmp: vc.explain(m, scenes(1)[0], target="zebra"), "'zebra'"),
    (lambda m, tmp: vc.explain(m, scenes(1)[0], target=9), "9"),
    (lambda m, tmp: vc.explain(m, scenes(1)[0], samples=5), "'samples'"),
    (lambda m, tmp: vc.explain(m, scenes(1)[0] * 2.0), "got values from 0 to 500"),
    (lambda m, tmp: vc.explain(m, list(scenes(2)), target=[0]), "1 targets for 2 images"),
    (lambda m, tmp: vc.load_model(m, preprocess="caffe"), "already loaded"),
    (lambda m, tmp: vc.load_model(m.model, preprocess="fancy"), "'fancy'"),
    (lambda m, tmp: vc.load_model(m.model, labels=["a", "b"]), "2 class names"),
    (lambda m, tmp: vc.load_model("demo", labels=["a"]), "'demo'"),
])
def test_bad_input_is_a_viz_error_naming_the_bad_value(tmp_path, model, call, bad):
    (tmp_path / "notes.txt").write_text("not an image and not a model", encoding="utf-8")
    with pytest.raises(vc.VizError) as caught:
        call(model, tmp_path)
    assert bad in str(caught.value)


def test_models_the_tools_cannot_use_are_refused_with_a_reason():
    keras.utils.set_random_seed(0)
    dense_only = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Flatten(),
                                   keras.layers.Dense(2, activation="softmax")])
    with pytest.raises(vc.VizError, match="no convolutional layers"):
        vc.load_model(dense_only)
    with pytest.raises(vc.VizError, match="not built"):
        vc.load_model(keras.Sequential([keras.layers.Conv2D(2, 3)]))
    spaced = tiny()
    spaced.get_layer("conv_a").name = "conv a"
    with pytest.raises(vc.VizError, match="'conv a'"):
        vc.load_model(spaced)
    assert spaced.get_layer("conv a") is not None  # the caller's model was left as it was


def test_results_draw_themselves_as_png_of_the_right_size(model):
    rng = np.random.default_rng(2)
    photo = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    single = vc.explain(model, photo)
    shown = Image.open(io.BytesIO(single._repr_png_()))
    assert (shown.format, shown.size) == ("PNG", (56, 40))  # the map over the image as given
    many = vc.explain(model, list(scenes(3)))
    grid = Image.open(io.BytesIO(many._repr_png_()))
    # three 32 px tiles in one row, 4 px gaps around and between
    assert grid.size == (4 + 3 * (SIZE + 4), 4 + SIZE + 4)
    tile = np.asarray(grid)[4:4 + SIZE, 4 + SIZE + 4:4 + 2 * SIZE + 4]
    assert np.abs(tile.astype(int) - np.asarray(vc.show(many[1]).resize((SIZE, SIZE)))
                  ).max() < 60  # the second image's overlay sits in the second tile


def test_feature_maps_are_the_layer_outputs(keras_model, model):
    pixels = scenes(1)[0]
    maps = vc.feature_maps(model, pixels, ["conv_a", "conv_b"])
    expected = keras.Model(keras_model.inputs, keras_model.get_layer("conv_a").output)(
        pixels[None].astype("float32") / 255.0).numpy()[0]
    np.testing.assert_allclose(maps.layer("conv_a").values, expected, atol=1e-6)
    assert maps.paths == ("conv_a", "conv_b")
    assert maps._repr_html_().count("<img ") == 2


def test_filter_patterns_and_lime_draw_themselves(model):
    patterns = vc.filter_patterns(model, "conv_b", filters=[0, 3], steps=2, size=32)
    assert patterns.patterns.shape == (2, 32, 32, 3) and patterns.filters == (0, 3)
    assert Image.open(io.BytesIO(patterns._repr_png_())).size == (4 + 2 * 36, 4 + 36)
    explanation = vc.lime(model, scenes(1)[0], target="dog", samples=20, n_superpixels=8)
    assert explanation.class_indices == (1,) and explanation.labels == ("dog",)
    assert explanation.weights.shape[0] == 1
    assert explanation._repr_html_().count("<img ") == 1
    with pytest.raises(vc.VizError, match="'steps'"):
        vc.lime(model, scenes(1)[0], steps=3)


def test_evaluate_scores_maps_by_metric_name(model):
    images = list(scenes(2))
    maps = vc.explain(model, images)
    scores = vc.evaluate(model, images, maps, metrics=["sparseness"])
    for score, result in zip(scores, maps):
        a = np.sort(np.abs(result.map.astype("float64")).ravel() + 1e-7)
        n = a.size
        gini = np.sum((2 * np.arange(1, n + 1) - n - 1) * a) / (n * a.sum())
        assert score["sparseness"] == pytest.approx(gini, abs=1e-9)
        assert (score.class_index, score.method) == (result.class_index, "layercam")
    flat = vc.evaluate(model, images[0], np.ones((SIZE, SIZE), "float32"),
                       metrics=["sparseness"], target="cat")
    assert flat["sparseness"] == pytest.approx(0.0, abs=1e-9) and flat.label == "cat"
    assert "Sparseness ↑" in scores._repr_html_()
    # random-logit runs the map's method again for another class: SSIM of the two maps
    other = vc.evaluate(model, images[0], maps[0], metrics=["random_logit"])
    k = other.extras["random_logit"]["class"]
    assert k in (0, 1, 2) and k != maps[0].class_index
    again = vc.explain(model, images[0], target=k).map
    assert other["random_logit"] == pytest.approx(structural_similarity(
        maps[0].map.astype("float64"), again.astype("float64"), data_range=1.0, win_size=7),
        abs=1e-6)
    with pytest.raises(vc.VizError, match="needs the results of explain"):
        vc.evaluate(model, images[0], maps[0].map, metrics=["random_logit"])
    with pytest.raises(vc.VizError, match="'bogus'"):
        vc.evaluate(model, images, maps, metrics=["bogus"])
