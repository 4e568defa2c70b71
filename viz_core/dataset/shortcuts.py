"""Shortcut finder: the strategies a model uses for each class, by clustering its heatmaps.

SpRAy (Lapuschkin et al. 2019, "Unmasking Clever Hans predictors"): for each predicted class, the
images' heatmaps are downsized, compared, and grouped by spectral clustering; the number of
groups is where the eigenvalues of the graph Laplacian jump most (the eigengap). Each group is
one strategy; its mean map shows where the model looks, and a group whose evidence sits in a
corner, away from where objects are, is a suspected shortcut (the horse classifier's copyright
tag).

The score here is simple and stated: a cluster's *corner share* is the largest fraction of its
mean map's heat that falls in one corner square (a quarter of the side by default); spread
evenly, a corner holds 1/16 of the heat. A cluster is flagged when its corner share reaches
:data:`FLAG_SHARE`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import laplacian
from sklearn.cluster import SpectralClustering
from sklearn.neighbors import kneighbors_graph

from viz_core.errors import ParameterError
from viz_core.maps import resize_map

CLUSTER_SIZE = 14  # maps are compared at 14 x 14, as SpRAy compares downsized maps
MAX_CLUSTERS = 6
MIN_IMAGES = 6  # classes with fewer predicted images are one cluster
CORNER_FRACTION = 0.25
FLAG_SHARE = 0.3  # about 5 times what an even spread puts in a corner
# Eigenvalues of the normalised Laplacian below this count as "almost zero": one per group of
# maps that is nearly cut off from the rest. The eigengap is only looked for after them, so maps
# that all look alike (one near-zero eigenvalue) stay one cluster.
SMALL_EIGENVALUE = 0.15
CORNERS = ("top left", "top right", "bottom left", "bottom right")
EXAMPLES = 6


@dataclass(frozen=True, eq=False)
class Cluster:
    """One strategy of the model for one class.

    Attributes
    ----------
    class_index : int
    label : str
    id : int
        0-based within the class, largest cluster first.
    members : np.ndarray
        (size,) int64 indices of its images in the run.
    mean_map : np.ndarray
        (s, s) float32 in [0, 1]: mean of the members' small maps, scaled to its maximum.
    corner_share : float
        Largest share in [0, 1] of the mean map's heat in one corner square.
    corner : str
        Which corner, one of :data:`CORNERS`.
    examples : np.ndarray
        Up to 6 int64 member indices, the closest to the cluster's mean first.
    """

    class_index: int
    label: str
    id: int
    members: np.ndarray
    mean_map: np.ndarray
    corner_share: float
    corner: str
    examples: np.ndarray

    @property
    def size(self) -> int:
        return int(len(self.members))

    @property
    def flagged(self) -> bool:
        """True when the evidence concentrates in a corner (:data:`FLAG_SHARE`)."""
        return self.corner_share >= FLAG_SHARE


@dataclass(frozen=True, eq=False)
class ClassStrategies:
    """The clusters of one predicted class.

    Attributes
    ----------
    class_index : int
    label : str
    clusters : tuple of Cluster
        Largest first.
    eigenvalues : np.ndarray
        (m,) float64, the smallest eigenvalues of the normalised graph Laplacian (empty when the
        class had too few images); the eigengap chose the cluster count.
    """

    class_index: int
    label: str
    clusters: tuple[Cluster, ...]
    eigenvalues: np.ndarray


@dataclass(frozen=True, eq=False)
class ShortcutReport:
    """Per-class strategies and every image's cluster.

    Attributes
    ----------
    classes : tuple of ClassStrategies
        One per predicted class, in class order.
    assignments : np.ndarray
        (N,) int64: each image's cluster id within its predicted class.
    requested : str or int
        ``"auto"`` (eigengap) or the cluster count asked for.
    """

    classes: tuple[ClassStrategies, ...]
    assignments: np.ndarray
    requested: str | int

    @property
    def clusters(self) -> tuple[Cluster, ...]:
        return tuple(c for strategies in self.classes for c in strategies.clusters)

    @property
    def flagged(self) -> tuple[Cluster, ...]:
        """Clusters whose evidence sits in a corner, highest share first."""
        return tuple(sorted((c for c in self.clusters if c.flagged),
                            key=lambda c: -c.corner_share))


def corner_shares(maps: np.ndarray, fraction: float = CORNER_FRACTION) -> np.ndarray:
    """Share of each map's heat in each corner square.

    Parameters
    ----------
    maps : np.ndarray
        (N, s, s) or (s, s) non-negative heat.
    fraction : float
        Corner square side as a fraction of the map side, in (0, 0.5].

    Returns
    -------
    np.ndarray
        (N, 4) or (4,) float32 in [0, 1], in :data:`CORNERS` order; zeros for an empty map.
    """
    if not 0 < fraction <= 0.5:
        raise ParameterError(f"The corner size is a fraction of the side from 0 to 0.5; got "
                             f"{fraction}.")
    m = np.asarray(maps, dtype=np.float64)
    single = m.ndim == 2
    m = m[None] if single else m
    side = max(1, int(round(fraction * m.shape[1]))), max(1, int(round(fraction * m.shape[2])))
    total = m.sum(axis=(1, 2))
    corners = np.stack([m[:, :side[0], :side[1]].sum(axis=(1, 2)),
                        m[:, :side[0], -side[1]:].sum(axis=(1, 2)),
                        m[:, -side[0]:, :side[1]].sum(axis=(1, 2)),
                        m[:, -side[0]:, -side[1]:].sum(axis=(1, 2))], axis=1)
    shares = np.where(total[:, None] > 0, corners / np.maximum(total[:, None], 1e-12), 0.0)
    shares = shares.astype(np.float32)
    return shares[0] if single else shares


def _features(maps: np.ndarray, size: int) -> np.ndarray:
    """(N, size*size) float64: maps downsized and scaled to unit sum (where the heat is, not how
    much)."""
    small = np.stack([resize_map(m, size, size) for m in maps]).reshape(len(maps), -1)
    small = np.maximum(small.astype(np.float64), 0.0)
    return small / np.maximum(small.sum(axis=1, keepdims=True), 1e-12)


def _affinity(features: np.ndarray) -> np.ndarray:
    """Symmetric k-nearest-neighbour connectivity (SpRAy's graph), dense (N, N) float64."""
    n = len(features)
    graph = kneighbors_graph(features, n_neighbors=min(10, n - 1), include_self=False)
    graph = 0.5 * (graph + graph.T)
    return graph.toarray()


def eigengap_count(affinity: np.ndarray, max_clusters: int = MAX_CLUSTERS):
    """Cluster count by the eigengap of the normalised Laplacian: the largest gap that follows an
    almost-zero eigenvalue (below :data:`SMALL_EIGENVALUE`).

    Returns
    -------
    count : int
        In 1..max_clusters.
    eigenvalues : np.ndarray
        (max_clusters + 1,) or fewer smallest eigenvalues, ascending.
    """
    lap = laplacian(affinity, normed=True)
    values = np.sort(np.linalg.eigvalsh(lap))[: max_clusters + 1]
    if len(values) < 2:
        return 1, values
    gaps = np.diff(values)
    candidates = np.flatnonzero(values[:-1] < SMALL_EIGENVALUE)
    if not len(candidates):
        return 1, values
    return int(candidates[np.argmax(gaps[candidates])]) + 1, values


def find_shortcuts(maps: np.ndarray, predicted: np.ndarray, classes, *,
                   clusters: str | int = "auto", max_clusters: int = MAX_CLUSTERS,
                   seed: int = 0) -> ShortcutReport:
    """Cluster each predicted class's heatmaps (SpRAy) and score the clusters' corner heat.

    Parameters
    ----------
    maps : np.ndarray
        (N, s, s) float32 in [0, 1], e.g. :attr:`viz_core.dataset.engine.DatasetRun.maps`.
    predicted : np.ndarray
        (N,) int class of each map.
    classes : sequence of str
        Class names, in output order.
    clusters : "auto" or int
        ``"auto"``: the eigengap decides, up to ``max_clusters``; an int from 1 to 12 asks for
        that many (fewer when a class has too few images).
    max_clusters : int
    seed : int
        Seed of the k-means step inside spectral clustering.

    Returns
    -------
    ShortcutReport

    Raises
    ------
    ParameterError
        Mismatched shapes or a cluster count out of range.
    """
    maps = np.asarray(maps, dtype=np.float32)
    predicted = np.asarray(predicted, dtype=np.int64)
    if maps.ndim != 3 or len(maps) != len(predicted):
        raise ParameterError(f"Expected (N, s, s) maps and N predictions; got {maps.shape} and "
                             f"{predicted.shape}.")
    if clusters != "auto":
        try:
            clusters = int(clusters)
        except (TypeError, ValueError):
            raise ParameterError(f"The number of clusters is 'auto' or 1 to 12; got "
                                 f"{clusters!r}.") from None
        if not 1 <= clusters <= 12:
            raise ParameterError(f"The number of clusters is 'auto' or 1 to 12; got {clusters}.")
    assignments = np.zeros(len(maps), np.int64)
    strategies = []
    for k in np.unique(predicted):
        members = np.flatnonzero(predicted == k)
        features = _features(maps[members], CLUSTER_SIZE)
        values = np.zeros(0)
        if len(members) < MIN_IMAGES:
            labels = np.zeros(len(members), np.int64)
        else:
            affinity = _affinity(features)
            if clusters == "auto":
                count, values = eigengap_count(affinity, max_clusters)
            else:
                count = min(int(clusters), len(members) - 1)
                values = eigengap_count(affinity, max_clusters)[1]
            if count <= 1:
                labels = np.zeros(len(members), np.int64)
            else:
                labels = SpectralClustering(
                    n_clusters=count, affinity="precomputed", random_state=seed,
                    assign_labels="kmeans", n_init=10,
                ).fit_predict(affinity).astype(np.int64)
        # number clusters by size, largest first (ties: first member first)
        order = sorted(np.unique(labels), key=lambda c: (-np.sum(labels == c),
                                                          np.flatnonzero(labels == c)[0]))
        found = []
        for new_id, old in enumerate(order):
            pick = labels == old
            assignments[members[pick]] = new_id
            found.append(_cluster(int(k), str(classes[int(k)]), new_id, members[pick],
                                  maps[members[pick]], features[pick]))
        strategies.append(ClassStrategies(int(k), str(classes[int(k)]), tuple(found), values))
    return ShortcutReport(tuple(strategies), assignments, clusters)


def _cluster(k: int, label: str, cluster_id: int, members: np.ndarray, maps: np.ndarray,
             features: np.ndarray) -> Cluster:
    mean = maps.mean(axis=0)
    peak = float(mean.max())
    mean = (mean / peak if peak > 0 else np.zeros_like(mean)).astype(np.float32)
    shares = corner_shares(mean)
    best = int(np.argmax(shares))
    centre = features.mean(axis=0)
    closest = np.argsort(np.linalg.norm(features - centre, axis=1), kind="stable")[:EXAMPLES]
    return Cluster(k, label, cluster_id, members.astype(np.int64), mean, float(shares[best]),
                   CORNERS[best], members[closest].astype(np.int64))
