"""Predictions: class probabilities and the top classes for images."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .catalog import LoadedModel
from .intake import ModelImage
from .limits import TOP
from .targets import class_probabilities

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
        (num_classes,) float32 in [0, 1]; see :func:`viz_core.targets.class_probabilities`.
    top : tuple of ClassScore
        Highest first.
    """

    image: str
    probabilities: np.ndarray
    top: tuple[ClassScore, ...]


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
    probs = np.concatenate([
        class_probabilities(np.asarray(model.model(model.batch(images[start:start + BATCH]),
                                                   training=False)), model.info.output_kind)
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
