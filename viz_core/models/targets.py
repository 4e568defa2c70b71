"""Targets: which class to explain and how to score it, for every kind of model output.

As in the Grad-CAM paper, the default score is the class *logit* (before softmax/sigmoid):

* ``softmax``: the class's logit.
* ``binary`` (one sigmoid unit): class 1 is ``+logit``, class 0 is ``-logit``.
* ``multilabel`` (several sigmoid units): the unit's logit.
* ``linear``: the output itself.

``score="probability"`` uses the probability instead (what the original R tutorial does).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from keras import ops

from viz_core.errors import ParameterError

SCORE_KINDS = ("logit", "probability")


@dataclass(frozen=True)
class Target:
    """A class to explain.

    Attributes
    ----------
    class_index : int
        0-based; for a single sigmoid unit 0 or 1.
    score : {"logit", "probability"}
    """

    class_index: int
    score: str = "logit"

    def __post_init__(self):
        if self.score not in SCORE_KINDS:
            raise ParameterError(f"Unknown score {self.score!r}; choose 'logit' or 'probability'.")


def class_score(logits, output, target: Target, output_kind: str):
    """The scalar score per image that explanations differentiate.

    Parameters
    ----------
    logits : tensor (N, units) or None
        Scores before the final activation (needed for ``score="logit"``).
    output : tensor (N, units) or None
        The model's output (needed for ``score="probability"``).
    target : Target
    output_kind : str
        From :class:`viz_core.models.inspect.ModelInfo`.

    Returns
    -------
    tensor (N,)
    """
    k = target.class_index
    source = logits if target.score == "logit" else output
    if source is None:
        raise ParameterError(f"The {target.score} of the model was not computed.")
    if output_kind == "binary":
        if k not in (0, 1):
            raise ParameterError(f"A single-sigmoid model has classes 0 and 1, not {k}.")
        unit = source[:, 0]
        if target.score == "logit":
            return unit if k == 1 else -unit
        return unit if k == 1 else 1.0 - unit
    if target.score == "probability" and output_kind == "linear":
        source = ops.softmax(source, axis=-1)
    return source[:, k]


def class_probabilities(output: np.ndarray, output_kind: str) -> np.ndarray:
    """Per-class probabilities from the model output.

    Parameters
    ----------
    output : (N, units) float
    output_kind : str

    Returns
    -------
    np.ndarray
        (N, num_classes) float32: ``[1 - p, p]`` for a single sigmoid unit; independent
        probabilities for multi-label; softmax of the scores for a linear output.
    """
    out = np.asarray(output, dtype="float32")
    if output_kind == "binary":
        return np.concatenate([1.0 - out[:, :1], out[:, :1]], axis=1)
    if output_kind == "linear":
        shifted = out - out.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        return e / e.sum(axis=1, keepdims=True)
    return out
