"""Class heatmaps: Grad-CAM and its family, on any Keras CNN (nested transfer models too).

One call shape for every method::

    class_heatmap(model, image, Target(class_index), method="gradcam", layer=None, **params)

returns a :class:`ClassHeatmap`: a float32 map in [0, 1] at the model's input resolution, the class,
its probability, the layer and the parameters that produced it.

Methods (:data:`METHODS`):

* ``gradcam`` (Selvaraju et al. 2017): channel weights = spatial mean of the gradient of the class
  score with respect to the layer's activations; map = ReLU(sum_k w_k A_k).
* ``gradcam++`` (Chattopadhyay et al. 2018): the same pipeline, only the channel weights differ
  (second/third-order terms from the first gradient, as in ``pytorch-grad-cam``).
* ``scorecam`` (Wang et al. 2020): channel weights from the class score of the image masked by each
  upsampled channel; the masked images go through the model in batches.
* ``saliency``, ``smoothgrad``, ``integrated_gradients``: gradients with respect to the *pixels*
  (through :func:`viz_core.preprocess.preprocessing_function`), so the map lives in the image's
  space whatever the model's preprocessing.

The score that is differentiated follows :mod:`viz_core.targets`: the pre-softmax logit for softmax
models (as in the Grad-CAM paper), ``+logit`` / ``-logit`` for class 1 / class 0 of a single sigmoid
unit, the unit's logit for multi-label models; ``Target(score="probability")`` uses the probability
(what the R tutorial does).

Work is reused. Per model (in :meth:`LoadedModel.derived`) the model is split once at the chosen
layer by :func:`viz_core.graph.split_at` into a *front* half (pixels -> the layer's activations,
the tensors the rest of the network still needs) and a *back* half (activations + those tensors ->
logits, output); the steps built on them are compiled with ``tf.function``. The front half runs
once per image and layer; the gradient of another class is one pass through the back half only.
Both are kept in a small bounded cache attached to the model, so switching class or method
parameters does not run the whole network again.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable

import keras
import numpy as np
import tensorflow as tf
from skimage.transform import resize

from .cache import BoundedCache
from .catalog import LoadedModel
from .errors import Cancelled, ModelError, ParameterError
from .graph import FlatGraph, flat_graph, split_at
from .intake import ModelImage
from .preprocess import preprocessing_function
from .render import resize_map
from .targets import Target, class_probabilities

METHODS = ("gradcam", "gradcam++", "scorecam", "saliency", "smoothgrad", "integrated_gradients")
LAYER_METHODS = ("gradcam", "gradcam++", "scorecam")
PIXEL_METHODS = ("saliency", "smoothgrad", "integrated_gradients")
METHOD_TITLES = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "scorecam": "Score-CAM",
    "saliency": "Vanilla saliency (gradient)",
    "smoothgrad": "SmoothGrad",
    "integrated_gradients": "Integrated Gradients",
}
#: Parameters each method takes, with their defaults (read-only).
METHOD_PARAMS = MappingProxyType({
    "gradcam": MappingProxyType({}),
    "gradcam++": MappingProxyType({}),
    "scorecam": MappingProxyType({"max_channels": None}),
    "saliency": MappingProxyType({}),
    "smoothgrad": MappingProxyType({"samples": 25, "noise": 0.15, "seed": 0}),
    "integrated_gradients": MappingProxyType({"steps": 64, "baseline": 0.0}),
})
#: Score-CAM on the dashboard scores at most this many channels unless the user asks for more.
PAGE_MAX_CHANNELS = 64
# The parameters the Class heatmaps page has a slider for (defaults: :func:`page_params`).
_PAGE_SLIDERS = MappingProxyType({
    "scorecam": ("max_channels",),
    "smoothgrad": ("samples", "noise"),
    "integrated_gradients": ("steps",),
})
PIXEL_LAYER = "input"  # what ``ClassHeatmap.layer`` says for the pixel-gradient methods
BATCH_SIZE = 16  # images per forward/backward batch (Score-CAM, SmoothGrad, IG)
_EPS = 1e-7
_STEP_CACHE_ENTRIES = 32
_STEP_CACHE_BYTES = 192 * 2**20
# Score-CAM's masked-image scores, one entry per (image, layer activations, channel): each holds
# the model's whole output row, so another class or more channels only score what is new.
_MASKED_CACHE_ENTRIES = 16384
_MASKED_CACHE_BYTES = 128 * 2**20

ProgressFn = Callable[[float, str], None]
StopFn = Callable[[], bool]


def page_params(method: str, channels: int) -> dict:
    """Parameters of ``method`` as the Class heatmaps page passes them with its sliders untouched.

    The Compare page and the presenter warm-up call :func:`class_heatmap` with exactly these,
    so one workbench entry answers all of them.

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.
    channels : int
        Channels of the layer Score-CAM reads (ignored by the other methods).

    Returns
    -------
    dict
        Only the parameters the page has a slider for (SmoothGrad ``samples`` and ``noise``,
        Integrated Gradients ``steps``, Score-CAM ``max_channels``), at their
        :data:`METHOD_PARAMS` defaults, except ``max_channels``: :data:`PAGE_MAX_CHANNELS`, or
        None (every channel) when the layer has no more than that.
    """
    if method not in METHODS:
        raise ParameterError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    params = {name: METHOD_PARAMS[method][name] for name in _PAGE_SLIDERS.get(method, ())}
    if method == "scorecam":
        params["max_channels"] = None if channels <= PAGE_MAX_CHANNELS else PAGE_MAX_CHANNELS
    return params


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ClassHeatmap:
    """Where one image holds evidence for one class, by one method.

    Attributes
    ----------
    heatmap : np.ndarray
        (H, W) float32 in [0, 1] at the model's input resolution: ``ReLU(raw)`` resized
        bilinearly, divided by its maximum (all zeros when there is no positive evidence).
    raw : np.ndarray
        (h, w) float32, the map before rectification, resizing and normalisation: for the
        layer methods the weighted channel sum at the layer's resolution (signed); for the pixel
        methods the per-pixel magnitude at the model's input resolution.
    class_index : int
    label : str
    probability : float
        The model's probability for the class on this image, in [0, 1].
    score : float
        The differentiated score on this image (a logit or a probability, see ``score_kind``).
    score_kind : str
        ``"logit"`` or ``"probability"``.
    method : str
        One of :data:`METHODS`.
    layer : str
        Layer path of the activations used, or ``"input"`` for the pixel methods.
    params : tuple of (str, value)
        The method's parameters, defaults filled in.
    image : str
        Name of the image.
    attribution_sum : float or None
        Integrated Gradients only: the sum of the signed attributions over all pixels and channels.
    score_difference : float or None
        Integrated Gradients only: score(image) - score(baseline); completeness says the
        attribution sum approaches it as ``steps`` grows.
    """

    heatmap: np.ndarray
    raw: np.ndarray
    class_index: int
    label: str
    probability: float
    score: float
    score_kind: str
    method: str
    layer: str
    params: tuple
    image: str
    attribution_sum: float | None = None
    score_difference: float | None = None

    @property
    def empty(self) -> bool:
        """True when the map has no positive evidence at all (the heatmap is all zeros)."""
        return not bool(np.any(self.heatmap > 0))

    @property
    def peak(self) -> tuple[int, int]:
        """``(x, y)`` pixel of the heatmap's maximum at model input resolution (first on ties)."""
        row, col = np.unravel_index(int(np.argmax(self.heatmap)), self.heatmap.shape)
        return int(col), int(row)


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


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------
def resolve_layer(model: LoadedModel, layer: str | None) -> str:
    """The layer path to explain: ``layer`` checked, or the last conv layer when None.

    Raises
    ------
    ParameterError
        The layer does not exist or has no feature maps (its output is not 4-D).
    """
    info = model.info
    if layer is None or str(layer).strip() == "":
        return info.last_conv_layer
    path = str(layer).strip()
    known = {entry.path: entry for entry in info.layers}
    if path not in known:
        hint = ", ".join(info.conv_layers[-4:])
        raise ParameterError(
            f"The model has no layer called {path!r}. Its last convolutional layers are: {hint}."
        )
    if not known[path].spatial:
        raise ParameterError(
            f"The layer {path!r} has output shape {known[path].output_shape}, not feature maps "
            "(height x width x channels); class heatmaps need a convolutional-stage layer such "
            f"as {info.last_conv_layer!r}."
        )
    return path


def method_params(method: str, params: dict) -> dict:
    """``params`` checked against what ``method`` takes, defaults filled in.

    Raises
    ------
    ParameterError
        Unknown method, a parameter the method does not take, or a value out of range.
    """
    if method not in METHODS:
        raise ParameterError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    allowed = METHOD_PARAMS[method]
    for name in params:
        if name not in allowed:
            takes = ", ".join(allowed) or "no parameters"
            raise ParameterError(
                f"The method {method!r} does not take a parameter {name!r}; it takes {takes}."
            )
    merged = {**allowed, **params}
    if method == "scorecam" and merged["max_channels"] is not None:
        if int(merged["max_channels"]) < 1:
            raise ParameterError(
                f"max_channels must be at least 1 (or None for all); got {merged['max_channels']}."
            )
        merged["max_channels"] = int(merged["max_channels"])
    if method == "smoothgrad":
        if int(merged["samples"]) < 1:
            raise ParameterError(f"SmoothGrad needs at least 1 sample; got {merged['samples']}.")
        if not 0.0 <= float(merged["noise"]) <= 1.0:
            raise ParameterError(
                f"SmoothGrad noise is a fraction of the pixel range, from 0 to 1; got "
                f"{merged['noise']}."
            )
        merged.update(samples=int(merged["samples"]), noise=float(merged["noise"]),
                      seed=int(merged["seed"]))
    if method == "integrated_gradients":
        if int(merged["steps"]) < 2:
            raise ParameterError(
                f"Integrated Gradients needs at least 2 steps; got {merged['steps']}."
            )
        if not 0.0 <= float(merged["baseline"]) <= 255.0:
            raise ParameterError(
                f"The baseline is a pixel value from 0 (black) to 255 (white); got "
                f"{merged['baseline']}."
            )
        merged.update(steps=int(merged["steps"]), baseline=float(merged["baseline"]))
    return merged


def _check_image(model: LoadedModel, image: ModelImage) -> None:
    expected = tuple(model.info.input_shape)
    if tuple(image.pixels.shape) != expected:
        raise ParameterError(
            f"The image was prepared at {image.pixels.shape} but the model takes {expected}; "
            "use model.view(image)."
        )


def score_coefficients(target: Target, output_kind: str, units: int):
    """The target's score written as ``logits @ v_logit + probs @ v_prob + offset``.

    Every score rule of :func:`viz_core.targets.class_score` is affine in the logits or in the
    probabilities, so one compiled function serves every class without retracing.

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


def _score(logits, output, v_logit, v_prob, offset, output_kind: str):
    """(N,) tensor: the target score from logits and output (see :func:`score_coefficients`)."""
    probs = tf.nn.softmax(output, axis=-1) if output_kind == "linear" else output
    return (tf.reduce_sum(logits * v_logit, axis=-1) + tf.reduce_sum(probs * v_prob, axis=-1)
            + offset)


def _stop_check(should_stop: StopFn | None, what: str) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled(f"{what} was stopped before it finished.")


def _report(progress: ProgressFn | None, fraction: float, message: str) -> None:
    if progress is not None:
        progress(float(min(1.0, max(0.0, fraction))), message)


# --------------------------------------------------------------------------------------------
# Compiled steps on the model split at a layer (built once per model and layer)
# --------------------------------------------------------------------------------------------
def _flat_graph(model: LoadedModel) -> FlatGraph:
    """The model's :func:`~viz_core.graph.flat_graph`, built once per model."""
    return model.derived(("cam_flat_graph",), lambda: flat_graph(model.model))


@dataclass(frozen=True, eq=False)
class _Split:
    """Compiled steps of a model split at one layer (:func:`viz_core.graph.split_at`).

    ``forward(x) -> [acts, *context, logits, output]``;
    ``forward_gradient(x, v_logit, v_prob, offset) -> ([acts, *context, logits, output], score,
    grads)``: the same pass, plus the gradient of the score with respect to ``acts``;
    ``gradient(acts, context, v_logit, v_prob, offset) -> (score, grads)``: through the back
    half only.
    ``x`` is the preprocessed model input (1, H, W, C); the coefficients come from
    :func:`score_coefficients`, with a batch axis.
    """

    layer: str
    has_logits: bool
    forward: Callable
    forward_gradient: Callable
    gradient: Callable
    headless: bool  # True: no back half could be cut, ``gradient`` re-runs the whole model


def _split(model: LoadedModel, layer: str) -> _Split:
    def build():
        kind = model.info.output_kind
        try:
            halves = split_at(model.model, layer, flat=_flat_graph(model))
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
                score = _score(lg, out, v_logit, v_prob, offset, kind)
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

        return _Split(layer, halves.has_logits, forward, forward_gradient, gradient,
                      headless=False)

    return model.derived(("cam_split", layer), build)


def _headless_split(model: LoadedModel, layer: str) -> _Split:
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
            score = _score(lg, out, v_logit, v_prob, offset, kind)
        return [acts, x, lg, out], score, tape.gradient(score, acts)

    @tf.function(reduce_retracing=True)
    def gradient(acts, context, v_logit, v_prob, offset):
        # the whole model runs again from its input, kept as the context
        with tf.GradientTape() as tape:
            tapped, lg, out = run(context[0])
            score = _score(lg, out, v_logit, v_prob, offset, kind)
        return score, tape.gradient(score, tapped)

    return _Split(layer, has_logits, forward, forward_gradient, gradient, headless=True)


def _scorer(model: LoadedModel):
    """Compiled ``pixels (N,H,W,C) in [0,255] -> (logits, output)`` and whether logits exist."""

    def build():
        try:
            flat = _flat_graph(model)
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
        vec = tf.TensorSpec((units,), tf.float32)
        scalar = tf.TensorSpec((), tf.float32)

        @tf.function(input_signature=[spec, vec, vec, scalar])
        def pixel_gradient(pixels, v_logit, v_prob, offset):
            with tf.GradientTape() as tape:
                tape.watch(pixels)
                lg, out = net(prep(pixels), training=False)
                score = _score(lg, out, v_logit, v_prob, offset, kind)
            return score, tape.gradient(score, pixels)

        return has_logits, scores, pixel_gradient

    return model.derived(("cam_scorer",), build)


def _steps(model: LoadedModel) -> BoundedCache:
    """This model's cache of per-image forward passes and class gradients."""
    return model.derived(
        ("cam_steps",),
        lambda: BoundedCache(max_entries=_STEP_CACHE_ENTRIES, max_bytes=_STEP_CACHE_BYTES),
    )


def _masked_scores(model: LoadedModel) -> BoundedCache:
    """This model's cache of Score-CAM masked-image outputs (logits row, output row)."""
    return model.derived(
        ("cam_masked_scores",),
        lambda: BoundedCache(max_entries=_MASKED_CACHE_ENTRIES, max_bytes=_MASKED_CACHE_BYTES),
    )


def _require_logits(has_logits: bool, model: LoadedModel, target: Target) -> None:
    if target.score == "logit" and not has_logits:
        raise ModelError(
            f"The output layer of {model.title!r} has an activation whose input cannot be read, "
            "so class logits are not available. Use the probability-based score instead."
        )


# --------------------------------------------------------------------------------------------
# Cached steps
# --------------------------------------------------------------------------------------------
def _layer_forward_value(model: LoadedModel, split: _Split, outs) -> LayerForward:
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
    _check_image(model, image)
    layer = resolve_layer(model, layer)

    def compute():
        split = _split(model, layer)
        return _layer_forward_value(model, split, split.forward(tf.constant(model.batch([image]))))

    return _steps(model).get_or_compute(("forward", image.cache_key, layer), compute)


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
    _check_image(model, image)
    layer = resolve_layer(model, layer)
    split = _split(model, layer)
    _require_logits(split.has_logits, model, target)
    units = int(model.model.outputs[0].shape[-1])
    v_logit, v_prob, offset = score_coefficients(target, model.info.output_kind, units)
    coefficients = (v_logit[None], v_prob[None], np.array([offset], dtype="float32"))
    steps = _steps(model)
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


# --------------------------------------------------------------------------------------------
# Channel weights: the one piece in which the layer methods differ
# --------------------------------------------------------------------------------------------
def gradcam_weights(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Grad-CAM channel weights: the spatial mean of the gradient.

    Parameters
    ----------
    activations, grads : (h, w, k) float32

    Returns
    -------
    np.ndarray
        (k,) float32.
    """
    return grads.mean(axis=(0, 1)).astype("float32")


def gradcam_pp_weights(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Grad-CAM++ channel weights (Chattopadhyay et al., eq. 19, exponential-score form).

    ``alpha = g^2 / (2 g^2 + sum_ij(A) g^3)``, ``w_k = sum_ij alpha * ReLU(g)``; the higher
    derivatives are powers of the first, as in ``pytorch-grad-cam`` and ``tf-keras-vis``.

    Returns
    -------
    np.ndarray
        (k,) float32.
    """
    g = grads.astype("float64")
    g2 = g * g
    g3 = g2 * g
    total = activations.astype("float64").sum(axis=(0, 1))
    denominator = 2.0 * g2 + total[None, None, :] * g3
    alpha = np.where(g != 0.0, g2 / np.where(denominator != 0.0, denominator, 1.0), 0.0)
    return (alpha * np.maximum(g, 0.0)).sum(axis=(0, 1)).astype("float32")


_GRADIENT_WEIGHTS = {"gradcam": gradcam_weights, "gradcam++": gradcam_pp_weights}


def scorecam_weights(model: LoadedModel, image: ModelImage, activations: np.ndarray,
                     target: Target, *, max_channels: int | None = None,
                     progress: ProgressFn | None = None,
                     should_stop: StopFn | None = None) -> np.ndarray:
    """Score-CAM channel weights: the class score of the image masked by each channel.

    Each channel is upsampled to the input size and scaled to [0, 1]; the pixels are multiplied
    by it (masked regions turn black) and scored in batches of :data:`BATCH_SIZE`. With a
    probability target the weights are the probabilities (as in the authors' code); with a logit
    target they are the softmax of the logits over channels (as in ``pytorch-grad-cam``).
    Flat channels (no spatial information) get weight 0. The model's outputs for each masked
    image are kept per channel (for every class at once), so another class of the same image,
    or more channels, only runs the model on masks not seen before.

    Parameters
    ----------
    activations : (h, w, k) float32
    max_channels : int or None
        Score only this many channels, those with the largest mean activation; None: all.

    Returns
    -------
    np.ndarray
        (k,) float32.
    """
    has_logits, scores, _ = _scorer(model)
    _require_logits(has_logits, model, target)
    h, w, _ = model.info.input_shape
    units = int(model.model.outputs[0].shape[-1])
    v_logit, v_prob, offset = score_coefficients(target, model.info.output_kind, units)
    k = activations.shape[-1]
    spread = activations.max(axis=(0, 1)) - activations.min(axis=(0, 1))
    usable = np.flatnonzero(spread > _EPS)
    if max_channels is not None and usable.size > max_channels:
        means = activations.mean(axis=(0, 1))[usable]
        usable = np.sort(usable[np.argsort(-means, kind="stable")[:max_channels]])
    cache = _masked_scores(model)
    base = (image.digest, hashlib.sha256(np.ascontiguousarray(activations).tobytes()).hexdigest())
    rows = {int(c): cache.get((base, int(c))) for c in usable}  # c -> (logits row, output row)
    todo = np.array([c for c, row in rows.items() if row is None], dtype=int)
    pixels = tf.constant(image.pixels[None], dtype=tf.float32)
    batches = math.ceil(todo.size / BATCH_SIZE)
    for b in range(batches):
        _stop_check(should_stop, "Score-CAM")
        chunk = todo[b * BATCH_SIZE:(b + 1) * BATCH_SIZE]
        # the same bilinear upsampling as the final heatmap (render.resize_map), per chunk
        maps = resize(activations[..., chunk], (h, w, chunk.size), order=1, mode="edge",
                      anti_aliasing=False, preserve_range=True)
        low, high = maps.min(axis=(0, 1)), maps.max(axis=(0, 1))
        maps = (maps - low) / np.maximum(high - low, _EPS)  # each channel to [0, 1]
        masks = np.transpose(maps, (2, 0, 1))[..., None].astype("float32")  # (n, H, W, 1)
        lg, out = (np.asarray(t, dtype="float32") for t in scores(pixels * masks))
        for i, c in enumerate(chunk):
            rows[int(c)] = (lg[i].copy(), out[i].copy())
            cache.put((base, int(c)), rows[int(c)], size=lg[i].nbytes + out[i].nbytes)
        _report(progress, (b + 1) / batches, f"{b * BATCH_SIZE + chunk.size} of {todo.size} "
                "channels scored")
    channel_scores = np.zeros(usable.size, dtype="float32")
    if usable.size:
        lg = np.stack([rows[int(c)][0] for c in usable])
        out = np.stack([rows[int(c)][1] for c in usable])
        channel_scores = np.asarray(_score(lg, out, v_logit, v_prob, offset,
                                           model.info.output_kind), dtype="float32")
    weights = np.zeros(k, dtype="float32")
    if usable.size:
        if target.score == "logit":
            shifted = np.exp(channel_scores.astype("float64") - channel_scores.max())
            weights[usable] = shifted / shifted.sum()
        else:
            weights[usable] = channel_scores
    return weights


# --------------------------------------------------------------------------------------------
# Pixel-gradient methods
# --------------------------------------------------------------------------------------------
def _pixel_gradients(model: LoadedModel, pixels: np.ndarray, target: Target, what: str,
                     progress: ProgressFn | None, should_stop: StopFn | None,
                     start: float = 0.0, share: float = 1.0):
    """Scores (N,) and gradients (N, H, W, C) for many pixel arrays, in batches."""
    has_logits, _, pixel_gradient = _scorer(model)
    _require_logits(has_logits, model, target)
    units = int(model.model.outputs[0].shape[-1])
    v_logit, v_prob, offset = score_coefficients(target, model.info.output_kind, units)
    n = len(pixels)
    scores = np.zeros(n, dtype="float32")
    grads = np.zeros(pixels.shape, dtype="float32")
    batches = max(1, math.ceil(n / BATCH_SIZE))
    for b in range(batches):
        _stop_check(should_stop, what)
        sl = slice(b * BATCH_SIZE, min(n, (b + 1) * BATCH_SIZE))
        s, g = pixel_gradient(tf.constant(pixels[sl], dtype=tf.float32), v_logit, v_prob, offset)
        scores[sl] = np.asarray(s)
        grads[sl] = np.asarray(g)
        _report(progress, start + share * (b + 1) / batches, f"{sl.stop} of {n} gradients")
    return scores, grads


def _saliency(model, image, target, progress, should_stop):
    _, grads = _pixel_gradients(model, image.pixels[None], target, "Saliency", progress,
                                should_stop)
    # Simonyan et al.: the largest absolute gradient over the colour channels
    return np.abs(grads[0]).max(axis=-1), {}


def _smoothgrad(model, image, target, progress, should_stop, *, samples, noise, seed):
    rng = np.random.default_rng(seed)
    sigma = noise * 255.0  # noise level as a fraction of the pixel range [0, 255]
    noisy = image.pixels[None] + rng.normal(0.0, sigma, (samples,) + image.pixels.shape)
    _, grads = _pixel_gradients(model, noisy.astype("float32"), target, "SmoothGrad", progress,
                                should_stop)
    # Smilkov et al.: average the gradients of the noisy copies, then take magnitudes
    return np.abs(grads.mean(axis=0)).max(axis=-1), {}


def _integrated_gradients(model, image, target, progress, should_stop, *, steps, baseline):
    x = image.pixels.astype("float32")
    base = np.full_like(x, baseline)
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype="float32")
    path = base[None] + alphas[:, None, None, None] * (x - base)[None]
    scores, grads = _pixel_gradients(model, path, target, "Integrated Gradients", progress,
                                     should_stop)
    # Trapezoidal rule over the straight path from the baseline to the image
    avg = (grads[0] / 2 + grads[1:-1].sum(axis=0) + grads[-1] / 2) / steps
    attributions = (x - base) * avg
    extras = {
        "attribution_sum": float(attributions.astype("float64").sum()),
        "score_difference": float(scores[-1]) - float(scores[0]),
    }
    return np.abs(attributions).sum(axis=-1), extras


_PIXEL_METHODS = {
    "saliency": _saliency,
    "smoothgrad": _smoothgrad,
    "integrated_gradients": _integrated_gradients,
}


# --------------------------------------------------------------------------------------------
# The one entry point
# --------------------------------------------------------------------------------------------
def class_heatmap(
    model: LoadedModel,
    image: ModelImage,
    target: Target,
    method: str = "gradcam",
    layer: str | None = None,
    *,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    **params,
) -> ClassHeatmap:
    """Where ``image`` holds evidence for ``target``'s class, by ``method``.

    Parameters
    ----------
    model : LoadedModel
        Never modified.
    image : ModelImage
        ``model.view(loaded_image)``: pixels (H, W, C) float32 in [0, 255].
    target : Target
        Class index and score kind (``"logit"``, the paper's choice, or ``"probability"``).
    method : str
        One of :data:`METHODS`.
    layer : str or None
        For ``gradcam``, ``gradcam++`` and ``scorecam``: a layer path with feature maps
        (nested ones like ``"vgg16/block5_conv3"`` too); None means the last conv layer.
        Ignored by the pixel methods.
    progress : callable(fraction, message) or None
    should_stop : callable() -> bool, or None
        Checked between batches; True raises :class:`~viz_core.errors.Cancelled`.
    **params
        Method parameters, see :data:`METHOD_PARAMS`: ``scorecam``: ``max_channels``;
        ``smoothgrad``: ``samples``, ``noise`` (fraction of the pixel range), ``seed``;
        ``integrated_gradients``: ``steps``, ``baseline`` (pixel value, 0 = black).

    Returns
    -------
    ClassHeatmap

    Raises
    ------
    ParameterError
        Unknown method, parameter, layer or class; image prepared for another model.
    ModelError
        A logit score was asked for but the model's output activation cannot be undone.
    Cancelled
        ``should_stop()`` returned True.
    """
    settings = method_params(method, params)
    _check_image(model, image)
    units = int(model.model.outputs[0].shape[-1])
    score_coefficients(target, model.info.output_kind, units)  # validate the class early
    height, width = model.info.input_shape[:2]
    extras: dict = {}
    _report(progress, 0.0, f"{METHOD_TITLES[method]}: starting")
    if method in LAYER_METHODS:
        layer_path = resolve_layer(model, layer)
        if method == "scorecam":
            forward = layer_forward(model, image, layer_path)
            weights = scorecam_weights(model, image, forward.activations, target,
                                       max_channels=settings["max_channels"],
                                       progress=progress, should_stop=should_stop)
            score = _target_score(forward.logits, forward.output, target,
                                  model.info.output_kind)
        else:
            # gradient first: for a new image it runs together with the forward pass
            grads, score = layer_gradient(model, image, target, layer_path)
            forward = layer_forward(model, image, layer_path)
            weights = _GRADIENT_WEIGHTS[method](forward.activations, grads)
        raw = np.tensordot(forward.activations, weights, axes=([-1], [0])).astype("float32")
        probabilities = forward.probabilities
    else:
        layer_path = PIXEL_LAYER
        raw, extras = _PIXEL_METHODS[method](model, image, target, progress, should_stop,
                                             **settings)
        raw = raw.astype("float32")
        logits, output = image_scores(model, image)
        score = _target_score(logits, output, target, model.info.output_kind)
        probabilities = class_probabilities(output[None], model.info.output_kind)[0]
    heat = resize_map(np.maximum(raw, 0.0), height, width)
    peak = float(heat.max()) if heat.size else 0.0
    heat = (heat / peak if peak > 0 else np.zeros_like(heat)).astype("float32")
    _report(progress, 1.0, f"{METHOD_TITLES[method]}: done")
    return ClassHeatmap(
        heatmap=np.clip(heat, 0.0, 1.0),
        raw=raw,
        class_index=int(target.class_index),
        label=model.label(int(target.class_index)),
        probability=float(probabilities[int(target.class_index)]),
        score=float(score),
        score_kind=target.score,
        method=method,
        layer=layer_path,
        params=tuple(sorted(settings.items())),
        image=image.name,
        attribution_sum=extras.get("attribution_sum"),
        score_difference=extras.get("score_difference"),
    )


def _target_score(logits, output, target: Target, output_kind: str) -> float:
    units = int(output.shape[-1])
    v_logit, v_prob, offset = score_coefficients(target, output_kind, units)
    lg = np.zeros_like(output) if logits is None else logits
    if output_kind == "linear":
        e = np.exp(output.astype("float64") - output.max())
        probs = e / e.sum()
    else:
        probs = output
    return float(lg @ v_logit + probs @ v_prob + offset)


def top_classes(model: LoadedModel, image: ModelImage, top: int = 5) -> tuple[tuple[int, str, float], ...]:
    """The ``top`` most probable classes of the image: ``(class_index, label, probability)``.

    Uses the cached forward pass, so asking first and explaining after costs one pass.
    """
    _, output = image_scores(model, image)
    probs = class_probabilities(output[None], model.info.output_kind)[0]
    order = np.argsort(-probs, kind="stable")[: max(1, min(int(top), probs.size))]
    return tuple((int(i), model.label(int(i)), float(probs[i])) for i in order)
