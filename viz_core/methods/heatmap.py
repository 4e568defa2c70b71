"""Class heatmaps: where an image holds evidence for a class, by any registered method.

One call shape for every method::

    class_heatmap(model, image, Target(class_index), method="gradcam", layer=None, **params)

returns a :class:`ClassHeatmap`: a float32 map in [0, 1] at the model's input resolution, the
class, its probability, the layer and the parameters that produced it. The batched form::

    class_heatmaps(model, images, targets, method="layercam", layer=None, params=None)

returns one :class:`ClassHeatmap` per image with the same numbers (to 1e-4), through the same
kernels: layer methods and pixel-gradient methods run a whole batch through one forward and one
backward pass; the methods that run the model again (Score-CAM, AblationCAM, the perturbation
methods) go one image at a time. The dataset engine, the demo's evaluation and the public API
use it.

The score that is differentiated follows :mod:`viz_core.models.targets` (see
:mod:`viz_core.methods.scores`); methods are listed, with their parameters, ranges and costs, in
:mod:`viz_core.methods.registry`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import tensorflow as tf

from viz_core.errors import ModelError, ParameterError
from viz_core.inputs.intake import ModelImage
from viz_core.maps import resize_map
from viz_core.methods import registry as methods
from viz_core.methods.checks import check_image, resolve_layer
from viz_core.methods.context import (MethodContext, PixelBatch, ProgressFn, StopFn,
                                      check_stop, report)
from viz_core.methods.scores import require_logits, score_coefficients, target_score
from viz_core.methods.steps import (image_outputs, image_scores, layer_forward, layer_gradient,
                                    layer_gradients, pixel_scorer)
from viz_core.models.catalog import LoadedModel
from viz_core.models.targets import Target, class_probabilities

#: Score-CAM on the dashboard scores at most this many channels unless the user asks for more
#: (its ``page_default`` in :mod:`viz_core.methods.registry`).
PAGE_MAX_CHANNELS = methods.get("scorecam").param("max_channels").page_default
PIXEL_LAYER = "input"  # what ``ClassHeatmap.layer`` says for the pixel-gradient methods
#: Images per batch of :func:`class_heatmaps` unless the caller says otherwise.
DEFAULT_BATCH_SIZE = 32
# A pixel-gradient batch holds at most this many bytes of changed copies and their gradients
_PIXEL_BATCH_BYTES = 256 * 2**20


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
        A registered method (:func:`viz_core.methods.registry.names`).
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
    probabilities : np.ndarray or None
        (num_classes,) float32 in [0, 1]: the model's probability of every class on this image.
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
    probabilities: np.ndarray | None = None

    @property
    def empty(self) -> bool:
        """True when the map has no positive evidence at all (the heatmap is all zeros)."""
        return not bool(np.any(self.heatmap > 0))

    @property
    def peak(self) -> tuple[int, int]:
        """``(x, y)`` pixel of the heatmap's maximum at model input resolution (first on ties)."""
        row, col = np.unravel_index(int(np.argmax(self.heatmap)), self.heatmap.shape)
        return int(col), int(row)


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
    check_image(model, image)
    kind = model.info.output_kind
    units = int(model.model.outputs[0].shape[-1])
    score_coefficients(target, kind, units)  # validate the class early
    height, width = model.info.input_shape[:2]
    extras: dict = {}
    report(progress, 0.0, f"{spec.title}: starting")
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
            require_logits(forward.logits is not None, model, target)
            if spec.inputs == "activations":
                raw = compute(forward.activations, **settings)
            else:
                ctx = MethodContext(model, image, target, layer_path, progress, should_stop,
                                    spec.title)
                raw, extras = _with_extras(compute(ctx, **settings))
            score = target_score(forward.logits, forward.output, target, kind)
        probabilities = forward.probabilities
    else:
        layer_path = PIXEL_LAYER
        if spec.inputs == "pixel-gradients":
            batch = PixelBatch(model, image.pixels[None].astype("float32"), (target,),
                               progress, should_stop, spec.title)
            raw, extras = _with_extras(compute(batch, **settings))
            raw, extras = raw[0], {name: float(value[0]) for name, value in extras.items()}
        else:
            ctx = MethodContext(model, image, target, None, progress, should_stop, spec.title)
            raw, extras = _with_extras(compute(ctx, **settings))
        logits, output = image_outputs(model, image)
        score = target_score(logits, output, target, kind)
        probabilities = class_probabilities(output[None], kind)[0]
    raw = np.asarray(raw, dtype="float32")
    if raw.ndim != 2 or not np.all(np.isfinite(raw)):
        raise ModelError(f"The method {method!r} made a map of shape {raw.shape} with "
                         f"{int(np.sum(~np.isfinite(raw)))} values that are not numbers; "
                         "expected a finite (height, width) map.")
    heat = resize_map(np.maximum(raw, 0.0), height, width)
    peak = float(heat.max()) if heat.size else 0.0
    heat = (heat / peak if peak > 0 else np.zeros_like(heat)).astype("float32")
    report(progress, 1.0, f"{spec.title}: done")
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
        probabilities=np.asarray(probabilities, dtype="float32"),
    )


def class_heatmaps(
    model: LoadedModel,
    images: Sequence[ModelImage] | np.ndarray,
    targets: Sequence[Target | None] | Target | None = None,
    method: str = "gradcam",
    layer: str | None = None,
    params: dict | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> tuple[ClassHeatmap, ...]:
    """:func:`class_heatmap` of many images at once, one result per image, in order.

    Layer methods (``inputs="gradients"`` or ``"activations"``) run each batch through one
    forward pass and, for the gradient ones, one backward pass through the part of the network
    after the layer; pixel-gradient methods (``inputs="pixel-gradients"``) differentiate each
    batch's copies together, relevance propagation (LRP) each batch in one sweep. Methods that
    run the model again (``inputs="context"``: Score-CAM,
    AblationCAM, the perturbation methods) go one image at a time through
    :func:`class_heatmap`. Every map equals :func:`class_heatmap`'s for the image within 1e-4.
    Nothing is cached for the batched methods (a dataset would fill the caches).

    Parameters
    ----------
    model : LoadedModel
        Never modified.
    images : sequence of ModelImage, or np.ndarray
        Prepared for the model (``model.view(loaded_image)``), or an (N, H, W, C) float32 stack
        of pixels in [0, 255] at the model's input size (named ``image 0``, ``image 1``...).
    targets : sequence of (Target or None), a Target, or None
        One per image (a single Target serves every image); None: the image's most probable
        class, logit score.
    method : str
        A registered method.
    layer : str or None
        For the layer methods; None is the last conv layer.
    params : dict or None
        The method's parameters (validated by the registry, defaults filled in).
    progress : callable(fraction, message) or None
    should_stop : callable() -> bool, or None
        Checked between batches; True raises :class:`~viz_core.errors.Cancelled`.
    batch_size : int
        Images per forward/backward batch, 1 to 512 (pixel-gradient methods take fewer when
        their copies would not fit in 256 MB).

    Returns
    -------
    tuple of ClassHeatmap

    Raises
    ------
    ParameterError
        Unknown method, parameter, layer or class; images of the wrong size; targets of
        another length than the images.
    ModelError
        A logit score was asked for but the model's output activation cannot be undone.
    Cancelled
        ``should_stop()`` returned True.
    """
    spec = methods.get(method)
    settings = spec.validate(params)
    views = _as_views(model, images)
    wanted = _per_image_targets(model, targets, len(views))
    if not 1 <= int(batch_size) <= 512:
        raise ParameterError(f"The batch size must be 1 to 512; got {batch_size}.")
    if spec.uses_layer:
        layer_path = resolve_layer(model, layer)
    else:
        layer_path = PIXEL_LAYER
    if not views:
        return ()
    # relevance propagation takes a PixelBatch too: one compiled sweep per batch
    batched = (spec.inputs in ("gradients", "activations", "pixel-gradients")
               or spec.family == "relevance")
    size = int(batch_size)
    if spec.inputs == "pixel-gradients":
        copies = max(1.0, spec.passes(model.info, settings) / methods.GRADIENT_PASSES)
        per_image = copies * 2 * views[0].pixels.nbytes  # the copies and their gradients
        size = max(1, min(size, int(_PIXEL_BATCH_BYTES // per_image)))
    elif not batched:
        size = 1
    total = len(views)
    results: list[ClassHeatmap] = []
    report(progress, 0.0, f"{spec.title}: 0 of {total} images")
    for start in range(0, total, size):
        check_stop(should_stop, spec.title)
        chunk = slice(start, min(total, start + size))
        if spec.uses_layer and batched:
            results += _layer_batch(model, spec, settings, views[chunk], wanted[chunk],
                                    layer_path)
        elif batched:
            results += _pixel_batch(model, spec, settings, views[chunk], wanted[chunk],
                                    should_stop)
        else:
            view, target = views[start], wanted[start]
            if target is None:
                target = Target(top_classes(model, view, 1)[0][0])
            results.append(class_heatmap(model, view, target, method, layer_path
                                         if spec.uses_layer else None,
                                         should_stop=should_stop, **settings))
        report(progress, chunk.stop / total, f"{spec.title}: {chunk.stop} of {total} images")
    return tuple(results)


def _as_views(model: LoadedModel, images) -> list[ModelImage]:
    """``images`` as ModelImages checked against the model's input size."""
    if isinstance(images, np.ndarray):
        expected = tuple(model.info.input_shape)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ParameterError(f"Expected a stack of images shaped (N, {expected[0]}, "
                                 f"{expected[1]}, {expected[2]}); got {images.shape}.")
        views = []
        for i, pixels in enumerate(np.asarray(images, dtype="float32")):
            digest = hashlib.sha256(pixels.tobytes()).hexdigest()
            shown = np.clip(pixels + 0.5, 0, 255).astype("uint8")
            views.append(ModelImage(np.repeat(shown, 3, axis=2) if shown.shape[2] == 1
                                    else shown, pixels, f"image {i}", digest))
        return views
    views = list(images)
    for view in views:
        check_image(model, view)
    return views


def _per_image_targets(model: LoadedModel, targets, count: int) -> list[Target | None]:
    if targets is None or isinstance(targets, Target):
        wanted = [targets] * count
    else:
        wanted = list(targets)
        if len(wanted) != count:
            raise ParameterError(f"Give one target per image: {count} images, "
                                 f"{len(wanted)} targets.")
    units = int(model.model.outputs[0].shape[-1])
    for target in wanted:
        if target is not None:
            score_coefficients(target, model.info.output_kind, units)  # the class is checked
    return wanted


def _heatmaps(raw: np.ndarray, height: int, width: int) -> np.ndarray:
    """(n, H, W) float32 in [0, 1]: each map's positive part resized, over its maximum.

    One resize for the whole batch: ``tf.image.resize`` (bilinear, half-pixel centres) gives
    :func:`viz_core.maps.resize_map`'s numbers (scikit-image, order 1) to 1e-6, and a loop over
    the images cost a third of a batch.
    """
    heat = np.maximum(raw, 0.0)
    if heat.shape[1:] != (height, width):
        heat = tf.image.resize(heat[..., None], (height, width), method="bilinear").numpy()[
            ..., 0]
    peak = heat.max(axis=(1, 2), keepdims=True) if heat.size else np.zeros((len(heat), 1, 1))
    heat = np.where(peak > 0, heat / np.where(peak > 0, peak, 1.0), 0.0)
    return np.clip(heat, 0.0, 1.0).astype("float32")


def _checked_raw(raw, method: str, count: int) -> np.ndarray:
    raw = np.asarray(raw, dtype="float32")
    if raw.ndim != 3 or len(raw) != count or not np.all(np.isfinite(raw)):
        raise ModelError(f"The method {method!r} made maps of shape {raw.shape} with "
                         f"{int(np.sum(~np.isfinite(raw)))} values that are not numbers; "
                         f"expected {count} finite (height, width) maps.")
    return raw


def _results(model: LoadedModel, spec, settings: dict, views, raw: np.ndarray, classes,
             score_kinds, scores, probabilities, layer: str, extras: dict) -> list[ClassHeatmap]:
    height, width = model.info.input_shape[:2]
    heat = _heatmaps(raw, height, width)
    params = tuple(sorted(settings.items()))
    out = []
    for i, view in enumerate(views):
        k = int(classes[i])
        out.append(ClassHeatmap(
            heatmap=heat[i], raw=raw[i], class_index=k, label=model.label(k),
            probability=float(probabilities[i, k]), score=float(scores[i]),
            score_kind=score_kinds[i], method=spec.name, layer=layer, params=params,
            image=view.name,
            attribution_sum=(float(extras["attribution_sum"][i])
                             if "attribution_sum" in extras else None),
            score_difference=(float(extras["score_difference"][i])
                              if "score_difference" in extras else None),
            probabilities=probabilities[i].copy()))
    return out


def _layer_batch(model, spec, settings, views, targets, layer: str) -> list[ClassHeatmap]:
    """A batch of a layer method: one forward (and backward) pass, then the kernel on the stack."""
    classes = np.asarray([-1 if t is None else int(t.class_index) for t in targets], np.int32)
    kinds = ["logit" if t is None else t.score for t in targets]
    pixels = np.stack([v.pixels for v in views]).astype("float32")
    gradients = spec.inputs == "gradients"
    step = layer_gradients(model, pixels, classes, np.asarray([k == "logit" for k in kinds]),
                           layer, gradients=gradients)
    compute = spec.function()
    raw = (compute(step.activations, step.gradients, **settings) if gradients
           else compute(step.activations, **settings))
    probabilities = class_probabilities(step.output, model.info.output_kind)
    return _results(model, spec, settings, views, _checked_raw(raw, spec.name, len(views)),
                    step.classes, kinds, step.scores, probabilities, layer, {})


def _pixel_batch(model, spec, settings, views, targets, should_stop) -> list[ClassHeatmap]:
    """A batch of a pixel-gradient method: one forward pass for the classes and scores, then
    the method's copies differentiated together."""
    kind = model.info.output_kind
    pixels = np.stack([v.pixels for v in views]).astype("float32")
    has_logits, scorer, _ = pixel_scorer(model)
    lg, out = (np.asarray(t, dtype="float32") for t in scorer(tf.constant(pixels)))
    logits = lg if has_logits else None
    probabilities = class_probabilities(out, kind)
    chosen = [Target(int(np.argmax(probabilities[i]))) if t is None else t
              for i, t in enumerate(targets)]
    for target in chosen:
        require_logits(has_logits, model, target)
    batch = PixelBatch(model, pixels, tuple(chosen), None, should_stop, spec.title)
    raw, extras = _with_extras(spec.function()(batch, **settings))
    scores = [target_score(None if logits is None else logits[i], out[i], t, kind)
              for i, t in enumerate(chosen)]
    return _results(model, spec, settings, views, _checked_raw(raw, spec.name, len(views)),
                    [t.class_index for t in chosen], [t.score for t in chosen], scores,
                    probabilities, PIXEL_LAYER, extras)


def _with_extras(result) -> tuple[np.ndarray, dict]:
    """A context method's result as ``(raw, extras)`` (it may return the map alone)."""
    if isinstance(result, tuple):
        raw, extras = result
        return raw, dict(extras)
    return result, {}


def top_classes(model: LoadedModel, image: ModelImage, top: int = 5) -> tuple[tuple[int, str, float], ...]:
    """The ``top`` most probable classes of the image: ``(class_index, label, probability)``.

    Uses the cached forward pass, so asking first and explaining after costs one pass.
    """
    _, output = image_scores(model, image)
    probs = class_probabilities(output[None], model.info.output_kind)[0]
    order = np.argsort(-probs, kind="stable")[: max(1, min(int(top), probs.size))]
    return tuple((int(i), model.label(int(i)), float(probs[i])) for i in order)
