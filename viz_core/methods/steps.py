"""The model split at a layer, its compiled steps, and the per-model caches of their results.

Per model (in :meth:`LoadedModel.derived`) the model is split once at the chosen layer by
:func:`viz_core.models.graph.split_at` into a *front* half (pixels -> the layer's activations,
the tensors the rest of the network still needs) and a *back* half (activations + those tensors
-> logits, output); the steps built on them are compiled with ``tf.function``. The front half
runs once per image and layer; the gradient of another class is one pass through the back half
only. Results are kept in a small bounded cache attached to the model, so switching class or
method parameters does not run the whole network again. :func:`layer_gradients` is the batched
step: a stack of images, each with its own class, in one forward and one backward pass.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from viz_core.errors import ModelError
from viz_core.inputs.intake import ModelImage
from viz_core.methods.checks import check_image, resolve_layer
from viz_core.methods.scores import (chosen_scores, require_logits, score_coefficients,
                                     score_tensor, target_score)
from viz_core.models.catalog import LoadedModel
from viz_core.models.graph import FlatGraph, flat_graph, split_at
from viz_core.models.preprocess import preprocessing_function
from viz_core.models.targets import Target, class_probabilities
from viz_core.runtime.cache import BoundedCache

BATCH_SIZE = 16  # images per forward/backward batch (Score-CAM, SmoothGrad, IG)
_STEP_CACHE_ENTRIES = 32
_STEP_CACHE_BYTES = 192 * 2**20
# Score-CAM's masked-image scores, one entry per (image, layer activations, channel): each holds
# the model's whole output row, so another class or more channels only score what is new.
_MASKED_CACHE_ENTRIES = 16384
_MASKED_CACHE_BYTES = 128 * 2**20


@dataclass(frozen=True, eq=False)
class LayerForward:
    """One forward pass of one image, split at a layer (cached per model, image and layer).

    Attributes
    ----------
    activations : np.ndarray
        (h, w, k) float32, the layer's output.
    logits : np.ndarray or None
        (units,) float32 scores before the final softmax/sigmoid; None when they cannot be read.
    output : np.ndarray
        (units,) float32, the model's output.
    probabilities : np.ndarray
        (num_classes,) float32 in [0, 1].
    context : tuple of np.ndarray
        The other tensors the rest of the network needs after the layer (skip connections),
        each with its batch axis of 1; empty for a plain chain of layers.
    layer : str
    """

    activations: np.ndarray
    context: tuple
    logits: np.ndarray | None
    output: np.ndarray
    probabilities: np.ndarray
    layer: str


def flat_model_graph(model: LoadedModel) -> FlatGraph:
    """The model's :func:`~viz_core.models.graph.flat_graph`, built once per model."""
    return model.derived(("cam_flat_graph",), lambda: flat_graph(model.model))


@dataclass(frozen=True, eq=False)
class ModelSplit:
    """Compiled steps of a model split at one layer (:func:`viz_core.models.graph.split_at`).

    ``forward(x) -> [acts, *context, logits, output]``;
    ``forward_gradient(x, v_logit, v_prob, offset) -> ([acts, *context, logits, output], score,
    grads)``: the same pass, plus the gradient of the score with respect to ``acts``;
    ``gradient(acts, context, v_logit, v_prob, offset) -> (score, grads)``: through the back
    half only; ``back(acts, context) -> (logits, output)``: the back half alone, any batch size
    (None when the model could not be cut).
    ``chosen_gradient(x, classes, use_logit) -> (acts, logits, output, chosen, score, grads)``:
    a batch of images, each with its own class (-1: its most probable) and score kind
    (:func:`viz_core.methods.scores.chosen_scores`), in one forward and one backward pass.
    ``x`` is the preprocessed model input (N, H, W, C); the coefficients come from
    :func:`score_coefficients`, with a batch axis.
    """

    layer: str
    has_logits: bool
    forward: Callable
    forward_gradient: Callable
    gradient: Callable
    headless: bool  # True: no back half could be cut, ``gradient`` re-runs the whole model
    chosen_gradient: Callable
    back: Callable | None = None


def model_split(model: LoadedModel, layer: str) -> ModelSplit:
    """The compiled steps of ``model`` split at ``layer`` (a checked path), built once per model
    and layer; a whole-model fallback when Keras cannot cut the graph there."""
    def build():
        kind = model.info.output_kind
        try:
            halves = split_at(model.model, layer, flat=flat_model_graph(model))
        except ModelError:
            # Graphs Keras cannot cut (e.g. repeated layer names across nested models): every
            # gradient then runs the whole model, which is slower but gives the same numbers.
            return _headless_split(model, layer)

        @tf.function(reduce_retracing=True)
        def forward(x):
            acts, ctx = halves.run_front(x)
            lg, out = halves.run_back(acts, ctx)
            return [acts, *ctx, lg, out]

        def back_gradient(acts, ctx, v_logit, v_prob, offset):
            with tf.GradientTape() as tape:
                tape.watch(acts)
                lg, out = halves.run_back(acts, ctx)
                score = score_tensor(lg, out, v_logit, v_prob, offset, kind)
            return lg, out, score, tape.gradient(score, acts)

        @tf.function(reduce_retracing=True)
        def forward_gradient(x, v_logit, v_prob, offset):
            acts, ctx = halves.run_front(x)
            lg, out, score, grads = back_gradient(acts, ctx, v_logit, v_prob, offset)
            return [acts, *ctx, lg, out], score, grads

        @tf.function(reduce_retracing=True)
        def gradient(acts, ctx, v_logit, v_prob, offset):
            _, _, score, grads = back_gradient(acts, ctx, v_logit, v_prob, offset)
            return score, grads

        @tf.function(reduce_retracing=True)
        def back(acts, ctx):
            return halves.run_back(acts, ctx)

        @tf.function(reduce_retracing=True)
        def chosen_gradient(x, classes, use_logit):
            acts, ctx = halves.run_front(x)
            with tf.GradientTape() as tape:
                tape.watch(acts)
                lg, out = halves.run_back(acts, ctx)
                chosen, score = chosen_scores(lg, out, classes, use_logit, kind)
                # images do not interact in inference mode: the gradient of the sum is, for
                # each image, the gradient of its own score
                total = tf.reduce_sum(score)
            return acts, lg, out, chosen, score, tape.gradient(total, acts)

        return ModelSplit(layer, halves.has_logits, forward, forward_gradient, gradient,
                          headless=False, chosen_gradient=chosen_gradient, back=back)

    return model.derived(("cam_split", layer), build)


def _headless_split(model: LoadedModel, layer: str) -> ModelSplit:
    kind = model.info.output_kind
    try:
        probe = model.side_model([layer], logits=True, output=True)
        has_logits = True
    except ModelError:
        probe = model.side_model([layer], output=True)
        has_logits = False

    def run(x):
        outs = probe(x, training=False)
        return outs if has_logits else [outs[0], outs[1], outs[1]]

    @tf.function(reduce_retracing=True)
    def forward(x):
        acts, lg, out = run(x)
        return [acts, x, lg, out]  # the model input is the "context" to recompute from

    @tf.function(reduce_retracing=True)
    def forward_gradient(x, v_logit, v_prob, offset):
        with tf.GradientTape() as tape:
            acts, lg, out = run(x)
            score = score_tensor(lg, out, v_logit, v_prob, offset, kind)
        return [acts, x, lg, out], score, tape.gradient(score, acts)

    @tf.function(reduce_retracing=True)
    def gradient(acts, context, v_logit, v_prob, offset):
        # the whole model runs again from its input, kept as the context
        with tf.GradientTape() as tape:
            tapped, lg, out = run(context[0])
            score = score_tensor(lg, out, v_logit, v_prob, offset, kind)
        return score, tape.gradient(score, tapped)

    @tf.function(reduce_retracing=True)
    def chosen_gradient(x, classes, use_logit):
        with tf.GradientTape() as tape:
            acts, lg, out = run(x)
            chosen, score = chosen_scores(lg, out, classes, use_logit, kind)
            total = tf.reduce_sum(score)
        return acts, lg, out, chosen, score, tape.gradient(total, acts)

    return ModelSplit(layer, has_logits, forward, forward_gradient, gradient, headless=True,
                      chosen_gradient=chosen_gradient)


def pixel_scorer(model: LoadedModel):
    """Compiled ``pixels (N,H,W,C) in [0,255] -> (logits, output)`` and whether logits exist."""

    def build():
        try:
            flat = flat_model_graph(model)
            has_logits = flat.logits is not None
            net = keras.Model(flat.inputs, [flat.logits if has_logits else flat.output,
                                            flat.output])
        except (ModelError, ValueError, AttributeError):
            try:
                net, has_logits = model.side_model((), logits=True, output=True), True
            except ModelError:
                base, has_logits = model.side_model((), output=True), False
                net = keras.Model(base.inputs, [base.outputs[0], base.outputs[0]])
        prep = preprocessing_function(model.preprocessing)
        h, w, c = model.info.input_shape
        spec = tf.TensorSpec((None, h, w, c), tf.float32)

        @tf.function(input_signature=[spec])
        def scores(pixels):
            lg, out = net(prep(pixels), training=False)
            return lg, out

        kind = model.info.output_kind
        units = int(model.model.outputs[0].shape[-1])
        # one coefficient row per image, so each image is differentiated for its own class
        vec = tf.TensorSpec((None, units), tf.float32)
        scalar = tf.TensorSpec((None,), tf.float32)

        @tf.function(input_signature=[spec, vec, vec, scalar])
        def pixel_gradient(pixels, v_logit, v_prob, offset):
            with tf.GradientTape() as tape:
                tape.watch(pixels)
                lg, out = net(prep(pixels), training=False)
                score = score_tensor(lg, out, v_logit, v_prob, offset, kind)
            return score, tape.gradient(score, pixels)

        return has_logits, scores, pixel_gradient

    return model.derived(("cam_scorer",), build)


def step_cache(model: LoadedModel) -> BoundedCache:
    """This model's cache of per-image forward passes and class gradients."""
    return model.derived(
        ("cam_steps",),
        lambda: BoundedCache(max_entries=_STEP_CACHE_ENTRIES, max_bytes=_STEP_CACHE_BYTES),
    )


def masked_score_cache(model: LoadedModel) -> BoundedCache:
    """This model's cache of Score-CAM masked-image outputs (logits row, output row)."""
    return model.derived(
        ("cam_masked_scores",),
        lambda: BoundedCache(max_entries=_MASKED_CACHE_ENTRIES, max_bytes=_MASKED_CACHE_BYTES),
    )


def _layer_forward_value(model: LoadedModel, split: ModelSplit, outs) -> LayerForward:
    acts, *context, lg, out = outs
    output = np.asarray(out, dtype="float32")[0]
    return LayerForward(
        activations=np.asarray(acts, dtype="float32")[0],
        context=tuple(np.asarray(c, dtype="float32") for c in context),
        logits=np.asarray(lg, dtype="float32")[0] if split.has_logits else None,
        output=output,
        probabilities=class_probabilities(output[None], model.info.output_kind)[0],
        layer=split.layer,
    )


def layer_forward(model: LoadedModel, image: ModelImage, layer: str | None = None) -> LayerForward:
    """The image's forward pass split at ``layer`` (cached per model, image and layer).

    Parameters
    ----------
    model : LoadedModel
    image : ModelImage
        Prepared for this model (``model.view(loaded_image)``).
    layer : str or None
        Layer path; None means the last convolutional layer.

    Returns
    -------
    LayerForward
    """
    check_image(model, image)
    layer = resolve_layer(model, layer)

    def compute():
        split = model_split(model, layer)
        return _layer_forward_value(model, split, split.forward(tf.constant(model.batch([image]))))

    return step_cache(model).get_or_compute(("forward", image.cache_key, layer), compute)


def layer_gradient(model: LoadedModel, image: ModelImage, target: Target,
                   layer: str | None = None) -> tuple[np.ndarray, float]:
    """Gradient of the target's score with respect to the layer's activations.

    For an image not seen yet at this layer, one compiled step runs the forward pass and the
    gradient together (and caches the forward pass). Afterwards another class costs one pass
    through the part of the network after the layer only. Gradients are cached per class.
    (Batching the top classes' gradients into the first pass was measured: on VGG16 a batch of
    6 costs 3x a batch of 1, so each class is computed when it is asked for.)

    Returns
    -------
    grads : np.ndarray
        (h, w, k) float32, same shape as the activations.
    score : float
        The target's score on this image.
    """
    check_image(model, image)
    layer = resolve_layer(model, layer)
    split = model_split(model, layer)
    require_logits(split.has_logits, model, target)
    units = int(model.model.outputs[0].shape[-1])
    v_logit, v_prob, offset = score_coefficients(target, model.info.output_kind, units)
    coefficients = (v_logit[None], v_prob[None], np.array([offset], dtype="float32"))
    steps = step_cache(model)
    forward_key = ("forward", image.cache_key, layer)

    def compute():
        forward = steps.get(forward_key)
        if forward is None:
            outs, score, grads = split.forward_gradient(tf.constant(model.batch([image])),
                                                        *coefficients)
            steps.put(forward_key, _layer_forward_value(model, split, outs))
        else:
            score, grads = split.gradient(tf.constant(forward.activations[None]),
                                          [tf.constant(c) for c in forward.context],
                                          *coefficients)
        return np.asarray(grads, dtype="float32")[0], float(np.asarray(score)[0])

    key = ("gradient", image.cache_key, layer, int(target.class_index), target.score)
    return steps.get_or_compute(key, compute)


def image_scores(model: LoadedModel, image: ModelImage) -> tuple[np.ndarray | None, np.ndarray]:
    """``(logits or None, output)`` of one image, each (units,) float32.

    Read from the cached forward pass at the last conv layer, so predicting and explaining the
    same image costs one pass.
    """
    forward = layer_forward(model, image, None)
    return forward.logits, forward.output


def image_outputs(model: LoadedModel, image: ModelImage):
    """:func:`image_scores`, or the same numbers kept when a perturbation method scored the
    unchanged image with its copies (:meth:`MethodContext.image_scores`)."""
    kept = step_cache(model).get(("scores", image.cache_key))
    return kept if kept is not None else image_scores(model, image)


def forward_seconds(model: LoadedModel) -> float:
    """Seconds one image takes through the whole model on this machine.

    Measured once per model (cached with it): the compiled scorer on a blank image, traced by
    a first call, then the faster of two timed calls. Pages multiply a method's cost
    (:meth:`viz_core.methods.registry.MethodSpec.passes`) by it to say how long a slow method will take.
    """
    def measure() -> float:
        _, scores, _ = pixel_scorer(model)
        x = tf.zeros((1, *model.info.input_shape), dtype=tf.float32)
        scores(x)
        times = []
        for _ in range(2):
            start = time.perf_counter()
            np.asarray(scores(x)[1])
            times.append(time.perf_counter() - start)
        return min(times)

    return model.derived(("cam_forward_seconds",), measure)



@dataclass(frozen=True, eq=False)
class LayerBatch:
    """A stack of images through a model split at a layer, with each image's class gradient.

    Attributes
    ----------
    activations : np.ndarray
        (N, h, w, k) float32, the layer's output.
    gradients : np.ndarray or None
        (N, h, w, k) float32, each image's class score's gradient; None when not asked for.
    logits : np.ndarray or None
        (N, units) float32; None when the model has none.
    output : np.ndarray
        (N, units) float32.
    classes : np.ndarray
        (N,) int64, the class explained for each image.
    scores : np.ndarray
        (N,) float32, each image's differentiated score.
    """

    activations: np.ndarray
    gradients: np.ndarray | None
    logits: np.ndarray | None
    output: np.ndarray
    classes: np.ndarray
    scores: np.ndarray


def layer_gradients(model: LoadedModel, pixels: np.ndarray, classes: np.ndarray,
                    use_logit: np.ndarray, layer: str, *, gradients: bool = True) -> LayerBatch:
    """Activations at ``layer`` and each image's class gradient, for a stack of images.

    One forward pass and (with ``gradients``) one backward pass through the part of the
    network after the layer, whatever the classes; nothing is cached.

    Parameters
    ----------
    pixels : np.ndarray
        (N, H, W, C) float32 in [0, 255] at the model's input size.
    classes : np.ndarray
        (N,) int, the class to explain for each image; -1: its most probable class.
    use_logit : np.ndarray
        (N,) bool: differentiate the logit (True) or the probability.
    layer : str
        A checked layer path (:func:`viz_core.methods.checks.resolve_layer`).
    gradients : bool
        False: the forward pass only (``gradients`` is None in the result).

    Raises
    ------
    ModelError
        A logit was asked for but the model's logits cannot be read.
    """
    split = model_split(model, layer)
    if bool(np.any(use_logit)) and not split.has_logits:
        require_logits(False, model, Target(0, "logit"))
    x = tf.constant(model.batch(np.asarray(pixels, dtype="float32")))
    classes = np.asarray(classes, dtype="int32")
    kind = model.info.output_kind
    if gradients:
        acts, lg, out, chosen, score, grads = split.chosen_gradient(
            x, tf.constant(classes), tf.constant(np.asarray(use_logit, dtype=bool)))
        grads = np.asarray(grads, dtype="float32")
    else:
        acts, *_, lg, out = split.forward(x)
        grads = None
    output = np.asarray(out, dtype="float32")
    logits = np.asarray(lg, dtype="float32") if split.has_logits else None
    if gradients:
        chosen, scores = np.asarray(chosen, np.int64), np.asarray(score, np.float32)
    else:
        top = class_probabilities(output, kind).argmax(axis=1)
        chosen = np.where(classes >= 0, classes, top).astype(np.int64)
        scores = np.asarray([target_score(None if logits is None else logits[i], output[i],
                                          Target(int(chosen[i]), "logit" if use_logit[i]
                                                 else "probability"), kind)
                             for i in range(len(chosen))], np.float32)
    return LayerBatch(np.asarray(acts, dtype="float32"), grads, logits, output, chosen, scores)
