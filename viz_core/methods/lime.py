"""LIME: which superpixels carried the prediction, through the ``lime`` package.

LIME hides random sets of superpixels, asks the model about each perturbed image and fits a
weighted linear model (lime's ridge regression) from "which superpixels were shown" to the
class probability. A superpixel's coefficient is its weight: positive superpixels support the
class, negative ones speak against it; R^2 says how well the linear model fits.

The work is split so that display choices never recompute the model:

1. :func:`viz_core.methods.superpixels.superpixels`: the segmentation (cached on its own).
2. :func:`perturbed_predictions`: the expensive part. lime's sampling (``data_labels`` of a
   :class:`lime.lime_image.LimeImageExplainer`) with a large batch, a fixed seed and the
   chosen hide colour; it keeps every class's probability, so any class can be explained later.
3. :func:`fit_explanation`: lime's weighted ridge fit (``LimeBase.explain_instance_with_data``)
   per explained class, giving weights, intercept and R^2 (milliseconds).
4. :func:`evidence_mask`, :func:`weight_map`, :func:`top_superpixels`: display (top-n
   features, positive only or both signs), microseconds to milliseconds.

``LimeImageExplainer.explain_instance`` is these steps in one call; it is not called as a whole
because it returns only the last class's R^2 and throws the perturbed predictions away.

:func:`lime_explanation` chains 1-3 for callers without a cache; :func:`explanation_stability`
compares explanations made with different seeds (Jaccard of their top-k superpixels).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import sklearn.metrics
from lime.lime_image import ImageExplanation, LimeImageExplainer
from skimage.filters import gaussian

from viz_core.models.catalog import LoadedModel
from viz_core.errors import Cancelled, ParameterError
from viz_core.inputs.intake import ModelImage
from viz_core.runtime.limits import LIME_SAMPLES
from viz_core.models.predict import probability_function
from viz_core.methods.lime_options import DEFAULT_HIDE, HIDE_COLOURS, PAGE_DEFAULTS, STABILITY_RUNS
from viz_core.methods.superpixels import Superpixels, superpixels

KERNEL_WIDTH = 0.25  # LimeImageExplainer's default
MIN_SAMPLES = LIME_SAMPLES.low  # the range is stated once, in viz_core.runtime.limits
MAX_SAMPLES = LIME_SAMPLES.high
_ACTIVATION_BUDGET = 768 * 2**20  # bytes of activations one batch may hold

Progress = Callable[[float, str], None]


@dataclass(frozen=True, eq=False)
class PerturbedPredictions:
    """The model's answers on randomly hidden superpixels (lime's neighbourhood).

    Attributes
    ----------
    superpixels : Superpixels
        The segmentation the samples switch on and off.
    shown : np.ndarray
        (samples, count) uint8 in {0, 1}: 1 where the superpixel was left visible. Row 0 is the
        unperturbed image (all ones), as in lime.
    probabilities : np.ndarray
        (samples, num_classes) float32 in [0, 1], see
        :func:`viz_core.models.targets.class_probabilities` (``[1 - p, p]`` for one sigmoid unit).
    image : np.ndarray
        (H, W, 3) uint8 RGB, the image as the model sees it.
    model_identity, image_digest : str
        What was explained (for cache keys).
    hide : str
        One of :data:`HIDE_COLOURS`.
    seed : int
        Seed of lime's random state.
    """

    superpixels: Superpixels
    shown: np.ndarray
    probabilities: np.ndarray
    image: np.ndarray
    model_identity: str
    image_digest: str
    hide: str
    seed: int

    @property
    def samples(self) -> int:
        return int(self.shown.shape[0])

    @property
    def cache_key(self) -> tuple:
        return ("perturbed", self.model_identity, self.image_digest, self.superpixels.cache_key,
                self.samples, self.hide, self.seed)


@dataclass(frozen=True, eq=False)
class LimeExplanation:
    """Per-superpixel weights for one or more classes.

    Attributes
    ----------
    segments : np.ndarray
        (H, W) int32 superpixel ids ``0 .. S - 1``.
    image : np.ndarray
        (H, W, 3) uint8 RGB, the image as the model sees it.
    class_indices : tuple of int
        The explained classes, in the order asked for.
    labels : tuple of str
        Their names.
    weights : np.ndarray
        (L, S) float32: lime's ridge coefficient of each superpixel for each class, in units of
        probability (showing the superpixel adds about this much to the class probability).
    intercepts : np.ndarray
        (L,) float32.
    r2 : np.ndarray
        (L,) float32: R^2 of each weighted linear fit (lime's ``score``), at most 1.
    local_predictions : np.ndarray
        (L,) float32: the linear model's prediction for the whole image.
    probabilities : np.ndarray
        (L,) float32: the model's probability of each class on the unperturbed image.
    samples, hide, seed, algorithm, n_superpixels, compactness
        The parameters that produced it.
    """

    segments: np.ndarray
    image: np.ndarray
    class_indices: tuple[int, ...]
    labels: tuple[str, ...]
    weights: np.ndarray
    intercepts: np.ndarray
    r2: np.ndarray
    local_predictions: np.ndarray
    probabilities: np.ndarray
    samples: int
    hide: str
    seed: int
    algorithm: str
    n_superpixels: int
    compactness: float

    @property
    def count(self) -> int:
        """Number of superpixels S."""
        return int(self.weights.shape[1])

    def row(self, class_index: int) -> int:
        """Position of ``class_index`` in :attr:`class_indices`."""
        try:
            return self.class_indices.index(int(class_index))
        except ValueError:
            raise ParameterError(
                f"Class {class_index} was not explained; explained classes are "
                f"{', '.join(str(k) for k in self.class_indices)}."
            ) from None

    def weights_for(self, class_index: int) -> np.ndarray:
        """(S,) float32 weights of one explained class."""
        return self.weights[self.row(class_index)]


@dataclass(frozen=True)
class Stability:
    """How much the top superpixels agree between explanations made with different seeds.

    Attributes
    ----------
    class_index : int
    k : int
        Size of the compared top sets (positive weights only).
    seeds : tuple of int
    top_sets : tuple of tuple of int
        Each run's top-k superpixel ids, strongest first.
    jaccard : np.ndarray
        (R, R) float32 in [0, 1], pairwise |A & B| / |A | B| (1 on the diagonal).
    mean_jaccard : float
        Mean over the pairs (off-diagonal), in [0, 1].
    """

    class_index: int
    k: int
    seeds: tuple[int, ...]
    top_sets: tuple[tuple[int, ...], ...]
    jaccard: np.ndarray
    mean_jaccard: float


class _BatchedLimeExplainer(LimeImageExplainer):
    """lime's image explainer whose neighbourhood is built a batch at a time."""

    def data_labels(self, image, fudged_image, segments, classifier_fn, num_samples,
                    batch_size=10):
        # The same draws as lime's data_labels (one randint on self.random_state, row 0 all
        # on); lime's loop deep-copies the image and rebuilds a mask per sample and prints a
        # tqdm bar, this composes each batch with one np.where.
        n_features = np.unique(segments).shape[0]
        data = self.random_state.randint(0, 2, num_samples * n_features).reshape(
            (num_samples, n_features))
        data[0, :] = 1
        labels = []
        for start in range(0, num_samples, batch_size):
            shown = data[start:start + batch_size].astype(bool)[:, segments][..., None]
            labels.extend(classifier_fn(np.where(shown, image, fudged_image)))
        return data, np.array(labels)


def _check_samples(samples) -> int:
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or \
            not MIN_SAMPLES <= int(samples) <= MAX_SAMPLES:
        raise ParameterError(
            f"The number of LIME samples must be a whole number from {MIN_SAMPLES} to "
            f"{MAX_SAMPLES}; got {samples!r}."
        )
    return int(samples)


def hidden_image(pixels: np.ndarray, segments: np.ndarray, hide: str) -> np.ndarray:
    """What hidden superpixels turn into (lime's ``fudged_image``).

    Parameters
    ----------
    pixels : (H, W, C) float in [0, 255]
    segments : (H, W) int ids ``0 .. S - 1``
    hide : {"mean", "white", "black", "blurred"}

    Returns
    -------
    np.ndarray
        (H, W, C) float32 in [0, 255].
    """
    if hide not in HIDE_COLOURS:
        raise ParameterError(
            f"Unknown hide colour {hide!r}; choose one of {', '.join(HIDE_COLOURS)}."
        )
    pixels = np.asarray(pixels, dtype="float32")
    if hide == "white":
        return np.full_like(pixels, 255.0)
    if hide == "black":
        return np.zeros_like(pixels)
    if hide == "blurred":
        # Sigma a tenth of the shorter side: edges and textures are gone, colours stay.
        sigma = max(2.0, min(pixels.shape[:2]) / 10.0)
        return gaussian(pixels, sigma=sigma, channel_axis=-1, preserve_range=True,
                        mode="nearest").astype("float32")
    # "mean": lime's hide_color=None (each superpixel's mean colour), vectorised with bincount.
    flat = segments.ravel()
    count = int(flat.max()) + 1
    sizes = np.maximum(np.bincount(flat, minlength=count), 1).astype("float64")
    means = np.stack([np.bincount(flat, weights=pixels[..., c].ravel(), minlength=count) / sizes
                      for c in range(pixels.shape[2])], axis=1)
    return means[segments].astype("float32")


def default_batch_size(model: LoadedModel) -> int:
    """A batch that keeps the largest activations of a batch under ~768 MB, from 8 to 16.

    On CPU a larger batch is not faster per image (activations leave the cache): 1,000 samples
    of the demo model took 6.9-8.2 s in batches of 64, 7.1-7.3 s of 16 and 7.4-7.7 s of 8. A
    batch is also where a job in the server's queue reports progress and gives way to page runs
    (:class:`viz_core.runtime.jobs.PageRuns`): batches of 64 held the cores for about a second each
    while a class's pages waited, 16 for a quarter of that.
    """
    largest = 1
    for layer in model.info.layers:
        if layer.nested:
            continue
        size = int(np.prod([d for d in layer.output_shape if d is not None] or [1]))
        largest = max(largest, size)
    per_image = 3 * 4 * largest  # a layer's input, output and one temporary, float32
    return int(np.clip(_ACTIVATION_BUDGET // per_image, 8, 16))


def perturbed_predictions(
    model: LoadedModel,
    image: ModelImage,
    segmentation: Superpixels,
    *,
    samples: int = 1000,
    hide: str = DEFAULT_HIDE,
    seed: int = 0,
    batch_size: int | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PerturbedPredictions:
    """Run the model on ``samples`` copies of the image with random superpixels hidden.

    Parameters
    ----------
    model : LoadedModel
    image : ModelImage
        The image as the model sees it (``model.view(loaded_image)``).
    segmentation : Superpixels
        Made from the same ``image`` (same height and width).
    samples : int
        Size of lime's neighbourhood, 10 to 20000 (lime's default is 1000).
    hide : {"mean", "white", "black", "blurred"}
        What hidden superpixels become, see :data:`viz_core.methods.lime_options.HIDE_HELP`.
    seed : int
        Seed of lime's random state: the same seed gives the same samples.
    batch_size : int or None
        Images per forward pass; ``None`` picks :func:`default_batch_size`.
    progress : callable(fraction, message) or None
        Called after every batch.
    should_stop : callable() -> bool or None
        Checked before every batch; when it returns True, :class:`~viz_core.errors.Cancelled`
        is raised.

    Returns
    -------
    PerturbedPredictions
    """
    samples = _check_samples(samples)
    segments = segmentation.segments
    if segments.shape != image.pixels.shape[:2]:
        raise ParameterError(
            f"The superpixels were made for a {segments.shape[1]}x{segments.shape[0]} image but "
            f"the model sees {image.pixels.shape[1]}x{image.pixels.shape[0]}; make them from "
            "the model's view of the image."
        )
    if batch_size is None:
        batch_size = default_batch_size(model)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or \
            batch_size < 1:
        raise ParameterError(f"The batch size must be a positive whole number; got {batch_size!r}.")
    forward = probability_function(model)
    done = [0]

    def classifier(pixels: np.ndarray) -> np.ndarray:
        if should_stop is not None and should_stop():
            raise Cancelled(f"LIME was stopped after {done[0]} of {samples} samples.")
        probs = forward(pixels)
        done[0] += len(pixels)
        if progress is not None:
            progress(done[0] / samples, f"{done[0]}/{samples} samples")
        return probs

    pixels = image.pixels.astype("float32")
    explainer = _BatchedLimeExplainer(kernel_width=KERNEL_WIDTH, feature_selection="none",
                                      random_state=int(seed))
    shown, probabilities = explainer.data_labels(
        pixels, hidden_image(pixels, segments, hide), segments, classifier, samples,
        batch_size=int(batch_size))
    return PerturbedPredictions(
        superpixels=segmentation,
        shown=shown.astype("uint8"),
        probabilities=probabilities.astype("float32"),
        image=image.display,
        model_identity=model.identity,
        image_digest=image.digest,
        hide=hide,
        seed=int(seed),
    )


def default_classes(predictions: PerturbedPredictions, n: int = 2) -> tuple[int, ...]:
    """The ``n`` most probable classes on the unperturbed image (the tutorial's ``n_labels``)."""
    first = predictions.probabilities[0]
    order = np.argsort(-first, kind="stable")[: max(1, min(n, first.size))]
    return tuple(int(k) for k in order)


def fit_explanation(
    model: LoadedModel,
    predictions: PerturbedPredictions,
    class_indices: Sequence[int | str],
) -> LimeExplanation:
    """Fit lime's weighted linear model for each class in ``class_indices``.

    Parameters
    ----------
    model : LoadedModel
        The model the predictions came from (for class names).
    predictions : PerturbedPredictions
    class_indices : sequence of int or class names
        For a single sigmoid unit: 0 (``1 - p``) and/or 1 (``p``).

    Returns
    -------
    LimeExplanation
    """
    indices = tuple(dict.fromkeys(model.class_index(k) for k in class_indices))
    if not indices:
        raise ParameterError("Choose at least one class to explain.")
    num_classes = predictions.probabilities.shape[1]
    for k in indices:
        if k >= num_classes:
            raise ParameterError(f"Class {k} is out of range; the model has {num_classes} classes.")
    shown = predictions.shown.astype("float64")
    count = shown.shape[1]
    distances = sklearn.metrics.pairwise_distances(shown, shown[:1], metric="cosine").ravel()
    base = LimeImageExplainer(kernel_width=KERNEL_WIDTH, feature_selection="none",
                              random_state=predictions.seed).base
    weights = np.zeros((len(indices), count), dtype="float32")
    intercepts, r2, local = [], [], []
    for row, k in enumerate(indices):
        intercept, pairs, score, local_pred = base.explain_instance_with_data(
            shown, predictions.probabilities.astype("float64"), distances, k, count,
            feature_selection="none")
        for feature, weight in pairs:
            weights[row, int(feature)] = weight
        intercepts.append(intercept)
        r2.append(score)
        local.append(np.ravel(local_pred)[0])
    seg = predictions.superpixels
    return LimeExplanation(
        segments=seg.segments,
        image=predictions.image,
        class_indices=indices,
        labels=tuple(model.label(k) for k in indices),
        weights=weights,
        intercepts=np.asarray(intercepts, dtype="float32"),
        r2=np.asarray(r2, dtype="float32"),
        local_predictions=np.asarray(local, dtype="float32"),
        probabilities=predictions.probabilities[0, list(indices)].astype("float32"),
        samples=predictions.samples,
        hide=predictions.hide,
        seed=predictions.seed,
        algorithm=seg.algorithm,
        n_superpixels=seg.target,
        compactness=seg.compactness,
    )


def lime_explanation(
    model: LoadedModel,
    image: ModelImage,
    class_indices: Sequence[int | str] | None = None,
    *,
    algorithm: str = "slic",
    n_superpixels: int = 35,
    compactness: float = 10.0,
    samples: int = 1000,
    hide: str = DEFAULT_HIDE,
    seed: int = 0,
    batch_size: int | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> LimeExplanation:
    """Superpixels, perturbed predictions and fit in one call (no caching).

    ``class_indices=None`` explains the two most probable classes, as the tutorial's
    ``n_labels = 2``. The other parameters are those of :func:`viz_core.methods.superpixels.superpixels`
    and :func:`perturbed_predictions`; the defaults are the tutorial's (35 superpixels,
    compactness 10) except the hide colour (blurred, see :data:`DEFAULT_HIDE`).
    """
    if progress is not None:
        progress(0.0, "superpixels")
    segmentation = superpixels(image, algorithm=algorithm, n_superpixels=n_superpixels,
                               compactness=compactness, seed=seed)
    predictions = perturbed_predictions(model, image, segmentation, samples=samples, hide=hide,
                                        seed=seed, batch_size=batch_size, progress=progress,
                                        should_stop=should_stop)
    if class_indices is None:
        class_indices = default_classes(predictions)
    return fit_explanation(model, predictions, class_indices)


def lime_heatmap(explanation: LimeExplanation, class_index: int) -> np.ndarray:
    """LIME as a heatmap: each superpixel painted with its positive weight.

    Returns
    -------
    np.ndarray
        (H, W) float32 in [0, 1], 1 on the strongest supporting superpixel, 0 on superpixels
        that do not support the class (all zeros when none does).
    """
    weights = np.maximum(explanation.weights_for(class_index).astype("float32"), 0.0)
    top = float(weights.max()) if weights.size else 0.0
    scaled = weights / top if top > 0 else np.zeros_like(weights)
    return scaled[explanation.segments].astype("float32")


def lime_map(ctx, *, n_superpixels: int = PAGE_DEFAULTS["n_superpixels"],
             compactness: float = PAGE_DEFAULTS["compactness"],
             samples: int = PAGE_DEFAULTS["samples"], seed: int = PAGE_DEFAULTS["seed"],
             algorithm: str = PAGE_DEFAULTS["algorithm"],
             hide: str = PAGE_DEFAULTS["hide"]) -> np.ndarray:
    """LIME as a registered perturbation method (``"lime"`` in :mod:`viz_core.methods.registry`).

    Parameters
    ----------
    ctx : MethodContext
        ``ctx.model``, ``ctx.image``, ``ctx.target`` (only its class: LIME explains the
        probability), ``ctx.progress`` and ``ctx.should_stop``.
    n_superpixels, compactness, samples, seed, algorithm, hide
        As :func:`lime_explanation`; the defaults are the LIME page's (:data:`PAGE_DEFAULTS`).

    Returns
    -------
    np.ndarray
        (H, W) float32: every superpixel painted with its signed weight for the class
        (``class_heatmap`` keeps the positive part and scales it, which is
        :func:`lime_heatmap`).
    """
    k = int(ctx.target.class_index)
    explanation = lime_explanation(ctx.model, ctx.image, (k,), algorithm=algorithm,
                                   n_superpixels=n_superpixels, compactness=compactness,
                                   samples=samples, hide=hide, seed=seed,
                                   progress=ctx.progress, should_stop=ctx.should_stop)
    return explanation.weights_for(k).astype("float32")[explanation.segments]


# -- display: cheap functions of a finished explanation ------------------------------------


def _check_features(explanation: LimeExplanation, num_features) -> int:
    if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or \
            num_features < 1:
        raise ParameterError(
            f"The number of superpixels to show must be 1 or more; got {num_features!r}."
        )
    return min(int(num_features), explanation.count)


def top_superpixels(
    explanation: LimeExplanation,
    class_index: int,
    k: int = 3,
    *,
    positive_only: bool = True,
) -> np.ndarray:
    """Ids of the ``k`` strongest superpixels of a class, strongest first.

    ``positive_only`` keeps superpixels that support the class (weight > 0; fewer than ``k``
    if there are fewer); otherwise the ranking is by absolute weight.

    Returns
    -------
    np.ndarray
        (<= k,) int64.
    """
    k = _check_features(explanation, k)
    w = explanation.weights_for(class_index)
    order = np.argsort(-(w if positive_only else np.abs(w)), kind="stable")
    if positive_only:
        order = order[w[order] > 0]
    return order[:k].astype("int64")


def evidence_mask(
    explanation: LimeExplanation,
    class_index: int,
    *,
    num_features: int = 5,
    positive_only: bool = True,
    min_weight: float = 0.0,
) -> np.ndarray:
    """lime's mask of the top superpixels (``ImageExplanation.get_image_and_mask``).

    Parameters
    ----------
    explanation : LimeExplanation
    class_index : int
        One of ``explanation.class_indices``.
    num_features : int
        How many superpixels to show (the tutorial's ``n_features``).
    positive_only : bool
        Only superpixels that support the class; otherwise the ``num_features`` largest by
        absolute weight, both signs.
    min_weight : float
        Superpixels with a smaller absolute weight are left out.

    Returns
    -------
    np.ndarray
        (H, W) int8: 1 supports the class, -1 speaks against it, 0 not shown.
    """
    num_features = _check_features(explanation, num_features)
    w = explanation.weights_for(class_index)
    view = ImageExplanation(explanation.image, explanation.segments)
    order = np.argsort(-np.abs(w), kind="stable")  # lime keeps features sorted by |weight|
    view.local_exp[class_index] = [(int(f), float(w[f])) for f in order]
    _, mask = view.get_image_and_mask(class_index, positive_only=positive_only,
                                      num_features=num_features, hide_rest=False,
                                      min_weight=min_weight)
    return mask.astype("int8")


def weight_map(explanation: LimeExplanation, class_index: int) -> np.ndarray:
    """Every superpixel painted with its weight, for a diverging colour map.

    Returns
    -------
    np.ndarray
        (H, W) float32 in [0, 1]: 0.5 is no effect, 1 the strongest support, 0 the strongest
        opposition (scaled by the largest absolute weight, so signs stay comparable).
    """
    w = explanation.weights_for(class_index).astype("float32")
    top = float(np.abs(w).max())
    scaled = 0.5 + 0.5 * w / top if top > 1e-12 else np.full_like(w, 0.5)
    return scaled[explanation.segments].astype("float32")


def explanation_plane(
    explanation: LimeExplanation,
    class_index: int,
    *,
    style: str = "outline",
    num_features: int = 5,
    negative: bool = False,
) -> np.ndarray:
    """What a picture of one explained class shows, as numbers: the input of
    :func:`viz_core.render.lime_view.explanation_picture`.

    Parameters
    ----------
    explanation : LimeExplanation
    class_index : int
        One of ``explanation.class_indices``.
    style : {"outline", "fill", "weights"}
        ``weights``: :func:`weight_map` (``num_features`` and ``negative`` are ignored);
        otherwise :func:`evidence_mask`.
    num_features : int
        Superpixels shown (strongest first).
    negative : bool
        Also show superpixels against the class.

    Returns
    -------
    np.ndarray
        (H, W): float32 in [0, 1] for ``weights``, int8 in {-1, 0, 1} otherwise.
    """
    if style == "weights":
        return weight_map(explanation, class_index)
    return evidence_mask(explanation, class_index, num_features=num_features,
                         positive_only=not negative)


# -- stability --------------------------------------------------------------------------------


def stability_seeds(seed: int, runs: int = STABILITY_RUNS) -> tuple[int, ...]:
    """The seeds a stability check uses: ``seed, seed + 1, ...``."""
    return tuple(int(seed) + i for i in range(runs))


def jaccard(a: Sequence[int], b: Sequence[int]) -> float:
    """|A & B| / |A | B| of two sets of superpixel ids; 1.0 for two empty sets."""
    sa, sb = set(int(x) for x in a), set(int(x) for x in b)
    union = sa | sb
    return 1.0 if not union else len(sa & sb) / len(union)


def explanation_stability(
    explanations: Sequence[LimeExplanation],
    class_index: int,
    k: int = 3,
) -> Stability:
    """Agreement of the top-k supporting superpixels across explanations (different seeds).

    Parameters
    ----------
    explanations : sequence of LimeExplanation
        Two or more, made on the same superpixels (only the sampling seed differs).
    class_index : int
        Explained in all of them.
    k : int
        Size of the compared top sets.

    Returns
    -------
    Stability
    """
    if len(explanations) < 2:
        raise ParameterError(
            f"A stability check needs at least two explanations; got {len(explanations)}."
        )
    first = explanations[0].segments
    for e in explanations[1:]:
        if e.segments.shape != first.shape or not np.array_equal(e.segments, first):
            raise ParameterError(
                "The explanations were made on different superpixels; compare runs that differ "
                "only in their seed."
            )
    tops = tuple(tuple(int(i) for i in top_superpixels(e, class_index, k)) for e in explanations)
    n = len(tops)
    table = np.ones((n, n), dtype="float32")
    for i in range(n):
        for j in range(i + 1, n):
            table[i, j] = table[j, i] = jaccard(tops[i], tops[j])
    pairs = table[np.triu_indices(n, 1)]
    return Stability(
        class_index=int(class_index),
        k=int(k),
        seeds=tuple(e.seed for e in explanations),
        top_sets=tops,
        jaccard=table,
        mean_jaccard=float(pairs.mean()),
    )
