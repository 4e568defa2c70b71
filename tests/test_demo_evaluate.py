"""The demo's small Grad-CAM check: peaks, box hits, and the map on a hand-checkable model."""

import keras
import numpy as np
import pytest

from viz_core.demo.evaluate import class_heatmaps, heatmap_peaks, last_conv_layer, pointing_hits


def test_peaks_are_x_then_y_of_the_maximum():
    maps = np.zeros((2, 5, 7), np.float32)
    maps[0, 1, 6] = 1.0  # row 1, column 6
    maps[1, 4, 0] = 0.5
    np.testing.assert_array_equal(heatmap_peaks(maps), [[6, 1], [0, 4]])


def test_box_hits_treat_x1_y1_as_exclusive():
    maps = np.zeros((3, 10, 10), np.float32)
    maps[:, 4, 4] = 1.0  # peak at x=4, y=4
    boxes = np.array([[4, 4, 5, 5], [0, 0, 4, 10], [0, 0, 10, 4]])
    np.testing.assert_array_equal(pointing_hits(maps, boxes), [True, False, False])


def _gap_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(pooled))


def test_gradcam_of_a_gap_model_is_the_class_activation_map():
    # With global average pooling straight after the conv, the gradient of the logit is the
    # class's Dense weights / (H * W) everywhere, so Grad-CAM = ReLU(sum_k w_kc A_k), rescaled.
    model = _gap_model()
    images = np.random.default_rng(0).random((2, 16, 16, 3)).astype(np.float32)
    classes = np.array([0, 2])
    maps = class_heatmaps(model, images, classes)
    features = keras.Model(model.inputs, model.get_layer("conv").output)(images).numpy()
    kernel = model.get_layer("head").kernel.numpy()
    for i, c in enumerate(classes):
        cam = np.maximum(features[i] @ kernel[:, c], 0.0)
        expected = cam / (cam.max() + 1e-8)
        np.testing.assert_allclose(maps[i], expected, atol=1e-3)  # 16 -> 16: resize is identity
    assert maps.dtype == np.float32 and maps.min() >= 0.0 and maps.max() <= 1.0 + 1e-6


def test_last_conv_layer_and_bad_models():
    model = _gap_model()
    assert last_conv_layer(model).name == "conv"
    dense_only = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no Conv2D"):
        last_conv_layer(dense_only)
