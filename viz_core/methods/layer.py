"""The layer methods: class heatmaps from one layer's activations ``A`` (the Grad-CAM family).

The gradient methods (``inputs="gradients"`` in :mod:`viz_core.methods.registry`) are functions
``fn(A, G) -> map`` of the activations and the class score's gradient ``G``; they work on a
stack (N, h, w, k) -> (N, h, w) as on one image (h, w, k) -> (h, w), so one kernel serves
:func:`viz_core.methods.heatmap.class_heatmap` and the batched
:func:`viz_core.methods.heatmap.class_heatmaps`. Most differ only in their channel weights
(Grad-CAM, Grad-CAM++, XGradCAM: ``sum_k w_k A_k``); LayerCAM and HiResCAM weigh each position.

* ``gradcam`` (Selvaraju et al. 2017: channel weights = spatial mean of ``G``), ``gradcam++``
  (Chattopadhyay et al. 2018), ``layercam`` (Jiang et al. 2021: ``sum_k ReLU(G_k) A_k``),
  ``hirescam`` (Draelos & Carin 2020: ``sum_k G_k A_k``), ``xgradcam`` (Fu et al. 2020);
* ``eigencam`` (Muhammad & Yeasin 2020: first principal component of ``A``, no gradient),
  ``fn(A)``, a stack or one image;
* ``scorecam`` (Wang et al. 2020: the image masked by each channel, scored in batches) and
  ``ablationcam`` (Desai & Ramaswamy 2020: the score drop with each channel zeroed, through the
  part of the network after the layer only) run the model again, one image at a time, from a
  :class:`viz_core.methods.context.MethodContext`.
"""
from __future__ import annotations

import hashlib
import math
from typing import Callable

import numpy as np
import tensorflow as tf
from scipy.linalg import eigh
from skimage.transform import resize
from threadpoolctl import threadpool_limits

from viz_core.errors import ModelError
from viz_core.inputs.intake import ModelImage
from viz_core.methods.context import MethodContext, ProgressFn, StopFn, check_stop, report
from viz_core.methods.scores import (require_logits, score_coefficients, score_tensor,
                                     target_score)
from viz_core.methods.steps import (BATCH_SIZE, masked_score_cache, model_split,
                                    pixel_scorer)
from viz_core.models.catalog import LoadedModel
from viz_core.models.targets import Target

_EPS = 1e-7
_SPATIAL = (-3, -2)  # the (h, w) axes of (h, w, k) and of (N, h, w, k) alike


# --------------------------------------------------------------------------------------------
# Gradient methods: fn(A, G), one image (h, w, k) or a stack (N, h, w, k)
# --------------------------------------------------------------------------------------------
def channel_map(activations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_k weights[..., k] * activations[..., k]``.

    Parameters
    ----------
    activations : (h, w, k) or (N, h, w, k)
    weights : (k,) or (N, k)

    Returns
    -------
    np.ndarray
        (h, w) or (N, h, w) float32.
    """
    return np.einsum("...hwk,...k->...hw", activations, weights).astype("float32")


def gradcam_weights(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Grad-CAM channel weights: the spatial mean of the gradient.

    Parameters
    ----------
    activations, grads : (h, w, k) or (N, h, w, k) float32

    Returns
    -------
    np.ndarray
        (k,) or (N, k) float32.
    """
    return np.asarray(grads).mean(axis=_SPATIAL).astype("float32")


def gradcam_pp_weights(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Grad-CAM++ channel weights (Chattopadhyay et al., eq. 19, exponential-score form).

    ``alpha = g^2 / (2 g^2 + sum_ij(A) g^3)``, ``w_k = sum_ij alpha * ReLU(g)``; the higher
    derivatives are powers of the first, as in ``pytorch-grad-cam`` and ``tf-keras-vis``.

    Returns
    -------
    np.ndarray
        (k,) or (N, k) float32.
    """
    g = np.asarray(grads).astype("float64")
    g2 = g * g
    g3 = g2 * g
    total = np.asarray(activations).astype("float64").sum(axis=_SPATIAL, keepdims=True)
    denominator = 2.0 * g2 + total * g3
    alpha = np.where(g != 0.0, g2 / np.where(denominator != 0.0, denominator, 1.0), 0.0)
    return (alpha * np.maximum(g, 0.0)).sum(axis=_SPATIAL).astype("float32")


def gradcam_map(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017): activations weighted by :func:`gradcam_weights`.

    Parameters
    ----------
    activations, grads : (h, w, k) or (N, h, w, k) float32

    Returns
    -------
    np.ndarray
        (h, w) or (N, h, w) float32, signed (``class_heatmap`` keeps the positive part).
    """
    return channel_map(activations, gradcam_weights(activations, grads))


def gradcam_pp_map(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Grad-CAM++: activations weighted by :func:`gradcam_pp_weights`; (h, w) or (N, h, w)."""
    return channel_map(activations, gradcam_pp_weights(activations, grads))


def layercam_map(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """LayerCAM (Jiang et al. 2021): ``sum_k ReLU(g_k) * A_k``, position by position.

    Parameters
    ----------
    activations, grads : (h, w, k) or (N, h, w, k) float32

    Returns
    -------
    np.ndarray
        (h, w) or (N, h, w) float32 (>= 0 wherever the activations are, e.g. after a ReLU).
    """
    # float32 throughout: a float64 copy of a batch's activations cost more than the sum
    return np.einsum("...k,...k->...", np.maximum(np.asarray(grads, dtype="float32"), 0.0),
                     np.asarray(activations, dtype="float32"))


def hirescam_map(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """HiResCAM (Draelos & Carin 2020): ``sum_k g_k * A_k``, element-wise; (h, w) or (N, h, w)."""
    return np.einsum("...k,...k->...", np.asarray(grads, dtype="float32"),
                     np.asarray(activations, dtype="float32"))


def xgradcam_map(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """XGradCAM (Fu et al. 2020): channel weights ``sum_ij(g A) / sum_ij(A)``; (h, w) or
    (N, h, w) float32.

    A channel that is zero everywhere gets weight 0 (an epsilon in the denominator, as in
    ``pytorch-grad-cam``).
    """
    a = np.asarray(activations).astype("float64")
    weights = ((np.asarray(grads).astype("float64") * a).sum(axis=_SPATIAL)
               / (a.sum(axis=_SPATIAL) + _EPS))
    return channel_map(a, weights)


# --------------------------------------------------------------------------------------------
# Activation methods: fn(A)
# --------------------------------------------------------------------------------------------
def eigencam_map(activations: np.ndarray) -> np.ndarray:
    """EigenCAM (Muhammad & Yeasin 2020): the first principal component of the activations,
    per image (see :func:`_eigencam_one`).

    Parameters
    ----------
    activations : (h, w, k) or (N, h, w, k) float32

    Returns
    -------
    np.ndarray
        (h, w) or (N, h, w) float32, signed, mean 0 per image.
    """
    activations = np.asarray(activations)
    if activations.ndim == 4:
        return np.stack([_eigencam_one(a) for a in activations]) if len(activations) else (
            np.zeros(activations.shape[:3], dtype="float32"))
    return _eigencam_one(activations)


def _eigencam_one(activations: np.ndarray) -> np.ndarray:
    """EigenCAM of one image's (h, w, k) activations: the first principal component.

    Positions are samples and channels features: the (h*w, k) matrix ``X`` is centred per
    channel and projected on its first principal direction. The projection is ``X v`` with
    ``v`` the top eigenvector of the (k, k) Gram matrix ``X^T X``, or equally ``s u`` with
    ``u`` the top eigenvector of the (h*w, h*w) matrix ``X X^T`` and ``s^2`` its eigenvalue:
    whichever side is smaller is decomposed (196 x 196 instead of a 196 x 512 SVD at VGG16's
    last layer). The sign of an eigenvector is arbitrary; it is chosen so the map correlates
    positively with the layer's summed activation (``sum_k A_k``, centred), i.e. it points
    where the layer is active. No gradient and no class: every class gets the same map.

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


# --------------------------------------------------------------------------------------------
# Context methods: fn(ctx), one image, the model runs again
# --------------------------------------------------------------------------------------------
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
    has_logits, scores, _ = pixel_scorer(model)
    require_logits(has_logits, model, target)
    h, w, _ = model.info.input_shape
    units = int(model.model.outputs[0].shape[-1])
    v_logit, v_prob, offset = score_coefficients(target, model.info.output_kind, units)
    k = activations.shape[-1]
    spread = activations.max(axis=(0, 1)) - activations.min(axis=(0, 1))
    usable = np.flatnonzero(spread > _EPS)
    if max_channels is not None and usable.size > max_channels:
        means = activations.mean(axis=(0, 1))[usable]
        usable = np.sort(usable[np.argsort(-means, kind="stable")[:max_channels]])
    cache = masked_score_cache(model)
    base = (image.digest, hashlib.sha256(np.ascontiguousarray(activations).tobytes()).hexdigest())
    rows = {int(c): cache.get((base, int(c))) for c in usable}  # c -> (logits row, output row)
    todo = np.array([c for c, row in rows.items() if row is None], dtype=int)
    pixels = tf.constant(image.pixels[None], dtype=tf.float32)
    batches = math.ceil(todo.size / BATCH_SIZE)
    for b in range(batches):
        check_stop(should_stop, "Score-CAM")
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
        report(progress, (b + 1) / batches, f"{b * BATCH_SIZE + chunk.size} of {todo.size} "
                "channels scored")
    channel_scores = np.zeros(usable.size, dtype="float32")
    if usable.size:
        lg = np.stack([rows[int(c)][0] for c in usable])
        out = np.stack([rows[int(c)][1] for c in usable])
        channel_scores = np.asarray(score_tensor(lg, out, v_logit, v_prob, offset,
                                           model.info.output_kind), dtype="float32")
    weights = np.zeros(k, dtype="float32")
    if usable.size:
        if target.score == "logit":
            shifted = np.exp(channel_scores.astype("float64") - channel_scores.max())
            weights[usable] = shifted / shifted.sum()
        else:
            weights[usable] = channel_scores
    return weights


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
    split = model_split(model, layer)
    if split.back is None:
        raise ModelError(
            f"AblationCAM runs the part of {model.title!r} after {layer!r} alone, but this "
            "model cannot be cut there (e.g. the same layer name inside and outside a nested "
            "model). Use Score-CAM or Grad-CAM instead.")
    require_logits(split.has_logits, model, ctx.target)
    forward = ctx.forward()
    acts = forward.activations
    k = acts.shape[-1]
    units = int(model.model.outputs[0].shape[-1])
    kind = model.info.output_kind
    v_logit, v_prob, offset = score_coefficients(ctx.target, kind, units)
    usable = np.flatnonzero(np.abs(acts).max(axis=(0, 1)) > 0)
    cache = masked_score_cache(model)
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
        ablated = np.asarray(score_tensor(lg, out, v_logit, v_prob, offset, kind), dtype="float64")
        score = target_score(forward.logits, forward.output, ctx.target, kind)
        weights[usable] = (score - ablated) / max(abs(score), _EPS)
    return weights


def _ablated_back(model: LoadedModel, layer: str) -> Callable:
    """Compiled ``(acts (1, h, w, k), context, channels (n,) int32) -> (logits, output)``:
    the back half of the model on ``n`` copies of the activations, copy ``i`` with channel
    ``channels[i]`` zeroed. The copies are made inside the graph, so a batch of 64 copies of
    VGG16's last layer (25 MB) is never built in numpy and copied into TensorFlow."""
    split = model_split(model, layer)

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
