"""Predictions: class probabilities and the top classes for images."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from viz_core.models.loaded import LoadedModel
from viz_core.inputs.intake import ModelImage
from viz_core.runtime.limits import TOP
from viz_core.models.preprocess import preprocessing_function
from viz_core.models.targets import class_probabilities

# Images per forward pass: VGG16 holds about 30 MB of activations per 224 px image.
BATCH = 16


@dataclass(frozen=True)
class ClassScore:
    """One class and its probability (in [0, 1])."""

    class_index: int
    label: str
    probability: float


@dataclass(frozen=True, eq=False)
class Prediction:
    """What the model says about one image.

    Attributes
    ----------
    probabilities : np.ndarray
        (num_classes,) float32 in [0, 1]; see :func:`viz_core.models.targets.class_probabilities`.
    top : tuple of ClassScore
        Highest first.
    """

    image: str
    probabilities: np.ndarray
    top: tuple[ClassScore, ...]


def probability_function(model: LoadedModel) -> Callable[[np.ndarray], np.ndarray]:
    """The model's class probabilities for pixels, compiled once per model: the one path from a
    model to probabilities (predictions, LIME, deletion/insertion, ROAD and the sanity check).

    The returned function maps (N, H, W, C) pixels in [0, 255] to (N, num_classes) float32
    probabilities (:func:`viz_core.models.targets.class_probabilities`). Preprocessing and the forward
    pass run as one ``tf.function`` (on CPU about twice as fast as calling the model eagerly);
    the batch axis is left open so the last, smaller batch does not retrace.
    """

    def build():
        normalise = preprocessing_function(model.preprocessing)
        spec = tf.TensorSpec((None, *model.info.input_shape), tf.float32)
        compiled = tf.function(lambda x: model.model(normalise(x), training=False),
                               input_signature=[spec])

        def run(pixels: np.ndarray) -> np.ndarray:
            output = compiled(np.asarray(pixels, dtype="float32")).numpy()
            return class_probabilities(output, model.info.output_kind)

        return run

    return model.derived(("probabilities",), build)


def predict(model: LoadedModel, images: Sequence[ModelImage], top: int = 5) -> tuple[Prediction, ...]:
    """Run the model on the images (in batches of :data:`BATCH`) and rank the classes.

    Returns one :class:`Prediction` per image, in order; ``top`` is 1 to 100,000 (at most
    the model's classes are listed).

    Raises
    ------
    ParameterError
        ``top`` is not a whole number from 1 to 100,000.
    """
    top = TOP.check(top)
    images = list(images)
    forward = probability_function(model)
    probs = np.concatenate([
        forward(np.stack([image.pixels for image in images[start:start + BATCH]]))
        for start in range(0, len(images), BATCH)]) if images else []
    results = []
    for image, p in zip(images, probs):
        order = np.argsort(-p, kind="stable")[: max(1, min(top, len(p)))]
        results.append(
            Prediction(
                image=image.name,
                probabilities=p,
                top=tuple(ClassScore(int(i), model.label(int(i)), float(p[i])) for i in order),
            )
        )
    return tuple(results)
