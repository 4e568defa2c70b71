"""CRAFT (Fel et al., CVPR 2023): what a model found in a class's images, as a few concepts.

1. **Crops.** Each image is cut into square crops (side :func:`crop_side`, 64 px of a 224 px
   input as in the paper, about 16 per image; stride 0.8 of the side), each resized back to the
   model's input size.
2. **Activations.** The crops go through the front half of the model cut at a layer (the cut the
   heatmaps use, :func:`viz_core.methods.steps.model_split`); each crop's activations are
   averaged over positions to one non-negative vector of the layer's channels.
3. **Concepts.** Non-negative matrix factorisation (scikit-learn's ``NMF``) writes the crops'
   activations ``A (crops, channels) ~ U W``: the rows of ``W`` are the concepts (directions in
   the layer's channels), ``U`` how much of each a crop holds. The reconstruction error says how
   much of the activations the concepts leave out.
4. **Importance.** Each image's activations at every position are written in the concepts
   (``U`` per position, ``W`` fixed); random masks in [0, 1] scale each concept's coefficients
   everywhere, the rest of the model scores the class, and Sobol total indices (Jansen's
   estimator on Saltelli's A / B / A_B^i design, quasi-random Sobol points) measure how much of
   the score's variance each concept carries, alone and with the others. Averaged over the
   images and normalised to sum to 1.
5. **Maps.** A concept's map in an image is its coefficient at each position of the layer,
   resized to the model's input size (the paper's concept attribution maps use the same
   coefficients).

:func:`craft` runs it on arrays; :mod:`viz_core.dataset.concepts` reads a class's images from
a dataset and keeps results on disk. Pictures are drawn by :mod:`viz_core.render.concepts`.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from viz_core.errors import Cancelled, ModelError, ParameterError
from viz_core.maps import resize_map
from viz_core.models.loaded import LoadedModel

DEFAULT_CONCEPTS = 10  # the paper's and xplique's examples
MAX_CONCEPTS = 32
DEFAULT_DESIGNS = 32  # Sobol points per matrix (A and B); 32 * (K + 2) model calls per image
DEFAULT_TOP_CROPS = 8
PAPER_CROP, PAPER_SIDE = 64, 224  # the paper's crop side on a 224 px input
STRIDE_FRACTION = 0.8
BATCH = 64  # crops or masked activations per pass
_EPS = 1e-12

ProgressFn = Callable[[float, str], None]
StopFn = Callable[[], bool]


def crop_side(input_size: tuple[int, int]) -> int:
    """Side in pixels of a crop: the paper's 64 / 224 of the input's shorter side (>= 4)."""
    return max(4, int(round(min(input_size) * PAPER_CROP / PAPER_SIDE)))


def crop_boxes(height: int, width: int, side: int) -> np.ndarray:
    """(n, 4) int64 ``(x0, y0, x1, y1)`` of the crops of one ``height`` x ``width`` image,
    row by row, stride ``0.8 * side``; ``x1``, ``y1`` exclusive."""
    if side > min(height, width):
        raise ParameterError(f"A crop of {side} px does not fit in a {height}x{width} image.")
    stride = max(1, int(side * STRIDE_FRACTION))
    ys = range(0, height - side + 1, stride)
    xs = range(0, width - side + 1, stride)
    return np.asarray([(x, y, x + side, y + side) for y in ys for x in xs], np.int64)


def craft_cost(images: int, input_size: tuple[int, int], concepts: int = DEFAULT_CONCEPTS,
               designs: int = DEFAULT_DESIGNS) -> tuple[int, int]:
    """What :func:`craft` costs: ``(whole passes, back passes)``: crops and images through the
    layers up to the cut, and the masked activations through the layers after it."""
    crops = len(crop_boxes(*input_size, crop_side(input_size)))
    return images * (crops + 1), images * int(designs) * (int(concepts) + 2)


# --------------------------------------------------------------------------------------------
# Sobol total indices
# --------------------------------------------------------------------------------------------
def sobol_design(dimensions: int, designs: int, seed: int = 0) -> np.ndarray:
    """Saltelli's design for total indices: rows ``A`` (designs), ``B`` (designs), then for each
    dimension ``i`` the matrix ``A_B^i`` (``A`` with column ``i`` taken from ``B``).

    Returns
    -------
    np.ndarray
        ((dimensions + 2) * designs, dimensions) float32 in [0, 1]: scrambled Sobol points.
    """
    from scipy.stats import qmc

    points = qmc.Sobol(2 * dimensions, scramble=True, seed=seed).random(designs)
    a, b = points[:, :dimensions], points[:, dimensions:]
    mixed = np.repeat(a[None], dimensions, axis=0)
    for i in range(dimensions):
        mixed[i, :, i] = b[:, i]
    return np.concatenate([a, b, mixed.reshape(-1, dimensions)]).astype(np.float32)


def jansen_total_indices(outputs: np.ndarray, designs: int, dimensions: int) -> np.ndarray:
    """Total Sobol indices from the outputs of :func:`sobol_design`'s rows (Jansen 1999):
    ``S_T,i = mean((f(A) - f(A_B^i))^2) / (2 Var f(A))``.

    Parameters
    ----------
    outputs : np.ndarray
        ((dimensions + 2) * designs,) the model's score for each row of the design.

    Returns
    -------
    np.ndarray
        (dimensions,) float64, >= 0; all 0 when the score does not vary.
    """
    y = np.asarray(outputs, np.float64)
    a = y[:designs]
    mixed = y[2 * designs:].reshape(dimensions, designs)
    variance = a.var(ddof=1) if designs > 1 else 0.0
    if variance <= _EPS:
        return np.zeros(dimensions)
    return ((a[None] - mixed) ** 2).mean(axis=1) / (2.0 * variance)


# --------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Craft:
    """A class's concepts at a layer, their importance, where they are and their best crops.

    Concepts are ordered by importance, most important first.

    Attributes
    ----------
    layer : str
    class_index : int
    score : str
        ``"logit"`` or ``"probability"``: what the importance was measured on.
    importance : np.ndarray
        (K,) float64, Sobol total indices averaged over the images, normalised to sum to 1.
    total_indices : np.ndarray
        (N, K) float64 each image's total indices before averaging and normalising.
    bank : np.ndarray
        (K, C) float32 the concepts as directions in the layer's C channels (``W``).
    coefficients : np.ndarray
        (N, h, w, K) float32 each image's concept coefficients at each position of the layer.
    crop_boxes : np.ndarray
        (M, 5) int64 ``(image, x0, y0, x1, y1)`` of every crop in input pixels.
    crop_coefficients : np.ndarray
        (M, K) float32 each crop's concept coefficients (``U``).
    top_crops : np.ndarray
        (K, t) int64 rows of ``crop_boxes``, the crops holding most of each concept first.
    top_crop_pixels : np.ndarray
        (K, t, s, s, c) uint8 those crops' pixels at their own size.
    reconstruction_error : float
        ``||A - U W||_F`` of the crops' activations.
    relative_error : float
        ``reconstruction_error / ||A||_F`` in [0, 1]: the share the concepts leave out.
    input_size : (int, int)
    designs : int
        Sobol points per matrix.
    seconds : float
    """

    layer: str
    class_index: int
    score: str
    importance: np.ndarray
    total_indices: np.ndarray
    bank: np.ndarray
    coefficients: np.ndarray
    crop_boxes: np.ndarray
    crop_coefficients: np.ndarray
    top_crops: np.ndarray
    top_crop_pixels: np.ndarray
    reconstruction_error: float
    relative_error: float
    input_size: tuple[int, int]
    designs: int
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.importance)

    @property
    def images(self) -> int:
        return int(self.coefficients.shape[0])

    def maps(self, image: int) -> np.ndarray:
        """(K, H, W) float32 >= 0: each concept's coefficient over image ``image``, resized to
        the model's input size (bilinear), in concept order."""
        u = self.coefficients[int(image)]
        return np.stack([resize_map(u[..., k], *self.input_size) for k in range(len(self))])

    def mean_map(self, concept: int) -> np.ndarray:
        """(H, W) float32: concept ``concept``'s map averaged over the images."""
        return resize_map(self.coefficients[..., int(concept)].mean(axis=0), *self.input_size)

    # -- on disk: named arrays only (DiskCache reads without pickle) --------------------------
    _ARRAYS = ("importance", "total_indices", "bank", "coefficients", "crop_boxes",
               "crop_coefficients", "top_crops", "top_crop_pixels")

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything as named numpy arrays."""
        out = {name: getattr(self, name) for name in self._ARRAYS}
        out["text"] = np.asarray([self.layer, self.score])
        out["numbers"] = np.asarray([self.class_index, *self.input_size, self.designs],
                                    np.int64)
        out["floats"] = np.asarray([self.reconstruction_error, self.relative_error,
                                    self.seconds], np.float64)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Craft:
        layer, score = (str(t) for t in arrays["text"])
        n = [int(v) for v in arrays["numbers"]]
        error, relative, seconds = (float(v) for v in arrays["floats"])
        return cls(layer=layer, class_index=n[0], score=score, input_size=(n[1], n[2]),
                   designs=n[3], reconstruction_error=error, relative_error=relative,
                   seconds=seconds, **{name: arrays[name] for name in cls._ARRAYS})


# --------------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CraftSteps:
    """The model cut at a layer as two compiled steps with fixed signatures (batch axis None),
    so crop batches, images and mask batches of any size, a ragged last one included, reuse one
    trace each (the split's own steps retrace once per new batch size before generalising).

    ``front(x (n, H, W, c)) -> [acts (n, h, w, C), *context, logits, output]``;
    ``back(acts, context) -> (logits, output)``; ``has_logits`` as the split's.
    """

    front: Callable
    back: Callable
    has_logits: bool


def craft_steps(model: LoadedModel, layer: str) -> CraftSteps:
    """:class:`CraftSteps` of ``model`` at ``layer`` (a checked path), built once per model
    and layer.

    Raises
    ------
    ModelError
        Keras cannot cut the model's graph at ``layer``.
    """
    import tensorflow as tf

    from viz_core.methods.steps import model_split

    split = model_split(model, layer)
    if split.headless or split.back is None:
        raise ModelError(f"CRAFT needs the model cut at {layer!r} into two halves, and Keras "
                         "cannot cut this model's graph there; try another layer.")

    def build() -> CraftSteps:
        def batch_free(spec):
            return tf.TensorSpec((None, *spec.shape[1:]), spec.dtype)

        pixels = tf.TensorSpec((None, *model.info.input_shape), tf.float32)
        front = tf.function(split.forward.python_function, input_signature=[pixels])
        outs = front.get_concrete_function().structured_outputs
        back = tf.function(split.back.python_function,
                           input_signature=[batch_free(outs[0]),
                                            [batch_free(c) for c in outs[1:-2]]])
        return CraftSteps(front, back, split.has_logits)

    return model.derived(("craft_steps", layer), build)


def _front(steps: CraftSteps, model: LoadedModel, pixels: np.ndarray):
    """(activations (n, h, w, C), [context (n, ...)]) of pixels in [0, 255], in batches."""
    import tensorflow as tf

    acts, ctx = [], []
    for start in range(0, len(pixels), BATCH):
        outs = steps.front(tf.constant(model.batch(pixels[start:start + BATCH]), tf.float32))
        acts.append(np.asarray(outs[0], np.float32))
        ctx.append([np.asarray(c, np.float32) for c in outs[1:-2]])
    context = [np.concatenate([c[i] for c in ctx]) for i in range(len(ctx[0]))]
    return np.concatenate(acts), context


def _check_positive(acts: np.ndarray, layer: str) -> None:
    low = float(acts.min()) if acts.size else 0.0
    if low < -1e-4 * max(1.0, float(np.abs(acts).max())):
        raise ParameterError(f"The layer {layer!r} has negative activations (down to {low:.3g});"
                             " CRAFT factorises non-negative ones: pick a layer after a ReLU.")


def _resized_crops(pixels: np.ndarray, boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(n, H, W, c) float32 crops ``(image, x0, y0, x1, y1)`` resized (bilinear) to ``size``."""
    import tensorflow as tf

    cuts = np.stack([pixels[i, y0:y1, x0:x1] for i, x0, y0, x1, y1 in boxes]).astype(np.float32)
    return np.asarray(tf.image.resize(cuts, size, method="bilinear"), np.float32)


def _class_score(model: LoadedModel, steps: CraftSteps, class_index: int):
    """``score(logits, output) -> (n,)`` of the class, and its kind (logit or probability)."""
    from viz_core.methods.scores import score_coefficients
    from viz_core.models.targets import Target

    kind = "logit" if steps.has_logits else "probability"
    units = int(model.model.outputs[0].shape[-1])
    v_logit, v_prob, offset = score_coefficients(Target(class_index, kind),
                                                 model.info.output_kind, units)

    def score(logits, output):
        out = np.asarray(output, np.float64)
        if model.info.output_kind == "linear":
            e = np.exp(out - out.max(axis=1, keepdims=True))
            out = e / e.sum(axis=1, keepdims=True)
        return np.asarray(logits, np.float64) @ v_logit + out @ v_prob + float(offset)

    return score, kind


def _concept_scores(steps: CraftSteps, score, u: np.ndarray, bank: np.ndarray, context: list,
                    masks: np.ndarray) -> np.ndarray:
    """(M,) class scores with each concept's coefficients of one image scaled by each mask row.

    ``u`` (h, w, K), ``bank`` (K, C), ``context`` one image's tensors (1, ...), ``masks`` (M, K).
    """
    import tensorflow as tf

    h, w, k = u.shape
    # each concept's share of the activations, (K, h * w * C): a mask row mixes them in one product
    parts = (u.reshape(-1, k).T[:, :, None] * bank[:, None, :]).reshape(k, -1).astype(np.float32)
    out = []
    for start in range(0, len(masks), BATCH):
        m = masks[start:start + BATCH]
        acts = (m @ parts).reshape(len(m), h, w, -1)
        ctx = [tf.constant(np.repeat(c, len(m), axis=0)) for c in context]
        logits, output = steps.back(tf.constant(acts, tf.float32), ctx)
        out.append(score(np.asarray(logits), np.asarray(output)))
    return np.concatenate(out)


def craft(model: LoadedModel, pixels: np.ndarray, class_index: int, layer: str | None = None,
          *, concepts: int = DEFAULT_CONCEPTS, designs: int = DEFAULT_DESIGNS,
          top: int = DEFAULT_TOP_CROPS, crop: int | None = None, seed: int = 0,
          progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> Craft:
    """CRAFT of a class over some of its images (see the module docstring).

    Parameters
    ----------
    model : LoadedModel
        Never modified.
    pixels : np.ndarray
        (N, H, W, c) pixels in [0, 255] at the model's input size (``model.view(...).pixels``).
    class_index : int
        The class explained; for a single sigmoid unit 1 (``+logit``) or 0 (``-logit``).
    layer : str or None
        A layer with non-negative feature maps (after a ReLU); None: the last conv layer.
    concepts : int
        Number of concepts K, 2 to :data:`MAX_CONCEPTS` (at most the number of crops).
    designs : int
        Sobol points per matrix (a power of 2); the images' scores cost ``designs * (K + 2)``
        passes through the part of the model after the layer, per image.
    top : int
        Crops kept per concept.
    crop : int or None
        Crop side in pixels; None: :func:`crop_side`.
    seed : int
        Seeds the NMF start and the Sobol points: same inputs, same result.
    progress : callable(fraction, message) or None
    should_stop : callable() -> bool or None
        Checked between batches.

    Returns
    -------
    Craft

    Raises
    ------
    ParameterError
        Bad layer, counts, image size, or a layer with negative activations.
    ModelError
        The model cannot be cut at the layer.
    Cancelled
        ``should_stop()`` returned True.
    """
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    from viz_core.methods.checks import resolve_layer

    started = time.perf_counter()
    layer = resolve_layer(model, layer)
    pixels = np.asarray(pixels, np.float32)
    height, width, channels = (int(v) for v in model.info.input_shape)
    if pixels.ndim != 4 or pixels.shape[1:] != (height, width, channels) or not len(pixels):
        raise ParameterError(f"CRAFT takes images at the model's input size "
                             f"(N, {height}, {width}, {channels}); got {pixels.shape}.")
    if not 2 <= int(concepts) <= MAX_CONCEPTS:
        raise ParameterError(f"The number of concepts must be 2 to {MAX_CONCEPTS}; "
                             f"got {concepts}.")
    if not 2 <= int(designs) <= 4096:
        raise ParameterError(f"Sobol designs must be 2 to 4096; got {designs}.")
    if not 1 <= int(top) <= 64:
        raise ParameterError(f"Crops per concept must be 1 to 64; got {top}.")
    side = crop_side((height, width)) if crop is None else int(crop)
    one = crop_boxes(height, width, side)
    boxes = np.concatenate([np.column_stack([np.full(len(one), i), one])
                            for i in range(len(pixels))])
    if len(boxes) < int(concepts):
        raise ParameterError(f"{len(boxes)} crops cannot hold {concepts} concepts; give more "
                             "images or ask for fewer concepts.")
    steps = craft_steps(model, layer)
    score, kind = _class_score(model, steps, int(class_index))

    def tell(fraction: float, message: str) -> None:
        if should_stop is not None and should_stop():
            raise Cancelled(f"CRAFT was stopped ({message}).")
        if progress is not None:
            progress(fraction, message)

    # 1-2: crops and their activations, averaged over positions
    pooled = []
    for start in range(0, len(boxes), BATCH):
        tell(0.3 * start / len(boxes), f"{start} of {len(boxes)} crops through the model")
        acts, _ = _front(steps, model, _resized_crops(pixels, boxes[start:start + BATCH],
                                                      (height, width)))
        _check_positive(acts, layer)
        pooled.append(acts.mean(axis=(1, 2)) if acts.ndim == 4 else acts)
    activations = np.maximum(np.concatenate(pooled), 0.0).astype(np.float32)

    # 3: concepts
    tell(0.3, f"finding {concepts} concepts in {len(boxes)} crops")
    nmf = NMF(n_components=int(concepts), init="nndsvda", max_iter=1000, random_state=seed)
    # short of converging to 1e-4 it still factorises; the reported error says how well
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        crop_u = nmf.fit_transform(activations)
    bank = nmf.components_
    error = float(nmf.reconstruction_err_)
    relative = error / max(float(np.linalg.norm(activations)), _EPS)

    # 4: each image's coefficients at each position, and the concepts' Sobol indices
    tell(0.35, f"{len(pixels)} images through the model")
    image_acts, context = _front(steps, model, pixels)
    _check_positive(image_acts, layer)
    n, h, w, c = image_acts.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        u = nmf.transform(np.maximum(image_acts, 0.0).reshape(-1, c))
    u = u.reshape(n, h, w, -1)
    masks = sobol_design(int(concepts), int(designs), seed)
    indices = np.zeros((n, int(concepts)))
    for i in range(n):
        tell(0.4 + 0.6 * i / n, f"concept importance: image {i + 1} of {n}")
        outputs = _concept_scores(steps, score, u[i], bank, [x[i:i + 1] for x in context], masks)
        indices[i] = jansen_total_indices(outputs, int(designs), int(concepts))

    # order concepts by importance, most important first
    mean = indices.mean(axis=0)
    importance = mean / mean.sum() if mean.sum() > _EPS else np.full(len(mean), 1 / len(mean))
    order = np.argsort(-importance, kind="stable")
    crop_u = crop_u[:, order].astype(np.float32)
    picked = np.argsort(-crop_u, axis=0, kind="stable")[:int(top)].T  # (K, t)
    crop_pixels = np.stack([[np.clip(pixels[boxes[j, 0], boxes[j, 2]:boxes[j, 4],
                                            boxes[j, 1]:boxes[j, 3]] + 0.5, 0, 255)
                             for j in row] for row in picked]).astype(np.uint8)
    if progress is not None:
        progress(1.0, f"{concepts} concepts over {n} images")
    return Craft(layer=layer, class_index=int(class_index), score=kind,
                 importance=importance[order], total_indices=indices[:, order],
                 bank=bank[order].astype(np.float32), coefficients=u[..., order].astype(np.float32),
                 crop_boxes=boxes, crop_coefficients=crop_u, top_crops=picked.astype(np.int64),
                 top_crop_pixels=crop_pixels, reconstruction_error=error,
                 relative_error=float(relative), input_size=(height, width),
                 designs=int(designs), seconds=time.perf_counter() - started)
