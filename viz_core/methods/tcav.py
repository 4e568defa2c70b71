"""TCAV: does a class's score rise along a concept's direction at a layer? (Kim et al., ICML 2018)

A *concept activation vector* (CAV) is the normal of a linear classifier that tells the
layer's activations of concept images from those of random images; it points towards the
concept. For each image of a class, the *directional derivative* of the class's score along the
CAV says whether nudging the activations towards the concept raises the score. The *TCAV score*
is the fraction of the class's images where it does.

One CAV depends on the random images it was fitted against, so the test is repeated against
several random sets, and the same is done with a random set in place of the concept
(random-vs-random: what "no concept" scores). A two-sided t-test of the concept's scores against
the random ones gives the p-value.

What the score does not say: it counts *signs*. A concept that changes the score by a hair, but
always in the same direction, scores 1.0 and can be significant; the derivatives
(:attr:`TcavResult.derivatives`) say how large the effect is.

Activations and gradients come from the model cut at the layer that the heatmaps use
(:func:`viz_core.methods.steps.layer_gradients`), with the class scores of
:mod:`viz_core.methods.scores`: the logit of a softmax class, ``+logit`` / ``-logit`` for class 1
/ class 0 of one sigmoid unit (the probability when the logits cannot be read).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from viz_core.errors import ParameterError
from viz_core.models.loaded import LoadedModel
from viz_core.methods.tcav_options import DEFAULT_RUNS, RUNS, SIGNIFICANCE

ProgressFn = Callable[[float, str], None]
BATCH = 32  # images per forward/backward batch
_MIN_SET = 2  # images on each side of a CAV's classifier


@dataclass(frozen=True, eq=False)
class Cav:
    """A concept activation vector.

    Attributes
    ----------
    vector : np.ndarray
        (D,) float32 unit vector in the layer's flattened activation space, pointing from the
        other images towards the concept's.
    accuracy : float
        In [0, 1]: how well the classifier tells the two sets apart on a held-out third of
        them (1.0 when there were too few images to hold any out: then it is the training
        accuracy).
    """

    vector: np.ndarray
    accuracy: float


def concept_vector(concept: np.ndarray, other: np.ndarray, *, seed: int = 0) -> Cav:
    """The CAV of ``concept`` against ``other``: the normal of a logistic-regression boundary.

    Parameters
    ----------
    concept, other : np.ndarray
        (M, ...) and (R, ...) float activations of the same layer (flattened here), at least two
        images each.
    seed : int
        Seeds the split into fitting and held-out images.

    Raises
    ------
    ParameterError
        Fewer than two images on a side, or the two sets have different shapes.
    """
    a = np.asarray(concept, np.float64).reshape(len(concept), -1)
    b = np.asarray(other, np.float64).reshape(len(other), -1)
    if len(a) < _MIN_SET or len(b) < _MIN_SET:
        raise ParameterError(f"A concept vector needs at least {_MIN_SET} images on each side; "
                             f"got {len(a)} concept and {len(b)} other images.")
    if a.shape[1] != b.shape[1]:
        raise ParameterError(f"The concept's activations have {a.shape[1]} values per image and "
                             f"the other images' {b.shape[1]}; they must come from one layer.")
    x = np.concatenate([a, b])
    y = np.concatenate([np.ones(len(a), int), np.zeros(len(b), int)])
    # scaled so one regularisation strength suits every layer (a positive factor: the
    # direction is unchanged)
    scale = float(np.abs(x).max()) or 1.0
    x = x / scale
    rng = np.random.default_rng(seed)
    held = np.zeros(len(x), bool)
    for label in (0, 1):  # a third of each side held out, when each keeps two to fit on
        members = rng.permutation(np.flatnonzero(y == label))
        if len(members) >= 3 * _MIN_SET:
            held[members[: len(members) // 3]] = True
    normal, accuracy = _fit_normal(x, y, held, seed)
    norm = float(np.linalg.norm(normal))
    if norm == 0.0:  # the two sets look the same to a linear classifier: no direction
        normal = a.mean(0) - b.mean(0)
        norm = float(np.linalg.norm(normal))
    vector = normal / norm if norm > 0 else np.zeros_like(normal)
    return Cav(vector.astype(np.float32), accuracy)


def _fit_normal(x: np.ndarray, y: np.ndarray, held: np.ndarray, seed: int):
    """The normal (D,) of an L2 logistic regression fitted on the rows not ``held``, and its
    accuracy on the held rows (on the fitted ones when none is held).

    The optimum lies in the span of the fitted rows (the penalty only grows outside it), so the
    regression runs on their coordinates in that span: a few dozen features instead of a layer's
    tens of thousands, with the same answer.
    """
    from sklearn.linear_model import LogisticRegression

    fit_x, fit_y = x[~held], y[~held]
    # an orthonormal basis of the rows' span from the small (n, n) Gram matrix: an SVD of the
    # (n, D) rows costs ten times more on a busy machine
    values, vectors = np.linalg.eigh(fit_x @ fit_x.T)
    keep = values > max(float(values.max()), 0.0) * 1e-12
    if not keep.any():  # every activation is zero
        return np.zeros(x.shape[1]), 0.5
    basis = (vectors[:, keep].T @ fit_x) / np.sqrt(values[keep])[:, None]
    # Newton steps on a few dozen features: milliseconds (L-BFGS took 0.2 s beside TensorFlow)
    model = LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=200, random_state=seed)
    model.fit(fit_x @ basis.T, fit_y)
    normal = basis.T @ model.coef_[0]
    check = held if held.any() else ~held
    predicted = (x[check] @ normal + model.intercept_[0]) > 0
    return normal, float(np.mean(predicted == (y[check] == 1)))


def directional_derivatives(gradients: np.ndarray, cav: Cav) -> np.ndarray:
    """(N,) float64: each image's class-score gradient (N, ...) dotted with the CAV."""
    g = np.asarray(gradients, np.float64).reshape(len(gradients), -1)
    return g @ cav.vector.astype(np.float64)


def tcav_score(derivatives: np.ndarray) -> float:
    """The fraction in [0, 1] of images whose score rises along the concept (derivative > 0)."""
    d = np.asarray(derivatives)
    return float(np.mean(d > 0)) if d.size else 0.0


def two_sided_p(concept_scores: np.ndarray, random_scores: np.ndarray) -> float:
    """p-value of the two-sided t-test of two sets of scores (``scipy.stats.ttest_ind``, equal
    variances, as the TCAV paper's code).

    When both sets of scores are constant the test is undefined: 1.0 when they are equal (no
    evidence of a difference), 0.0 when they differ (every run says the same, and not the
    same as chance).
    """
    from scipy.stats import ttest_ind

    a, b = np.asarray(concept_scores, float), np.asarray(random_scores, float)
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0 if a[0] == b[0] else 0.0
    with warnings.catch_warnings():  # one constant side warns of precision loss; the test holds
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(ttest_ind(a, b).pvalue)


@dataclass(frozen=True, eq=False)
class TcavResult:
    """TCAV of one concept for one class at one layer.

    Attributes
    ----------
    score : float
        In [0, 1]: the mean over runs of the fraction of the class's images whose score rises
        along the concept's CAV.
    p_value : float
        Two-sided t-test of ``concept_scores`` against ``random_scores``.
    significant : bool
        ``p_value < 0.05``.
    concept_scores, random_scores : np.ndarray
        (runs,) float64: each run's TCAV score of the concept, and of a random set in its
        place (random-vs-random).
    derivatives : np.ndarray
        (runs, N) float32: each class image's directional derivative in each concept run (how
        much the score changes per unit of activation along the CAV: the size TCAV ignores).
    cav_accuracies : np.ndarray
        (runs,) float64: held-out accuracy of each concept CAV's classifier.
    layer : str
    class_index : int
    class_name : str
    concept : str
        The concept's name (a folder's or an archive's).
    images, concept_images, random_set_size : int
        Class images, concept images, and images in each random set.
    score_kind : str
        ``"logit"`` or ``"probability"``: the class score differentiated.
    """

    score: float
    p_value: float
    significant: bool
    concept_scores: np.ndarray
    random_scores: np.ndarray
    derivatives: np.ndarray
    cav_accuracies: np.ndarray
    layer: str
    class_index: int
    class_name: str
    concept: str
    images: int
    concept_images: int
    random_set_size: int
    score_kind: str

    @property
    def random_score(self) -> float:
        """Mean TCAV score of the random-vs-random runs (about 0.5 when CAVs are noise)."""
        return float(np.mean(self.random_scores))

    def to_dict(self) -> dict:
        """The command line's JSON: ``{class, layer, concept, score, p_value, significant,
        random_scores, ...}``."""
        return {"class": self.class_name, "class_index": self.class_index, "layer": self.layer,
                "concept": self.concept, "score": self.score, "p_value": self.p_value,
                "significant": self.significant,
                "random_scores": [float(s) for s in self.random_scores],
                "concept_scores": [float(s) for s in self.concept_scores],
                "cav_accuracies": [float(a) for a in self.cav_accuracies],
                "mean_derivative": float(np.mean(self.derivatives)),
                "images": self.images, "concept_images": self.concept_images,
                "random_set_size": self.random_set_size, "score_kind": self.score_kind}


@dataclass(frozen=True, eq=False)
class TcavRuns:
    """The per-run numbers of :func:`tcav_from_activations` (no model involved)."""

    concept_scores: np.ndarray
    random_scores: np.ndarray
    derivatives: np.ndarray
    cav_accuracies: np.ndarray
    p_value: float


def tcav_from_activations(concept: np.ndarray, random_sets: Sequence[np.ndarray],
                          gradients: np.ndarray, *, seed: int = 0,
                          progress: ProgressFn | None = None) -> TcavRuns:
    """TCAV on arrays. Run ``i`` fits the concept against random set ``i`` (its score is a
    concept score), and random set ``runs + i`` against the same set ``i`` in the concept's
    place (a random score).

    Each random run has a random set of its own in the concept's place: with one fixed set
    there (the TCAV code's "random counterpart"), every random CAV shares that set's quirks and
    the random scores lean together (on the shortcut demo, 7 of 10 were 1.0 for "star").

    Parameters
    ----------
    concept : np.ndarray
        (M, ...) activations of the concept images at the layer.
    random_sets : sequence of np.ndarray
        ``2 * runs`` arrays (R, ...) of random images' activations (:func:`random_sets`).
    gradients : np.ndarray
        (N, ...) the class score's gradient with respect to the same layer, one per class image.
    seed : int
    progress : callable(fraction, message) or None
    """
    if len(random_sets) < 4 or len(random_sets) % 2:
        raise ParameterError(f"TCAV needs an even number of random sets, at least 4 (two per "
                             f"run); got {len(random_sets)}.")
    runs = len(random_sets) // 2
    concept_scores, random_scores, derivatives, accuracies = [], [], [], []
    for i in range(runs):
        cav = concept_vector(concept, random_sets[i], seed=seed + i)
        d = directional_derivatives(gradients, cav)
        concept_scores.append(tcav_score(d))
        derivatives.append(d)
        accuracies.append(cav.accuracy)
        noise = concept_vector(random_sets[runs + i], random_sets[i], seed=seed + i)
        random_scores.append(tcav_score(directional_derivatives(gradients, noise)))
        if progress is not None:
            progress((i + 1) / runs, f"run {i + 1} of {runs}")
    concept_scores, random_scores = np.asarray(concept_scores), np.asarray(random_scores)
    return TcavRuns(concept_scores, random_scores, np.asarray(derivatives, np.float32),
                    np.asarray(accuracies), two_sided_p(concept_scores, random_scores))


# --------------------------------------------------------------------------------------------
# Through a model
# --------------------------------------------------------------------------------------------
def _score_kind(model: LoadedModel, layer: str) -> str:
    from viz_core.methods.steps import model_split

    return "logit" if model_split(model, layer).has_logits else "probability"


def _batches(pixels: np.ndarray):
    # converted batch by batch: a set kept as uint8 is never copied whole as float32
    for start in range(0, len(pixels), BATCH):
        yield np.asarray(pixels[start:start + BATCH], np.float32)


def layer_activations(model: LoadedModel, pixels: np.ndarray, layer: str) -> np.ndarray:
    """(N, h, w, k) float32 activations at ``layer`` (a checked path) of pixels (N, H, W, C)
    in [0, 255] at the model's input size, in batches."""
    from viz_core.methods.steps import layer_gradients

    parts = [layer_gradients(model, chunk, np.full(len(chunk), -1), np.zeros(len(chunk), bool),
                             layer, gradients=False).activations for chunk in _batches(pixels)]
    return np.concatenate(parts)


def class_gradients(model: LoadedModel, pixels: np.ndarray, class_index: int,
                    layer: str) -> np.ndarray:
    """(N, h, w, k) float32: the gradient of the class's score with respect to the layer's
    activations, for each of pixels (N, H, W, C) in [0, 255] (scores of
    :mod:`viz_core.methods.scores`: the logit, or the probability when there is none)."""
    from viz_core.methods.scores import score_coefficients
    from viz_core.methods.steps import layer_gradients
    from viz_core.models.targets import Target

    use_logit = _score_kind(model, layer) == "logit"
    units = int(model.model.outputs[0].shape[-1])
    # checks the class against the model (a sigmoid unit has classes 0 and 1)
    score_coefficients(Target(int(class_index), "logit"), model.info.output_kind, units)
    parts = [layer_gradients(model, chunk, np.full(len(chunk), int(class_index)),
                             np.full(len(chunk), use_logit), layer).gradients
             for chunk in _batches(pixels)]
    return np.concatenate(parts)


class _Sets(Sequence):
    """Random sets as rows of one array of activations, each set copied out when it is used."""

    def __init__(self, acts: np.ndarray, rows: list[np.ndarray]):
        self.acts, self.rows = acts, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        return self.acts[self.rows[i]]


def random_sets(pool: int, runs: int, set_size: int, *, seed: int = 0) -> list[np.ndarray]:
    """``2 * runs`` sets of ``set_size`` distinct positions in a pool of ``pool`` random images,
    each drawn on its own (seeded): sets overlap only as much as chance makes them.

    Raises
    ------
    ParameterError
        The pool cannot give two different sets of at least two images.
    """
    if set_size < _MIN_SET or pool < set_size + 1:
        raise ParameterError(
            f"The random images are too few: {pool} images cannot give different random sets "
            f"of {max(set_size, _MIN_SET)}; give at least {max(set_size, _MIN_SET) + 1}, better "
            "several times as many as the concept images.")
    rng = np.random.default_rng(seed)
    return [np.sort(rng.choice(pool, size=set_size, replace=False)) for _ in range(2 * runs)]


def random_set_size(concept_images: int, pool: int) -> int:
    """Images per random set: as many as the concept has (balanced classifiers), at most half
    the pool (so two sets differ by at least half their images)."""
    return max(_MIN_SET, min(int(concept_images), int(pool) // 2))


def tcav(model: LoadedModel, class_pixels: np.ndarray, concept_pixels: np.ndarray,
         random_pixels: np.ndarray, class_index: int, layer: str | None = None, *,
         runs: int = DEFAULT_RUNS, set_size: int | None = None, concept: str = "concept",
         seed: int = 0, progress: ProgressFn | None = None) -> TcavResult:
    """TCAV of a concept for a class at a layer, from images at the model's input size.

    Parameters
    ----------
    model : LoadedModel
    class_pixels : np.ndarray
        (N, H, W, C) images of the class, in [0, 255].
    concept_pixels : np.ndarray
        (M, H, W, C) images that show the concept.
    random_pixels : np.ndarray
        (P, H, W, C) the pool the ``2 * runs`` random sets are drawn from (:func:`random_sets`,
        used as :func:`tcav_from_activations` says).
    class_index : int
    layer : str or None
        Layer path; None means the last convolutional layer.
    runs : int
        Runs against different random sets, 2 to 50.
    set_size : int or None
        Images per random set; None: :func:`random_set_size`.
    concept : str
        The concept's name, kept in the result.
    seed : int
        Seeds the random sets and the classifiers' held-out splits.
    progress : callable(fraction, message) or None
        May raise :class:`~viz_core.errors.Cancelled` to stop between steps.

    Raises
    ------
    ParameterError
        An unknown layer or class, no class image, or too few concept or random images.
    """
    from viz_core.methods.checks import resolve_layer

    layer = resolve_layer(model, layer)
    runs = RUNS.check(runs)
    if len(class_pixels) == 0:
        raise ParameterError("There is no image of the class to score.")
    if len(concept_pixels) < _MIN_SET:
        raise ParameterError(f"TCAV needs at least {_MIN_SET} concept images; got "
                             f"{len(concept_pixels)}.")
    size = random_set_size(len(concept_pixels), len(random_pixels)) if set_size is None \
        else int(set_size)
    picks = random_sets(len(random_pixels), runs, size, seed=seed)
    report = progress or (lambda fraction, message: None)
    report(0.0, f"gradients of {len(class_pixels)} class images")
    grads = class_gradients(model, class_pixels, class_index, layer)
    report(0.2, f"activations of {len(concept_pixels)} concept images")
    concept_acts = layer_activations(model, concept_pixels, layer)
    used = np.unique(np.concatenate(picks))  # each random image through the model once
    report(0.3, f"activations of {len(used)} random images")
    used_acts = layer_activations(model, np.asarray(random_pixels)[used], layer)
    sets = _Sets(used_acts, [np.searchsorted(used, p) for p in picks])
    result = tcav_from_activations(concept_acts, sets, grads, seed=seed,
                                   progress=lambda f, m: report(0.4 + 0.6 * f, m))
    return TcavResult(
        score=float(np.mean(result.concept_scores)), p_value=result.p_value,
        significant=bool(math.isfinite(result.p_value) and result.p_value < SIGNIFICANCE),
        concept_scores=result.concept_scores, random_scores=result.random_scores,
        derivatives=result.derivatives, cav_accuracies=result.cav_accuracies, layer=layer,
        class_index=int(class_index), class_name=model.label(int(class_index)),
        concept=concept, images=len(class_pixels), concept_images=len(concept_pixels),
        random_set_size=size, score_kind=_score_kind(model, layer))
