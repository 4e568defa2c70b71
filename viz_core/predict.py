"""Predictions: class probabilities and the top classes for images."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .catalog import LoadedModel
from .intake import ModelImage
from .limits import TOP
from .targets import class_probabilities


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
    """Run the model once on a batch of images and rank the classes.

    Returns one :class:`Prediction` per image, in order; ``top`` is 1 to 100,000 (at most
    the model's classes are listed).

    Raises
    ------
    ParameterError
        ``top`` is not a whole number from 1 to 100,000.
    """
    top = TOP.check(top)
    batch = model.batch(list(images))
    output = np.asarray(model.model(batch, training=False))
    probs = class_probabilities(output, model.info.output_kind)
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
