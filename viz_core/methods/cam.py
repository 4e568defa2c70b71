"""Class heatmaps: Grad-CAM and its family, on any Keras CNN (nested transfer models too).

One call shape for every method::

    class_heatmap(model, image, Target(class_index), method="gradcam", layer=None, **params)

returns a :class:`ClassHeatmap`: a float32 map in [0, 1] at the model's input resolution, the class,
its probability, the layer and the parameters that produced it.

Methods are listed, with their parameters, ranges and costs, in :mod:`viz_core.methods.registry` (the
registry); this module holds their compute functions:

* layer methods, on one layer's activations ``A`` and the class score's gradient ``G``:
  ``gradcam`` (Selvaraju et al. 2017: channel weights = spatial mean of ``G``), ``gradcam++``
  (Chattopadhyay et al. 2018), ``layercam`` (Jiang et al. 2021: ``sum_k ReLU(G_k) A_k``),
  ``hirescam`` (Draelos & Carin 2020: ``sum_k G_k A_k``), ``xgradcam`` (Fu et al. 2020),
  ``eigencam`` (Muhammad & Yeasin 2020: first principal component of ``A``, no gradient),
  ``scorecam`` (Wang et al. 2020: the image masked by each channel, scored in batches) and
  ``ablationcam`` (Desai & Ramaswamy 2020: the score drop with each channel zeroed, through the
  part of the network after the layer only);
* ``saliency``, ``smoothgrad``, ``integrated_gradients``: gradients with respect to the *pixels*
  (through :func:`viz_core.models.preprocess.preprocessing_function`), so the map lives in the image's
  space whatever the model's preprocessing;
* ``occlusion`` (Zeiler & Fergus 2014) and ``rise`` (Petsiuk et al. 2018): the model scores
  changed copies of the image (a sliding patch, random masks), in batches.

The score that is differentiated follows :mod:`viz_core.models.targets`: the pre-softmax logit for softmax
models (as in the Grad-CAM paper), ``+logit`` / ``-logit`` for class 1 / class 0 of a single sigmoid
unit, the unit's logit for multi-label models; ``Target(score="probability")`` uses the probability
(what the R tutorial does).

Work is reused. Per model (in :meth:`LoadedModel.derived`) the model is split once at the chosen
layer by :func:`viz_core.models.graph.split_at` into a *front* half (pixels -> the layer's activations,
the tensors the rest of the network still needs) and a *back* half (activations + those tensors ->
logits, output); the steps built on them are compiled with ``tf.function``. The front half runs
once per image and layer; the gradient of another class is one pass through the back half only.
Both are kept in a small bounded cache attached to the model, so switching class or method
parameters does not run the whole network again.
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
import tensorflow as tf
from scipy.linalg import eigh
from skimage.transform import resize
from threadpoolctl import threadpool_limits

from viz_core.methods import registry as methods
from viz_core.runtime.cache import BoundedCache
from viz_core.models.catalog import LoadedModel
from viz_core.errors import Cancelled, ModelError, ParameterError
from viz_core.models.graph import FlatGraph, flat_graph, split_at
from viz_core.inputs.intake import ModelImage
from viz_core.models.preprocess import preprocessing_function
from viz_core.maps import resize_map
from viz_core.models.targets import Target, class_probabilities

#: Score-CAM on the dashboard scores at most this many channels unless the user asks for more
#: (its ``page_default`` in :mod:`viz_core.methods.registry`).
PAGE_MAX_CHANNELS = methods.get("scorecam").param("max_channels").page_default
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
    """Parameters of ``method`` as the Class heatmaps page passes them with its widgets untouched.

    The Compare page and the presenter warm-up call :func:`class_heatmap` with exactly these,
    so one workbench entry answers all of them (see :meth:`MethodSpec.page_params`).

    Parameters
    ----------
    method : str
        A registered method (:func:`viz_core.methods.registry.names`).
    channels : int
        Channels of the layer the method reads (only parameters that count channels use it).

    Returns
    -------
    dict
        Only the parameters the page has a widget for, at their page defaults.
    """
    return methods.get(method).page_params(channels)


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
    """``params`` checked against what ``method`` takes, defaults filled in (by the registry,
    :meth:`viz_core.methods.registry.MethodSpec.validate`).

    Raises
    ------
    ParameterError
        Unknown method, a parameter the method does not take, or a value out of range.
    """
    return methods.get(method).validate(params)


def _check_image(model: LoadedModel, image: ModelImage) -> None:
    expected = tuple(model.info.input_shape)
    if tuple(image.pixels.shape) != expected:
        raise ParameterError(
            f"The image was prepared at {image.pixels.shape} but the model takes {expected}; "
            "use model.view(image)."
        )


def score_coefficients(target: Target, output_kind: str, units: int):
    """The target's score written as ``logits @ v_logit + probs @ v_prob + offset``.

    Every score rule of :func:`viz_core.models.targets.class_score` is affine in the logits or in the
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
    """The model's :func:`~viz_core.models.graph.flat_graph`, built once per model."""
    return model.derived(("cam_flat_graph",), lambda: flat_graph(model.model))


@dataclass(frozen=True, eq=False)
class _Split:
    """Compiled steps of a model split at one layer (:func:`viz_core.models.graph.split_at`).

    ``forward(x) -> [acts, *context, logits, output]``;
    ``forward_gradient(x, v_logit, v_prob, offset) -> ([acts, *context, logits, output], score,
    grads)``: the same pass, plus the gradient of the score with respect to ``acts``;
    ``gradient(acts, context, v_logit, v_prob, offset) -> (score, grads)``: through the back
    half only; ``back(acts, context) -> (logits, output)``: the back half alone, any batch size
    (None when the model could not be cut).
    ``x`` is the preprocessed model input (1, H, W, C); the coefficients come from
    :func:`score_coefficients`, with a batch axis.
    """

    layer: str
    has_logits: bool
    forward: Callable
    forward_gradient: Callable
    gradient: Callable
    headless: bool  # True: no back half could be cut, ``gradient`` re-runs the whole model
    back: Callable | None = None


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

        @tf.function(reduce_retracing=True)
        def back(acts, ctx):
            return halves.run_back(acts, ctx)

        return _Split(layer, halves.has_logits, forward, forward_gradient, gradient,
                      headless=False, back=back)

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


def _image_outputs(model: LoadedModel, image: ModelImage):
    """:func:`image_scores`, or the same numbers kept when a perturbation method scored the
    unchanged image with its copies (:meth:`MethodContext.image_scores`)."""
    kept = _steps(model).get(("scores", image.cache_key))
    return kept if kept is not None else image_scores(model, image)


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


def channel_map(activations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_k weights[k] * activations[..., k]``: (h, w, k) and (k,) -> (h, w) float32."""
    return np.tensordot(activations, weights, axes=([-1], [0])).astype("float32")


def gradcam_map(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017): activations weighted by :func:`gradcam_weights`.

    Parameters
    ----------
    activations, grads : (h, w, k) float32

    Returns
    -------
    np.ndarray
        (h, w) float32, signed (``class_heatmap`` keeps the positive part).
    """
    return channel_map(activations, gradcam_weights(activations, grads))


def gradcam_pp_map(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Grad-CAM++: activations weighted by :func:`gradcam_pp_weights`; (h, w) float32."""
    return channel_map(activations, gradcam_pp_weights(activations, grads))


def layercam_map(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """LayerCAM (Jiang et al. 2021): ``sum_k ReLU(g_k) * A_k``, position by position.

    Parameters
    ----------
    activations, grads : (h, w, k) float32

    Returns
    -------
    np.ndarray
        (h, w) float32 (>= 0 wherever the activations are, e.g. after a ReLU).
    """
    a = activations.astype("float64")
    return (np.maximum(grads.astype("float64"), 0.0) * a).sum(axis=-1).astype("float32")


def hirescam_map(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """HiResCAM (Draelos & Carin 2020): ``sum_k g_k * A_k``, element-wise; (h, w) float32."""
    return (grads.astype("float64") * activations.astype("float64")).sum(axis=-1).astype(
        "float32")


def xgradcam_map(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """XGradCAM (Fu et al. 2020): channel weights ``sum_ij(g A) / sum_ij(A)``; (h, w) float32.

    A channel that is zero everywhere gets weight 0 (an epsilon in the denominator, as in
    ``pytorch-grad-cam``).
    """
    a = activations.astype("float64")
    weights = (grads.astype("float64") * a).sum(axis=(0, 1)) / (a.sum(axis=(0, 1)) + _EPS)
    return channel_map(a, weights)


def eigencam_map(activations: np.ndarray) -> np.ndarray:
    """EigenCAM (Muhammad & Yeasin 2020): the first principal component of the activations.

    Positions are samples and channels features: the (h*w, k) matrix ``X`` is centred per
    channel and projected on its first principal direction. The projection is ``X v`` with
    ``v`` the top eigenvector of the (k, k) Gram matrix ``X^T X``, or equally ``s u`` with
    ``u`` the top eigenvector of the (h*w, h*w) matrix ``X X^T`` and ``s^2`` its eigenvalue:
    whichever side is smaller is decomposed (196 x 196 instead of a 196 x 512 SVD at VGG16's
    last layer). The sign of an eigenvector is arbitrary; it is chosen so the map correlates
    positively with the layer's summed activation (``sum_k A_k``, centred), i.e. it points
    where the layer is active. No gradient and no class: every class gets the same map.

    Parameters
    ----------
    activations : (h, w, k) float32

    Returns
    -------
    np.ndarray
        (h, w) float32, signed, mean 0.
    """
    h, w, k = activations.shape
    a = activations.reshape(h * w, k).astype("float64")
    centred = a - a.mean(axis=0)
    if not np.any(centred):
        return np.zeros((h, w), dtype="float32")
    # One BLAS thread: on small matrices OpenBLAS's thread pool costs far more than it saves
    # when the machine is busy (measured: a 196 x 512 SVD took 1.1 s with 2 threads under load,
    # 0.06 s with one; this Gram route 3 ms).
    with threadpool_limits(1, user_api="blas"):
        if h * w <= k:
            gram = centred @ centred.T
            n = gram.shape[0]
            values, vectors = eigh(gram, subset_by_index=[n - 1, n - 1])
            projection = vectors[:, 0] * math.sqrt(max(float(values[0]), 0.0))
        else:
            gram = centred.T @ centred
            n = gram.shape[0]
            _, vectors = eigh(gram, subset_by_index=[n - 1, n - 1])
            projection = centred @ vectors[:, 0]
    total = a.sum(axis=1)
    if float(projection @ (total - total.mean())) < 0:
        projection = -projection
    return projection.reshape(h, w).astype("float32")


@dataclass(frozen=True, eq=False)
class MethodContext:
    """What a method that runs the model itself gets (``inputs="context"`` in the registry).

    Attributes
    ----------
    model : LoadedModel
        Never modified.
    image : ModelImage
        Prepared for the model: pixels (H, W, C) float32 in [0, 255].
    target : Target
    layer : str or None
        The resolved layer path for layer methods; None for pixel and perturbation methods.
    progress : callable(fraction, message) or None
    should_stop : callable() -> bool or None
    title : str
        The method's title, for progress and stop messages.
    """

    model: LoadedModel
    image: ModelImage
    target: Target
    layer: str | None = None
    progress: ProgressFn | None = None
    should_stop: StopFn | None = None
    title: str = ""

    def forward(self) -> LayerForward:
        """The image's cached forward pass split at :attr:`layer`."""
        return layer_forward(self.model, self.image, self.layer)

    def gradients(self) -> np.ndarray:
        """(h, w, k) float32: the class score's gradient at :attr:`layer` (cached)."""
        return layer_gradient(self.model, self.image, self.target, self.layer)[0]

    def report(self, fraction: float, message: str) -> None:
        _report(self.progress, fraction, message)

    def check_stop(self) -> None:
        _stop_check(self.should_stop, self.title or "The heatmap")

    def image_scores(self, count: int, batch: Callable[[int, int], np.ndarray],
                     what: str = "images",
                     scored: Callable[[int, int, np.ndarray], None] | None = None, *,
                     with_image: bool = False) -> np.ndarray:
        """The target score of ``count`` changed copies of the image, in batches.

        Batches hold at most :data:`BATCH_SIZE` images and are of (nearly) equal size: 50
        images go as 13 + 13 + 12 + 12, not 16 + 16 + 16 + 2, since a small last batch costs
        more per image.

        Parameters
        ----------
        count : int
        batch : callable(start, stop) -> (stop - start, H, W, C) float32 pixels in [0, 255]
        what : str
            Word for the progress messages.
        scored : callable(start, stop, scores) or None
            Called after each batch with its (stop - start,) float32 scores, so a method can
            use what it built for the batch before the next one replaces it.
        with_image : bool
            Also score the unchanged image, in the first batch: its logits and output are kept
            (see :meth:`image_score`), so :func:`class_heatmap` needs no pass of its own for
            the class probability.

        Returns
        -------
        np.ndarray
            (count,) float32, the score :func:`class_heatmap` differentiates (logit or
            probability, sign rule of single sigmoid units included).
        """
        model = self.model
        has_logits, scores, _ = _scorer(model)
        _require_logits(has_logits, model, self.target)
        units = int(model.model.outputs[0].shape[-1])
        v_logit, v_prob, offset = score_coefficients(self.target, model.info.output_kind, units)
        result = np.zeros(count, dtype="float32")
        extra = 1 if with_image else 0  # position 0 of the first batch is the image itself
        total = count + extra
        batches = max(1, math.ceil(total / BATCH_SIZE))
        bounds = [round(b * total / batches) for b in range(batches + 1)]
        pixels = self.image.pixels.astype("float32")[None]
        for b in range(batches):
            self.check_stop()
            lo, hi = max(0, bounds[b] - extra), bounds[b + 1] - extra
            images = batch(lo, hi) if hi > lo else pixels[:0]
            if b == 0 and extra:
                images = np.concatenate([pixels, np.asarray(images, dtype="float32")])
            lg, out = scores(tf.constant(images, dtype=tf.float32))
            batch_scores = np.asarray(_score(lg, out, v_logit, v_prob, offset,
                                             model.info.output_kind), dtype="float32")
            if b == 0 and extra:
                _steps(model).put(("scores", self.image.cache_key),
                                  (np.asarray(lg[0]) if has_logits else None,
                                   np.asarray(out[0])))
                batch_scores = batch_scores[1:]
            result[lo:hi] = batch_scores
            if scored is not None and hi > lo:
                scored(lo, hi, result[lo:hi])
            self.report(hi / max(1, count), f"{hi} of {count} {what} scored")
        return result

    def image_score(self) -> float:
        """The target score of the unchanged image (kept by ``image_scores(with_image=True)``,
        else one forward pass, cached)."""
        logits, output = _image_outputs(self.model, self.image)
        return _target_score(logits, output, self.target, self.model.info.output_kind)


def scorecam_map(ctx: MethodContext, *, max_channels: int | None = None) -> np.ndarray:
    """Score-CAM: the layer's activations weighted by :func:`scorecam_weights`; (h, w)."""
    forward = ctx.forward()
    weights = scorecam_weights(ctx.model, ctx.image, forward.activations, ctx.target,
                               max_channels=max_channels, progress=ctx.progress,
                               should_stop=ctx.should_stop)
    return channel_map(forward.activations, weights)


# AblationCAM batches: as many ablated copies as fit in this many bytes, at most 64
_ABLATION_BATCH_BYTES = 32 * 2**20


def ablationcam_weights(ctx: MethodContext) -> np.ndarray:
    """AblationCAM channel weights (Desai & Ramaswamy 2020): the relative score drop when the
    channel is zeroed, ``(y - y_k) / |y|``.

    Only the part of the network after the layer runs (:func:`viz_core.models.graph.split_at`), on a
    batch of copies of the activations with one channel zeroed in each. The paper divides by
    ``y``; here by ``|y|`` so a negative score (a single sigmoid's class 0 is scored by
    ``-logit``) keeps the sign of the drop. Channels that are zero everywhere get weight 0 and
    no pass. The outputs of each ablated copy are cached per channel, so another class of the
    same image runs nothing.

    Returns
    -------
    np.ndarray
        (k,) float32.

    Raises
    ------
    ModelError
        The model cannot be cut at the layer (then there is no back half to run).
    """
    model, layer = ctx.model, ctx.layer
    split = _split(model, layer)
    if split.back is None:
        raise ModelError(
            f"AblationCAM runs the part of {model.title!r} after {layer!r} alone, but this "
            "model cannot be cut there (e.g. the same layer name inside and outside a nested "
            "model). Use Score-CAM or Grad-CAM instead.")
    _require_logits(split.has_logits, model, ctx.target)
    forward = ctx.forward()
    acts = forward.activations
    k = acts.shape[-1]
    units = int(model.model.outputs[0].shape[-1])
    kind = model.info.output_kind
    v_logit, v_prob, offset = score_coefficients(ctx.target, kind, units)
    usable = np.flatnonzero(np.abs(acts).max(axis=(0, 1)) > 0)
    cache = _masked_scores(model)
    base = ("ablation", ctx.image.cache_key, layer)
    rows = {int(c): cache.get((base, int(c))) for c in usable}
    todo = np.array([c for c, row in rows.items() if row is None], dtype=int)
    size = max(1, min(64, _ABLATION_BATCH_BYTES // max(1, acts.nbytes)))
    batches = math.ceil(todo.size / size)
    bounds = [round(b * todo.size / max(1, batches)) for b in range(batches + 1)]  # equal
    run_ablated = _ablated_back(model, layer)
    acts_in = tf.constant(acts[None])
    context = [tf.constant(c) for c in forward.context]
    for b in range(batches):
        ctx.check_stop()
        chunk = todo[bounds[b]:bounds[b + 1]]
        lg, out = (np.asarray(t, dtype="float32")
                   for t in run_ablated(acts_in, context, tf.constant(chunk, dtype=tf.int32)))
        for i, c in enumerate(chunk):
            # rows are views of the batch's arrays: every row is kept, so nothing is wasted
            rows[int(c)] = (lg[i], out[i])
            cache.put((base, int(c)), rows[int(c)], size=lg[i].nbytes + out[i].nbytes)
        ctx.report((b + 1) / batches, f"{bounds[b + 1]} of {todo.size} channels ablated")
    weights = np.zeros(k, dtype="float32")
    if usable.size:
        lg = np.stack([rows[int(c)][0] for c in usable])
        out = np.stack([rows[int(c)][1] for c in usable])
        ablated = np.asarray(_score(lg, out, v_logit, v_prob, offset, kind), dtype="float64")
        score = _target_score(forward.logits, forward.output, ctx.target, kind)
        weights[usable] = (score - ablated) / max(abs(score), _EPS)
    return weights


def _ablated_back(model: LoadedModel, layer: str) -> Callable:
    """Compiled ``(acts (1, h, w, k), context, channels (n,) int32) -> (logits, output)``:
    the back half of the model on ``n`` copies of the activations, copy ``i`` with channel
    ``channels[i]`` zeroed. The copies are made inside the graph, so a batch of 64 copies of
    VGG16's last layer (25 MB) is never built in numpy and copied into TensorFlow."""
    split = _split(model, layer)

    def build():
        @tf.function(reduce_retracing=True)
        def ablated(acts, context, channels):
            n = tf.shape(channels)[0]
            keep = 1.0 - tf.one_hot(channels, tf.shape(acts)[-1], dtype=acts.dtype)
            copies = acts * keep[:, None, None, :]
            return split.back(copies, [tf.repeat(c, n, axis=0) for c in context])

        return ablated

    return model.derived(("cam_ablated_back", layer), build)


def ablationcam_map(ctx: MethodContext) -> np.ndarray:
    """AblationCAM: the activations weighted by :func:`ablationcam_weights`; (h, w) float32."""
    return channel_map(ctx.forward().activations, ablationcam_weights(ctx))


# --------------------------------------------------------------------------------------------
# Pixel-gradient methods
# --------------------------------------------------------------------------------------------
def _pixel_gradients(model: LoadedModel, pixels: np.ndarray, target: Target, what: str,
                     progress: ProgressFn | None, should_stop: StopFn | None,
                     start: float = 0.0, share: float = 1.0):
    """Scores (N,) and gradients (N, H, W, C) for many pixel arrays, in batches of at most
    :data:`BATCH_SIZE`, of (nearly) equal size: a last batch of one image costs more per image."""
    has_logits, _, pixel_gradient = _scorer(model)
    _require_logits(has_logits, model, target)
    units = int(model.model.outputs[0].shape[-1])
    v_logit, v_prob, offset = score_coefficients(target, model.info.output_kind, units)
    n = len(pixels)
    scores = np.zeros(n, dtype="float32")
    grads = np.zeros(pixels.shape, dtype="float32")
    batches = max(1, math.ceil(n / BATCH_SIZE))
    bounds = [round(b * n / batches) for b in range(batches + 1)]  # 65 steps: 5 x 13, not 4 x 16 + 1
    for b in range(batches):
        _stop_check(should_stop, what)
        sl = slice(bounds[b], bounds[b + 1])
        s, g = pixel_gradient(tf.constant(pixels[sl], dtype=tf.float32), v_logit, v_prob, offset)
        scores[sl] = np.asarray(s)
        grads[sl] = np.asarray(g)
        _report(progress, start + share * (b + 1) / batches, f"{sl.stop} of {n} gradients")
    return scores, grads


def saliency_map(ctx: MethodContext) -> np.ndarray:
    """Vanilla saliency (Simonyan et al.): the largest absolute pixel gradient over the colour
    channels; (H, W) float32."""
    _, grads = _pixel_gradients(ctx.model, ctx.image.pixels[None], ctx.target, "Saliency",
                                ctx.progress, ctx.should_stop)
    return np.abs(grads[0]).max(axis=-1)


def smoothgrad_map(ctx: MethodContext, *, samples: int, noise: float, seed: int) -> np.ndarray:
    """SmoothGrad (Smilkov et al.): magnitude of the mean gradient of ``samples`` noisy copies
    (Gaussian noise, ``noise`` x 255 standard deviation, seeded); (H, W) float32."""
    rng = np.random.default_rng(seed)
    pixels = ctx.image.pixels
    sigma = noise * 255.0  # noise level as a fraction of the pixel range [0, 255]
    noisy = pixels[None] + rng.normal(0.0, sigma, (samples,) + pixels.shape)
    _, grads = _pixel_gradients(ctx.model, noisy.astype("float32"), ctx.target, "SmoothGrad",
                                ctx.progress, ctx.should_stop)
    # Smilkov et al.: average the gradients of the noisy copies, then take magnitudes
    return np.abs(grads.mean(axis=0)).max(axis=-1)


def integrated_gradients_map(ctx: MethodContext, *, steps: int, baseline: float):
    """Integrated Gradients (Sundararajan et al.), trapezoidal rule over ``steps`` steps from a
    constant ``baseline`` image.

    Returns
    -------
    raw : np.ndarray
        (H, W) float32, the absolute attributions summed over colour channels.
    extras : dict
        ``attribution_sum`` (signed sum of all attributions) and ``score_difference``
        (score(image) - score(baseline)); completeness says they agree as ``steps`` grows.
    """
    x = ctx.image.pixels.astype("float32")
    base = np.full_like(x, baseline)
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype="float32")
    path = base[None] + alphas[:, None, None, None] * (x - base)[None]
    scores, grads = _pixel_gradients(ctx.model, path, ctx.target, "Integrated Gradients",
                                     ctx.progress, ctx.should_stop)
    # Trapezoidal rule over the straight path from the baseline to the image
    avg = (grads[0] / 2 + grads[1:-1].sum(axis=0) + grads[-1] / 2) / steps
    attributions = (x - base) * avg
    extras = {
        "attribution_sum": float(attributions.astype("float64").sum()),
        "score_difference": float(scores[-1]) - float(scores[0]),
    }
    return np.abs(attributions).sum(axis=-1), extras


# --------------------------------------------------------------------------------------------
# Perturbation methods
# --------------------------------------------------------------------------------------------
def occlusion_map(ctx: MethodContext, *, patch: int, stride: int, fill: float) -> np.ndarray:
    """Occlusion (Zeiler & Fergus 2014): the score drop when a square patch hides each place.

    The patch (``patch`` x ``patch`` model pixels, all channels set to ``fill``) moves by
    ``stride`` pixels; the last row and column of positions sit flush with the far edges, so
    every pixel is covered when ``stride <= patch``. The unoccluded image is scored in the same
    batches. A pixel's value is the mean drop ``score(image) - score(occluded)`` over the
    patches covering it (0 where none does).

    Returns
    -------
    np.ndarray
        (H, W) float32, signed.

    Raises
    ------
    ParameterError
        More than :data:`viz_core.methods.registry.MAX_PASSES` patch positions.
    """
    h, w, _ = ctx.model.info.input_shape
    ys = methods._occlusion_positions(h, patch, stride)
    xs = methods._occlusion_positions(w, patch, stride)
    corners = [(y, x) for y in ys for x in xs]
    if len(corners) > methods.MAX_PASSES:
        raise ParameterError(
            f"Occlusion with patch {patch} and stride {stride} needs {len(corners)} model passes "
            f"on this {w}x{h} input; at most {methods.MAX_PASSES}: choose a larger stride.")
    ph, pw = min(patch, h), min(patch, w)
    pixels = ctx.image.pixels.astype("float32")

    def batch(lo: int, hi: int) -> np.ndarray:
        copies = np.repeat(pixels[None], hi - lo, axis=0)
        for i, (y, x) in enumerate(corners[lo:hi]):
            copies[i, y:y + ph, x:x + pw, :] = fill
        return copies

    # the unoccluded image is scored in the same batches
    scores = ctx.image_scores(len(corners), batch, "occluded copies",
                              with_image=True).astype("float64")
    drops = ctx.image_score() - scores
    total = np.zeros((h, w))
    count = np.zeros((h, w))
    for (y, x), drop in zip(corners, drops):
        total[y:y + ph, x:x + pw] += drop
        count[y:y + ph, x:x + pw] += 1
    return (total / np.maximum(count, 1)).astype("float32")


def rise_masks(height: int, width: int, count: int, *, cells: int, keep: float, seed: int,
               start: int = 0, stop: int | None = None) -> np.ndarray:
    """RISE's random masks ``start`` to ``stop`` of ``count`` (Petsiuk et al. 2018).

    Each mask is a ``cells`` x ``cells`` grid of cells kept with probability ``keep``,
    upsampled bilinearly to ``(cells + 1)`` cell sizes and cropped at a random shift of less
    than one cell, so mask edges fall anywhere. The grids and shifts of all ``count`` masks are
    drawn first from ``numpy.random.default_rng(seed)``: a mask does not depend on how the
    masks are batched.

    Returns
    -------
    np.ndarray
        (stop - start, height, width) float32 in [0, 1].
    """
    stop = count if stop is None else stop
    rng = np.random.default_rng(seed)
    grids = rng.random((count, cells, cells)) < keep
    cell_h, cell_w = math.ceil(height / cells), math.ceil(width / cells)
    shift_y = rng.integers(0, cell_h, count)
    shift_x = rng.integers(0, cell_w, count)
    up = resize(grids[start:stop].astype("float32"),
                (stop - start, (cells + 1) * cell_h, (cells + 1) * cell_w), order=1,
                mode="reflect", anti_aliasing=False, preserve_range=True)
    masks = np.empty((stop - start, height, width), dtype="float32")
    for i, n in enumerate(range(start, stop)):
        masks[i] = up[i, shift_y[n]:shift_y[n] + height, shift_x[n]:shift_x[n] + width]
    return masks


def rise_map(ctx: MethodContext, *, masks: int, cells: int, keep: float,
             seed: int) -> np.ndarray:
    """RISE (Petsiuk et al. 2018): the masks weighted by the class score of the masked image.

    ``sum_i (s_i - mean(s)) M_i / (masks * keep)``, where ``s_i`` is the target score of the
    image multiplied by mask ``M_i`` (:func:`rise_masks`). The paper weighs by ``s_i``; taking
    off the mean score removes a near-constant ``mean(s) * E[M] / keep`` from every pixel, so
    the map does not depend on the score's offset (a logit can be negative, a single sigmoid's
    class 0 is scored by ``-logit``).

    Returns
    -------
    np.ndarray
        (H, W) float32, signed.
    """
    h, w, _ = ctx.model.info.input_shape
    pixels = ctx.image.pixels.astype("float32")
    weighted = np.zeros((h, w))
    covered = np.zeros((h, w))

    current = {}  # the batch's masks, summed once its scores are in (never all in memory)

    def batch(lo: int, hi: int) -> np.ndarray:
        current["masks"] = rise_masks(h, w, masks, cells=cells, keep=keep, seed=seed,
                                      start=lo, stop=hi)
        return pixels[None] * current["masks"][..., None]

    def scored(lo: int, hi: int, batch_scores: np.ndarray) -> None:
        nonlocal weighted, covered
        weighted += np.tensordot(batch_scores.astype("float64"), current["masks"], axes=(0, 0))
        covered += current["masks"].sum(axis=0)

    scores = ctx.image_scores(masks, batch, "masked copies", scored,
                              with_image=True).astype("float64")
    return ((weighted - scores.mean() * covered) / (masks * keep)).astype("float32")


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
        A registered method (:func:`viz_core.methods.registry.names`).
    layer : str or None
        For the layer methods: a layer path with feature maps (nested ones like
        ``"vgg16/block5_conv3"`` too); None means the last conv layer. Ignored by the pixel and
        perturbation methods.
    progress : callable(fraction, message) or None
    should_stop : callable() -> bool, or None
        Checked between batches; True raises :class:`~viz_core.errors.Cancelled`.
    **params
        The method's parameters (its :class:`~viz_core.methods.registry.ParamSpec` list), validated by
        the registry: e.g. ``smoothgrad``: ``samples``, ``noise``, ``seed``;
        ``integrated_gradients``: ``steps``, ``baseline``; ``occlusion``: ``patch``,
        ``stride``, ``fill``; ``rise``: ``masks``, ``cells``, ``keep``, ``seed``.

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
    spec = methods.get(method)
    settings = spec.validate(params)
    _check_image(model, image)
    kind = model.info.output_kind
    units = int(model.model.outputs[0].shape[-1])
    score_coefficients(target, kind, units)  # validate the class early
    height, width = model.info.input_shape[:2]
    extras: dict = {}
    _report(progress, 0.0, f"{spec.title}: starting")
    compute = spec.function()
    if spec.uses_layer:
        layer_path = resolve_layer(model, layer)
        if spec.inputs == "gradients":
            # gradient first: for a new image it runs together with the forward pass
            grads, score = layer_gradient(model, image, target, layer_path)
            forward = layer_forward(model, image, layer_path)
            raw = compute(forward.activations, grads, **settings)
        else:
            forward = layer_forward(model, image, layer_path)
            _require_logits(forward.logits is not None, model, target)
            if spec.inputs == "activations":
                raw = compute(forward.activations, **settings)
            else:
                ctx = MethodContext(model, image, target, layer_path, progress, should_stop,
                                    spec.title)
                raw, extras = _with_extras(compute(ctx, **settings))
            score = _target_score(forward.logits, forward.output, target, kind)
        probabilities = forward.probabilities
    else:
        layer_path = PIXEL_LAYER
        ctx = MethodContext(model, image, target, None, progress, should_stop, spec.title)
        raw, extras = _with_extras(compute(ctx, **settings))
        logits, output = _image_outputs(model, image)
        score = _target_score(logits, output, target, kind)
        probabilities = class_probabilities(output[None], kind)[0]
    raw = np.asarray(raw, dtype="float32")
    if raw.ndim != 2 or not np.all(np.isfinite(raw)):
        raise ModelError(f"The method {method!r} made a map of shape {raw.shape} with "
                         f"{int(np.sum(~np.isfinite(raw)))} values that are not numbers; "
                         "expected a finite (height, width) map.")
    heat = resize_map(np.maximum(raw, 0.0), height, width)
    peak = float(heat.max()) if heat.size else 0.0
    heat = (heat / peak if peak > 0 else np.zeros_like(heat)).astype("float32")
    _report(progress, 1.0, f"{spec.title}: done")
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


def _with_extras(result) -> tuple[np.ndarray, dict]:
    """A context method's result as ``(raw, extras)`` (it may return the map alone)."""
    if isinstance(result, tuple):
        raw, extras = result
        return raw, dict(extras)
    return result, {}


def forward_seconds(model: LoadedModel) -> float:
    """Seconds one image takes through the whole model on this machine.

    Measured once per model (cached with it): the compiled scorer on a blank image, traced by
    a first call, then the faster of two timed calls. Pages multiply a method's cost
    (:meth:`viz_core.methods.registry.MethodSpec.passes`) by it to say how long a slow method will take.
    """
    def measure() -> float:
        _, scores, _ = _scorer(model)
        x = tf.zeros((1, *model.info.input_shape), dtype=tf.float32)
        scores(x)
        times = []
        for _ in range(2):
            start = time.perf_counter()
            np.asarray(scores(x)[1])
            times.append(time.perf_counter() - start)
        return min(times)

    return model.derived(("cam_forward_seconds",), measure)


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
