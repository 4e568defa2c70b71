"""The neuron atlas on Ray: the same per-batch function on Ray Data actors, the same atlas.

Ray Data streams the dataset's entries (position, path, label's class) through ``map_batches``
with a pool of actors; each actor loads the model once, from a
:class:`~viz_core.dataset.ray_engine.ModelRecipe`, and runs
:func:`viz_core.dataset.atlas.atlas_entries` on its batches (reading the images itself through
the dataset's picklable reader). Only (batch x channels) numbers come back. The driver puts
them back in dataset order and feeds the :class:`~viz_core.dataset.atlas.AtlasCollector` the
local engine's batches (entries ``0..b-1``, ``b..2b-1``...), so the result equals
:func:`viz_core.dataset.atlas.neuron_atlas`'s: its histograms' ranges grow batch by batch, so
the order and the cuts matter. Ray Data is asked to keep the order, so the driver holds at most
a block or two of rows besides the collector's O(channels x k).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from viz_core.dataset.atlas import (DEFAULT_BATCH_SIZE, DEFAULT_K, Atlas, AtlasBatch,
                                    AtlasCollector, atlas_entries, entry_batch, start_atlas)
from viz_core.dataset.ray_engine import (DEFAULT_WORKERS, WORKER_CPUS, ModelRecipe, start_ray,
                                         actor_rows, import_ray)
from viz_core.dataset.readers import Dataset, SkippedFile
from viz_core.errors import Cancelled, ParameterError
from viz_core.models.loaded import LoadedModel

ProgressFn = Callable[[float, str], None]
StopFn = Callable[[], bool]


class AtlasWorker:
    """The Ray Data actor: the model loaded once, then one :func:`atlas_entries` per batch.

    A batch comes as ``{"position": (n,) int64, "path": (n,) str, "label": (n,) int64}`` and
    goes back as the columns of :func:`to_rows`.
    """

    def __init__(self, recipe: ModelRecipe, read, layer: str, width: int,
                 channels: np.ndarray | None, predict: bool, threads: int = 1):
        import tensorflow as tf

        try:  # as many TensorFlow threads as the actor has CPUs, not one per core of the node
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TensorFlow already started in this worker process
            pass
        self.model = recipe.load()
        self.read, self.layer, self.width = read, layer, width
        self.channels, self.predict = channels, predict

    def __call__(self, batch: dict) -> dict:
        entries = [(int(i), str(p), int(g))
                   for i, p, g in zip(batch["position"], batch["path"], batch["label"])]
        part = atlas_entries(self.model, self.read, entries, layer=self.layer,
                             channels=self.channels, predict=self.predict)
        return to_rows(part, self.width)


def to_rows(part: AtlasBatch, width: int) -> dict:
    """An :class:`AtlasBatch` as equal-length columns (Ray Data's batch format): one row per
    entry, the images read first, then the failed ones (``ok`` False, zeros for numbers).

    ``width`` is the number of channels kept (an all-failed batch carries no array to say it).
    """
    n_ok, n_bad = len(part.positions), len(part.failed)

    def numbers(a: np.ndarray, *tail: int) -> np.ndarray:
        return np.concatenate([a.reshape((n_ok, width) + tail),
                               np.zeros((n_bad, width) + tail, a.dtype)])

    return {
        "position": np.concatenate([part.positions,
                                    np.asarray([f[0] for f in part.failed], np.int64)]),
        "ok": np.asarray([True] * n_ok + [False] * n_bad),
        "path": np.asarray([""] * n_ok + [f[1].file for f in part.failed], dtype=object),
        "reason": np.asarray([""] * n_ok + [f[1].reason for f in part.failed], dtype=object),
        "maxima": numbers(part.maxima),
        "means": numbers(part.means),
        "where": numbers(part.where, 2),
        "group": np.concatenate([part.groups, np.full(n_bad, -1, np.int64)]),
    }


def from_rows(rows: dict) -> AtlasBatch:
    """The inverse of :func:`to_rows`."""
    ok = np.asarray(rows["ok"], bool)
    failed = tuple((int(p), SkippedFile(str(f), str(r)))
                   for p, f, r, good in zip(rows["position"], rows["path"], rows["reason"], ok)
                   if not good)
    return AtlasBatch(np.asarray(rows["position"], np.int64)[ok],
                      np.asarray(rows["maxima"], np.float32)[ok],
                      np.asarray(rows["means"], np.float32)[ok],
                      np.asarray(rows["where"], np.int32)[ok],
                      np.asarray(rows["group"], np.int64)[ok], failed)


class InOrder:
    """Feeds a collector the local engine's batches in dataset order, whatever order and cuts
    the parts arrive in: rows wait until every entry of the next batch has come back.

    Parameters
    ----------
    collector : AtlasCollector
    total : int
        Entries in the dataset.
    batch_size : int
        The local engine's batch size (its cuts decide how the histograms grow).
    """

    def __init__(self, collector: AtlasCollector, total: int, batch_size: int):
        self.collector, self.total, self.batch_size = collector, total, int(batch_size)
        self.next = 0
        self.waiting: dict[int, tuple] = {}  # position -> (maxima, means, where, group) or skip

    def add(self, part: AtlasBatch) -> int:
        """Keep a part's rows, feed every batch now complete; returns the entries fed."""
        for i, position in enumerate(part.positions):
            self.waiting[int(position)] = (part.maxima[i], part.means[i], part.where[i],
                                           int(part.groups[i]))
        for position, skipped in part.failed:
            self.waiting[int(position)] = skipped
        while self.next < self.total:
            stop = min(self.total, self.next + self.batch_size)
            if any(p not in self.waiting for p in range(self.next, stop)):
                break
            self.collector.add(self._batch([(p, self.waiting.pop(p))
                                            for p in range(self.next, stop)]))
            self.next = stop
        return self.collector.done

    def _batch(self, rows: list[tuple[int, object]]) -> AtlasBatch:
        good = [(p, r) for p, r in rows if not isinstance(r, SkippedFile)]
        failed = tuple((p, r) for p, r in rows if isinstance(r, SkippedFile))
        if not good:
            c = len(self.collector.channels)
            return AtlasBatch(np.zeros(0, np.int64), np.zeros((0, c), np.float32),
                              np.zeros((0, c), np.float32), np.zeros((0, c, 2), np.int32),
                              np.zeros(0, np.int64), failed)
        return AtlasBatch(np.asarray([p for p, _ in good], np.int64),
                          np.stack([r[0] for _, r in good]), np.stack([r[1] for _, r in good]),
                          np.stack([r[2] for _, r in good]),
                          np.asarray([r[3] for _, r in good], np.int64), failed)


def neuron_atlas_ray(model: LoadedModel, dataset: Dataset, layer: str | None = None, *,
                     recipe: ModelRecipe, k: int = DEFAULT_K, score: str = "max",
                     channels: str | Sequence[int] | None = None,
                     batch_size: int = DEFAULT_BATCH_SIZE, address: str | None = None,
                     workers: int = DEFAULT_WORKERS, progress: ProgressFn | None = None,
                     should_stop: StopFn | None = None) -> Atlas:
    """:func:`viz_core.dataset.atlas.neuron_atlas` with the batches run by Ray actors.

    Parameters
    ----------
    model : LoadedModel
        The driver's copy (layer check, class names); workers load theirs from ``recipe``.
    dataset : Dataset
        Its reader must work on the workers (same paths on a cluster).
    layer, k, score, channels, batch_size
        As in :func:`~viz_core.dataset.atlas.neuron_atlas`.
    recipe : ModelRecipe
        How each worker loads the same model.
    address : str or None
        A running Ray cluster; None uses ``RAY_ADDRESS`` when set, else a local Ray, shut down
        afterwards (see :func:`viz_core.dataset.ray_engine.run_dataset_ray`).
    workers : int
        Actors in the pool, one model each (1 CPU each).
    progress : callable(fraction, message) or None
    should_stop : callable() -> bool or None
        Checked as results come back.

    Returns
    -------
    Atlas
        The local engine's atlas (``seconds`` aside, which includes Ray's start).

    Raises
    ------
    RayUnavailableError
        Ray not installed or not reachable.
    ParameterError, Cancelled
        As in the local engine.
    """
    collector, every = start_atlas(model, dataset, layer, k=k, score=score, channels=channels,
                                   batch_size=batch_size)
    if not 1 <= int(workers) <= 1024:
        raise ParameterError(f"The number of Ray workers must be 1 to 1024; got {workers}.")
    ray = import_ray()
    total = len(dataset.entries)
    feed = InOrder(collector, total, batch_size)
    if progress is not None:
        progress(0.0, f"starting Ray; 0 of {total} images")
    start_ray(ray, address)
    items = [{"position": p, "path": path, "label": g}
             for p, path, g in entry_batch(dataset, 0, total)]
    try:
        # in order: the driver then holds few rows before the collector takes them
        for rows in actor_rows(ray, items, AtlasWorker, batch_size=batch_size, workers=workers,
                               what="atlas", keep_order=True, recipe=recipe,
                               read=dataset.reader, layer=collector.layer,
                               width=len(collector.channels), channels=every,
                               predict=collector.grouped_by == "predicted",
                               threads=WORKER_CPUS):
            done = feed.add(from_rows(rows))
            if progress is not None:
                progress(done / max(1, total), collector.message())
            if should_stop is not None and should_stop():
                raise Cancelled(f"The atlas was stopped after {done} of {total} images.")
    finally:
        ray.shutdown()
    return collector.finish()
