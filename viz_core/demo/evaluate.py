"""Held-out checks for the demo model: accuracy and whether Grad-CAM points at the shape.

This is a deliberately small Grad-CAM, only for checking the bundled demo model in training and
tests; the project's full Grad-CAM family (layer choice, targets, nested models) lives in
``viz_core.methods`` (:func:`viz_core.methods.heatmap.class_heatmap`).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from viz_core.demo.shapes import class_pairs, draw_scene, make_dataset


@dataclass(frozen=True)
class HeldOutReport:
    """How the demo model does on freshly drawn scenes.

    Attributes
    ----------
    accuracy : float
        Fraction in [0, 1] of images whose top class is the true class.
    gradcam_pointing : float
        Fraction in [0, 1] of images whose true-class Grad-CAM maximum lies inside the shape's box.
    n_images : int
        Number of scenes scored.
    first_seed : int
        Scene seeds ``first_seed .. first_seed + n_images - 1`` were used.
    """

    accuracy: float
    gradcam_pointing: float
    n_images: int
    first_seed: int


def last_conv_layer(model: keras.Model) -> keras.layers.Layer:
    """The last ``Conv2D`` layer of a flat functional model; ValueError if there is none."""
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if not convs:
        raise ValueError(f"Model {model.name!r} has no Conv2D layer to explain.")
    return convs[-1]


def class_heatmaps(
    model: keras.Model, images: np.ndarray, class_indices: np.ndarray, batch_size: int = 64
) -> np.ndarray:
    """Grad-CAM of the true class at the last conv layer, upsampled to the input size.

    The score is the pre-softmax logit of the class, recomputed from the final ``Dense`` layer's
    weights; channel weights are the spatial mean of its gradient.

    Parameters
    ----------
    model : keras.Model
        Functional model ending in ``Dense(k, activation="softmax")``.
    images : np.ndarray
        (N, H, W, 3) float32 in [0, 1], as the model expects.
    class_indices : np.ndarray
        (N,) int, the class to explain for each image.
    batch_size : int
        Images per gradient step.

    Returns
    -------
    np.ndarray
        (N, H, W) float32 in [0, 1]; an all-zero map where the ReLU removes everything.
    """
    head = model.layers[-1]
    if not isinstance(head, keras.layers.Dense):
        raise ValueError(
            f"Expected the model to end in a Dense layer, found {type(head).__name__}."
        )
    side_model = keras.Model(model.inputs, [last_conv_layer(model).output, head.input])
    height, width = images.shape[1:3]
    maps = []
    for start in range(0, len(images), batch_size):
        batch = tf.convert_to_tensor(images[start : start + batch_size], dtype=tf.float32)
        targets = tf.convert_to_tensor(class_indices[start : start + batch_size], dtype=tf.int32)
        maps.append(
            _gradcam_batch(
                side_model, head.kernel, head.bias, batch, targets, height, width
            ).numpy()
        )
    return np.concatenate(maps, axis=0) if maps else np.zeros((0, height, width), np.float32)


def _gradcam_batch(side_model, kernel, bias, batch, targets, height, width):
    with tf.GradientTape() as tape:
        feature_maps, pooled = side_model(batch, training=False)
        logits = tf.matmul(pooled, kernel) + bias
        score = tf.reduce_sum(tf.gather(logits, targets, axis=1, batch_dims=1))
    grads = tape.gradient(score, feature_maps)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * feature_maps, axis=-1, keepdims=True))
    cam = tf.image.resize(cam, (height, width), method="bilinear")[..., 0]
    peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
    return cam / (peak + 1e-8)


def heatmap_peaks(heatmaps: np.ndarray) -> np.ndarray:
    """(N, 2) int ``(x, y)`` pixel of each (N, H, W) heatmap's maximum (first one on ties)."""
    flat = heatmaps.reshape(len(heatmaps), -1).argmax(axis=1)
    rows, cols = np.unravel_index(flat, heatmaps.shape[1:])
    return np.stack([cols, rows], axis=1)


def pointing_hits(heatmaps: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N,) bool: does each heatmap's maximum fall inside its (N, 4) ``(x0, y0, x1, y1)`` box."""
    peaks = heatmap_peaks(heatmaps)
    x, y = peaks[:, 0], peaks[:, 1]
    return (boxes[:, 0] <= x) & (x < boxes[:, 2]) & (boxes[:, 1] <= y) & (y < boxes[:, 3])


def evaluate_held_out(
    model: keras.Model, n_images: int, first_seed: int, batch_size: int = 64
) -> HeldOutReport:
    """Accuracy and Grad-CAM pointing rate on ``n_images`` scenes drawn from ``first_seed`` on.

    The images are scaled to [0, 1] here, the "unit" preprocessing the demo model expects.
    """
    images, labels, boxes = make_dataset(n_images, seed=first_seed)
    unit = images.astype(np.float32) / 255.0
    probabilities = model.predict(unit, batch_size=batch_size, verbose=0)
    accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
    hits = pointing_hits(class_heatmaps(model, unit, labels, batch_size), boxes)
    return HeldOutReport(accuracy, float(np.mean(hits)), n_images, first_seed)


def two_shape_pointing(
    model: keras.Model, n_scenes: int, first_seed: int, batch_size: int = 64
) -> float:
    """Fraction in [0, 1] of class maps that peak inside their own shape in two-shape scenes.

    Scene ``first_seed + i`` holds the i-th pair of ``class_pairs()`` (in turn); each scene gives
    two maps, one per shape's class, so ``2 * n_scenes`` maps are scored.
    """
    pairs = class_pairs()
    scenes = [draw_scene(first_seed + i, pairs[i % len(pairs)]) for i in range(n_scenes)]
    shapes = [shape for scene in scenes for shape in scene.shapes]
    unit = (
        np.stack([scene.image for scene in scenes for _ in scene.shapes]).astype(np.float32) / 255.0
    )
    targets = np.array([shape.class_index for shape in shapes])
    boxes = np.array([shape.box for shape in shapes])
    return float(np.mean(pointing_hits(class_heatmaps(model, unit, targets, batch_size), boxes)))
