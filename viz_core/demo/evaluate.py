"""Held-out checks for the demo model: accuracy and whether Grad-CAM points at the shape.

The maps are the project's own Grad-CAM (:func:`viz_core.methods.heatmap.class_heatmaps`, the
kernels the dashboard, the ``heatmap`` command and dataset mode use), on the Keras model being
trained, wrapped without copying (:func:`viz_core.models.in_memory.from_keras`).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

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
    """Grad-CAM of the given class at the last ``Conv2D`` layer, at the input size.

    The score is the class's pre-softmax logit; channel weights are the spatial mean of its
    gradient (:func:`viz_core.methods.layer.gradcam_map`), each map's positive part resized
    and scaled to its maximum.

    Parameters
    ----------
    model : keras.Model
        Functional model ending in ``Dense(k, activation="softmax")``, taking images in [0, 1].
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
    from viz_core.methods.heatmap import class_heatmaps as explain
    from viz_core.models.in_memory import from_keras
    from viz_core.models.targets import Target

    loaded = from_keras(model, preprocess="unit")  # pixels in [0, 255] / 255: the model's input
    height, width = images.shape[1:3]
    if not len(images):
        return np.zeros((0, height, width), np.float32)
    results = explain(loaded, np.asarray(images, np.float32) * 255.0,
                      [Target(int(k)) for k in class_indices], "gradcam",
                      layer=last_conv_layer(model).name, batch_size=min(512, int(batch_size)))
    return np.stack([r.heatmap for r in results])


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
