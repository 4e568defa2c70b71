"""The score an explanation differentiates, written so one compiled step serves every class.

Every rule of :func:`viz_core.models.targets.class_score` (the pre-softmax logit for softmax
models, ``+logit`` / ``-logit`` for class 1 / class 0 of a single sigmoid unit, the unit's logit
for multi-label models, or the probability with ``Target(score="probability")``) is affine in
the logits or in the probabilities: :func:`score_coefficients` writes it as coefficient vectors,
:func:`score_tensor` applies them inside TensorFlow, :func:`target_score` in numpy, and
:func:`chosen_scores` picks each image's class (its most probable one when none is given)
inside the graph, for batches.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from viz_core.errors import ModelError, ParameterError
from viz_core.models.targets import Target


def score_coefficients(target: Target, output_kind: str, units: int):
    """The target's score written as ``logits @ v_logit + probs @ v_prob + offset``.

    Returns
    -------
    v_logit, v_prob : np.ndarray
        (units,) float32.
    offset : np.ndarray
        () float32.

    Raises
    ------
    ParameterError
        The class index is out of range for the model.
    """
    k = int(target.class_index)
    v_logit = np.zeros(units, dtype="float32")
    v_prob = np.zeros(units, dtype="float32")
    offset = 0.0
    if output_kind == "binary":
        if k not in (0, 1):
            raise ParameterError(f"A single-sigmoid model has classes 0 and 1, not {k}.")
        sign = 1.0 if k == 1 else -1.0
        if target.score == "logit":
            v_logit[0] = sign
        else:
            v_prob[0] = sign
            offset = 0.0 if k == 1 else 1.0
    else:
        if not 0 <= k < units:
            raise ParameterError(
                f"Class index {k} is out of range; this model has classes 0 to {units - 1}."
            )
        (v_logit if target.score == "logit" else v_prob)[k] = 1.0
    return v_logit, v_prob, np.float32(offset)


def batch_coefficients(targets, output_kind: str, units: int):
    """:func:`score_coefficients` of several targets, stacked: ``(N, units), (N, units), (N,)``."""
    rows = [score_coefficients(t, output_kind, units) for t in targets]
    return (np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]),
            np.asarray([r[2] for r in rows], dtype="float32"))


def score_tensor(logits, output, v_logit, v_prob, offset, output_kind: str):
    """(N,) tensor: the target score from logits and output (see :func:`score_coefficients`);
    the coefficients are one row for every image or one row per image."""
    probs = tf.nn.softmax(output, axis=-1) if output_kind == "linear" else output
    return (tf.reduce_sum(logits * v_logit, axis=-1) + tf.reduce_sum(probs * v_prob, axis=-1)
            + offset)


def target_score(logits, output, target: Target, output_kind: str) -> float:
    """The target's score of one image from its (units,) logits (or None) and output."""
    units = int(output.shape[-1])
    v_logit, v_prob, offset = score_coefficients(target, output_kind, units)
    lg = np.zeros_like(output) if logits is None else logits
    if output_kind == "linear":
        e = np.exp(output.astype("float64") - output.max())
        probs = e / e.sum()
    else:
        probs = output
    return float(lg @ v_logit + probs @ v_prob + offset)


def chosen_scores(logits, output, classes, use_logit, output_kind: str):
    """Each image's class and its score, inside the graph (the rules of
    :func:`score_coefficients`).

    Parameters
    ----------
    logits, output : tensor (N, units)
        ``logits`` may be the output again when the model has none (then ``use_logit`` is
        False everywhere).
    classes : int32 tensor (N,)
        The class to explain; -1 means the image's most probable class.
    use_logit : bool tensor (N,)
        True: the logit score; False: the probability score.

    Returns
    -------
    chosen : int32 tensor (N,)
    score : float32 tensor (N,)
    """
    if output_kind == "binary":
        p = output[:, 0]
        # [1 - p, p]: the first on ties, as numpy's argmax of class_probabilities
        chosen = tf.where(classes >= 0, classes, tf.cast(p > 0.5, tf.int32))
        sign = tf.cast(chosen, output.dtype) * 2.0 - 1.0
        by_logit = sign * logits[:, 0]
        by_prob = sign * p + (1.0 - tf.cast(chosen, output.dtype))
    else:
        probs = tf.nn.softmax(output, axis=-1) if output_kind == "linear" else output
        top = tf.cast(tf.argmax(probs, axis=-1), tf.int32)
        chosen = tf.where(classes >= 0, classes, top)
        by_logit = tf.gather(logits, chosen, axis=1, batch_dims=1)
        by_prob = tf.gather(probs, chosen, axis=1, batch_dims=1)
    return chosen, tf.where(use_logit, by_logit, by_prob)


def require_logits(has_logits: bool, model, target: Target) -> None:
    """Raise :class:`ModelError` when ``target`` scores a logit the model cannot give."""
    if target.score == "logit" and not has_logits:
        raise ModelError(
            f"The output layer of {model.title!r} has an activation whose input cannot be read, "
            "so class logits are not available. Use the probability-based score instead."
        )
