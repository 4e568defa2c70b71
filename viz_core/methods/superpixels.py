"""Superpixels: an image cut into a target number of regions, with scikit-image.

The tutorial's ``plot_superpixels`` (R ``lime``) cuts an image with SLIC into ``n_superpixels``
regions of a given ``weight`` (compactness). Here the same two knobs work for three of
scikit-image's algorithms:

* ``slic``: ``n_segments`` and ``compactness`` directly; SLIC's count is approximate, so
  ``n_segments`` is corrected a few times until the count is close to the target.
* ``quickshift``: the clustering tree is computed once (``return_tree=True``) and cut at the
  distance that leaves the target number of clusters (what ``max_dist`` would do, but chosen
  from the count instead of guessed). ``compactness`` sets the colour/space balance
  (``ratio = 10 / (10 + compactness)``: more compact means less weight on colour).
* ``felzenszwalb``: its ``scale`` is searched (it has no count parameter); compactness does not
  apply to it.

Segment ids are always ``0 .. count - 1`` (what ``lime`` expects: it numbers features by id).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from skimage import segmentation

from viz_core.errors import ImageError, ParameterError
from viz_core.inputs.intake import ModelImage
from viz_core.methods.lime_options import ALGORITHMS
from viz_core.runtime.limits import COMPACTNESS

MIN_SUPERPIXELS = 2
MAX_SUPERPIXELS = 500
_SLIC_ROUNDS = 4
_FELZENSZWALB_ROUNDS = 14


@dataclass(frozen=True, eq=False)
class Superpixels:
    """An image cut into regions.

    Attributes
    ----------
    segments : np.ndarray
        (H, W) int32, the region id of every pixel, ids ``0 .. count - 1``.
    algorithm : str
        One of :data:`ALGORITHMS`.
    target : int
        The number of superpixels asked for (``count`` is as close as the algorithm allows).
    compactness : float
        As asked for (see the module docstring for what it means per algorithm).
    seed : int
        Seed of quickshift's random tie-breaking (SLIC and Felzenszwalb are deterministic).
    """

    segments: np.ndarray
    algorithm: str
    target: int
    compactness: float
    seed: int

    @property
    def count(self) -> int:
        """How many superpixels there are."""
        return int(self.segments.max()) + 1

    @property
    def cache_key(self) -> tuple:
        digest = hashlib.sha256(self.segments.tobytes()).hexdigest()[:32]
        return (self.algorithm, self.target, self.compactness, self.seed,
                self.segments.shape, digest)

    def sizes(self) -> np.ndarray:
        """(count,) int64: the number of pixels in each superpixel."""
        return np.bincount(self.segments.ravel(), minlength=self.count)


def _pixels01(image) -> np.ndarray:
    """(H, W, 3) float64 in [0, 1] from a ModelImage or an RGB array (uint8 or [0, 255])."""
    pixels = image.pixels if isinstance(image, ModelImage) else np.asarray(image)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ImageError(
            f"Superpixels need an (H, W, 3) colour image; got an array of shape {pixels.shape}."
        )
    return np.clip(pixels.astype("float64") / 255.0, 0.0, 1.0)


def _sequential(labels: np.ndarray) -> np.ndarray:
    """Ids renumbered 0 .. n-1 (sorted by old id), as lime numbers features by id."""
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(labels.shape).astype("int32")


def _slic(pixels: np.ndarray, target: int, compactness: float) -> np.ndarray:
    asked, best = target, None
    for _ in range(_SLIC_ROUNDS):
        labels = segmentation.slic(pixels, n_segments=asked, compactness=compactness,
                                   start_label=0, channel_axis=-1)
        count = int(labels.max()) + 1
        if best is None or abs(count - target) < abs(best[1] - target):
            best = (labels, count)
        if abs(count - target) <= max(1, target // 10):
            break
        # SLIC places seeds on a grid and merges small pieces: ask for more (or fewer) seeds.
        asked = max(1, int(round(asked * target / max(count, 1))))
    return best[0]


def _cut_tree(parent: np.ndarray, dist_parent: np.ndarray, target: int) -> np.ndarray:
    """Clusters of a quickshift forest after cutting its longest links.

    Written here because scikit-image cuts at a given ``max_dist`` only; cutting the
    ``target - roots`` longest links is the same operation chosen by count.
    """
    flat_parent = parent.ravel().astype("int64")
    dist = dist_parent.ravel()
    own = np.arange(flat_parent.size)
    is_root = flat_parent == own
    extra = target - int(is_root.sum())
    if extra > 0:
        linked = np.flatnonzero(~is_root)
        longest = linked[np.argsort(-dist[linked], kind="stable")[:extra]]
        flat_parent = flat_parent.copy()
        flat_parent[longest] = own[longest]
    # Pointer jumping: every pixel ends at its cluster's root in log(depth) steps.
    while True:
        jumped = flat_parent[flat_parent]
        if np.array_equal(jumped, flat_parent):
            break
        flat_parent = jumped
    return flat_parent.reshape(parent.shape)


def _quickshift(pixels: np.ndarray, target: int, compactness: float, seed: int) -> np.ndarray:
    height, width = pixels.shape[:2]
    ratio = 10.0 / (10.0 + compactness)
    # A window about a fifth of a superpixel's side: smaller windows leave too many local
    # modes (roots) to reach small targets; larger ones cost time quadratically.
    kernel = float(np.clip(np.sqrt(height * width / target) / 5.0, 2.0, 10.0))
    for _ in range(3):
        _, parent, dist_parent = segmentation.quickshift(
            pixels, ratio=ratio, kernel_size=kernel, max_dist=np.inf, return_tree=True,
            rng=seed, channel_axis=-1)
        parent, dist_parent = np.asarray(parent), np.asarray(dist_parent)  # Cython memoryviews
        if int((parent.ravel() == np.arange(parent.size)).sum()) <= target or kernel >= 10.0:
            break
        kernel = min(10.0, kernel * 1.6)
    return _cut_tree(parent, dist_parent, target)


def _felzenszwalb(pixels: np.ndarray, target: int) -> np.ndarray:
    height, width = pixels.shape[:2]
    min_size = max(4, int(height * width / target / 8))
    low, high = np.log(1.0), np.log(20000.0)
    best = None
    for _ in range(_FELZENSZWALB_ROUNDS):
        scale = float(np.exp((low + high) / 2.0))
        labels = segmentation.felzenszwalb(pixels, scale=scale, sigma=0.8, min_size=min_size,
                                           channel_axis=-1)
        count = int(labels.max()) + 1
        if best is None or abs(count - target) < abs(best[1] - target):
            best = (labels, count)
        if count == target:
            break
        if count > target:  # larger scale, larger (so fewer) regions
            low = np.log(scale)
        else:
            high = np.log(scale)
    return best[0]


def superpixels(
    image: ModelImage | np.ndarray,
    *,
    algorithm: str = "slic",
    n_superpixels: int = 35,
    compactness: float = 10.0,
    seed: int = 0,
) -> Superpixels:
    """Cut an image into about ``n_superpixels`` regions.

    Parameters
    ----------
    image : ModelImage or np.ndarray
        The image as the model sees it, or (H, W, 3) pixels, uint8 or float in [0, 255].
    algorithm : {"slic", "quickshift", "felzenszwalb"}
    n_superpixels : int
        Target number of regions, between 2 and 500 (the tutorial's ``n_superpixels``).
    compactness : float
        Above 0, up to 1000 (:data:`viz_core.runtime.limits.COMPACTNESS`); the tutorial's
        ``weight``. Higher gives rounder, more regular regions.
    seed : int
        Seed for quickshift's tie-breaking noise.

    Returns
    -------
    Superpixels
        ``segments`` (H, W) int32 with ids ``0 .. count - 1``.

    Raises
    ------
    ParameterError
        Unknown algorithm, a count out of range or a compactness of 0 or less.
    ImageError
        The image is not an (H, W, 3) array.
    """
    if algorithm not in ALGORITHMS:
        raise ParameterError(
            f"Unknown superpixel algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}."
        )
    if isinstance(n_superpixels, bool) or not isinstance(n_superpixels, (int, np.integer)) or \
            not MIN_SUPERPIXELS <= int(n_superpixels) <= MAX_SUPERPIXELS:
        raise ParameterError(
            f"The number of superpixels must be a whole number from {MIN_SUPERPIXELS} to "
            f"{MAX_SUPERPIXELS}; got {n_superpixels!r}."
        )
    compactness = COMPACTNESS.check(compactness)  # above 0: SLIC divides by it
    pixels = _pixels01(image)
    target = int(n_superpixels)
    if target > pixels.shape[0] * pixels.shape[1] // 4:
        raise ParameterError(
            f"{target} superpixels is too many for a {pixels.shape[1]}x{pixels.shape[0]} image."
        )
    if algorithm == "slic":
        labels = _slic(pixels, target, float(compactness))
    elif algorithm == "quickshift":
        labels = _quickshift(pixels, target, float(compactness), int(seed))
    else:
        labels = _felzenszwalb(pixels, target)
    return Superpixels(
        segments=_sequential(labels),
        algorithm=algorithm,
        target=target,
        compactness=float(compactness),
        seed=int(seed),
    )
