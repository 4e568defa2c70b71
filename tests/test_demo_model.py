"""The committed demo model: documented layers, accurate on fresh scenes, Grad-CAM on the shape."""

import io
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from viz_core.demo.evaluate import class_heatmaps, evaluate_held_out, last_conv_layer, pointing_hits
from viz_core.demo.shapes import CLASS_NAMES
from viz_core.inputs.samples import list_samples, sample_bytes

DEMO = Path(__file__).resolve().parent.parent / "assets" / "demo"
# Scene seeds used by no training run and not by the training command's own held-out check.
FRESH_FIRST_SEED = 2_500_000_000


@pytest.fixture(scope="module")
def model():
    return keras.models.load_model(DEMO / "shapes_cnn.keras")  # safe_mode stays on


def test_model_file_is_small():
    assert (DEMO / "shapes_cnn.keras").stat().st_size < 15e6


def test_documented_layers(model):
    assert model.input_shape == (None, 150, 150, 3)
    assert model.output_shape == (None, 4)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 64, 128, 128]
    assert all(c.kernel_size == (3, 3) and c.activation.__name__ == "relu" for c in convs)
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert [p.pool_size for p in pools] == [(2, 2)] * 4
    assert [c.name for c in convs] == ["conv2d_1", "conv2d_2", "conv2d_3", "conv2d_4"]
    assert last_conv_layer(model).name == "conv2d_4"
    head = model.layers[-1]
    assert isinstance(head, keras.layers.Dense) and head.activation.__name__ == "softmax"


def test_card_describes_the_model():
    card = json.loads((DEMO / "shapes_cnn.json").read_text())
    assert card["classes"] == list(CLASS_NAMES)
    assert card["input_shape"] == [150, 150, 3] and card["preprocessing"] == "unit"
    assert card["held_out_accuracy"] >= 0.96 and card["gradcam_pointing"] >= 0.90
    assert card["two_shape_gradcam_pointing"] >= 0.85


@pytest.mark.slow  # the demo model over 256 fresh scenes (~10 s)
def test_accurate_and_points_at_the_shape_on_fresh_scenes(model):
    # The card's rate is 0.976 on 1000 scenes; misses are peaks 1-4 px outside the tight box, on
    # the shape's rim. 256 scenes keep this batch's rate (0.969) well clear of 0.90.
    report = evaluate_held_out(model, 256, FRESH_FIRST_SEED)
    assert report.accuracy >= 0.96
    assert report.gradcam_pointing >= 0.90


def test_softmax_outputs_sum_to_one(model):
    probabilities = model.predict(np.zeros((2, 150, 150, 3), np.float32), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def _gallery_hits(model, name):
    sample = next(s for s in list_samples() if s.name == name)
    image = np.asarray(Image.open(io.BytesIO(sample_bytes(name))), np.float32) / 255.0
    targets = np.array([class_index for _, class_index, _ in sample.boxes])
    boxes = np.array([box for _, _, box in sample.boxes])
    heatmaps = class_heatmaps(model, np.repeat(image[None], len(targets), axis=0), targets)
    return pointing_hits(heatmaps, boxes)


@pytest.mark.parametrize("name", ["circle_and_star", "square_and_triangle", "all_four_shapes"])
def test_each_class_heatmap_points_at_its_own_shape_in_the_gallery(model, name):
    assert _gallery_hits(model, name).all()
