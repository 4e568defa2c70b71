"""A model over a dataset: predictions and class heatmaps in batches, with bounded memory.

:func:`explain_batch` is the one pure per-batch function: pixels in, probabilities, explained
classes and small heatmaps out, by any layer or pixel-gradient method of the registry
(:func:`dataset_methods`). The maps come from :func:`viz_core.methods.heatmap.class_heatmaps`,
the same kernels as ``class_heatmap`` (so the same numbers as the ``heatmap`` command): a layer
method's batch costs one forward pass and one gradient pass through the back half of the model
(the model cut at the explained layer), a pixel-gradient method's copies are differentiated
together; Score-CAM and AblationCAM go one image at a time.

:func:`run_dataset` is the local engine: it reads a :class:`viz_core.dataset.readers.Dataset` batch by
batch, so at any time it holds one batch of images; what it keeps per image is a probability row
and a small map (``map_size`` x ``map_size``, 28 x 28 by default: 3 KB). Full-size maps go to
``.npy`` files only when a folder is given. Progress is reported through
``progress(fraction, message)`` and ``should_stop()`` is checked between batches (raising
:class:`~viz_core.errors.Cancelled`), as everywhere in ``viz_core``.

:func:`explain_entries` (read some entries, then :func:`explain_batch`, then write their full
maps) is the per-batch function both engines run: in-process here, in Ray actors in
:mod:`viz_core.dataset.ray_engine`; :class:`RunCollector` puts the batches back in dataset order.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from viz_core.models.catalog import LoadedModel
from viz_core.dataset.readers import Dataset, SkippedFile
from viz_core.errors import Cancelled, ImageError, ParameterError
from viz_core.inputs.intake import LoadedImage, ModelImage, load_image
from viz_core.methods import registry as methods
from viz_core.methods.checks import resolve_layer
from viz_core.methods.heatmap import PIXEL_LAYER, class_heatmaps
from viz_core.models.targets import Target
from viz_core.runtime.limits import BATCH_SIZE

DEFAULT_BATCH_SIZE = 32
DEFAULT_MAP_SIZE = 28
MAX_BATCH_SIZE = int(BATCH_SIZE.high)  # viz_core.runtime.limits, as the command line checks

ProgressFn = Callable[[float, str], None]
StopFn = Callable[[], bool]


def dataset_methods() -> tuple[str, ...]:
    """The methods a dataset run takes (:func:`viz_core.methods.registry.dataset_names`)."""
    return methods.dataset_names()


@dataclass(frozen=True, eq=False)
class BatchResult:
    """What one batch gives.

    Attributes
    ----------
    probabilities : np.ndarray
        (N, num_classes) float32 in [0, 1].
    predicted : np.ndarray
        (N,) int64: the explained class of each image (its most probable class unless targets
        were given).
    maps : np.ndarray
        (N, map_size, map_size) float32 in [0, 1]: the heatmap of ``predicted``, each map
        scaled to its own maximum (all zeros when there is no positive evidence).
    full_maps : np.ndarray or None
        (N, H, W) float32 in [0, 1] at the model's input size (what ``class_heatmap`` gives),
        only when asked for.
    """

    probabilities: np.ndarray
    predicted: np.ndarray
    maps: np.ndarray
    full_maps: np.ndarray | None = None


def explain_batch(model: LoadedModel, pixels: np.ndarray | Sequence[ModelImage], *,
                  layer: str | None = None, map_size: int = DEFAULT_MAP_SIZE,
                  targets: np.ndarray | None = None, full: bool = False,
                  method: str = "gradcam", params: dict | None = None) -> BatchResult:
    """Predictions and heatmaps of a batch of images.

    Parameters
    ----------
    model : LoadedModel
        Never modified.
    pixels : np.ndarray or sequence of ModelImage
        (N, H, W, C) float32 in [0, 255] at the model's input size (``model.view(img).pixels``
        stacked), or the prepared images themselves; preprocessing is applied here.
    layer : str or None
        Layer to explain (layer methods); None is the last conv layer.
    map_size : int
        Side of the small maps kept, 4 to 64.
    targets : np.ndarray or None
        (N,) int classes to explain; -1 or None means the predicted class.
    full : bool
        Also return the maps at the model's input size.
    method : str
        One of :func:`dataset_methods`.
    params : dict or None
        The method's parameters (checked by the registry, defaults filled in).

    Returns
    -------
    BatchResult

    Raises
    ------
    ParameterError
        Pixels of the wrong shape, an unknown method, parameter or layer, or a map size out of
        range.
    """
    expected = tuple(model.info.input_shape)
    if isinstance(pixels, np.ndarray) or not len(pixels) or not isinstance(pixels[0],
                                                                           ModelImage):
        pixels = np.asarray(pixels, dtype="float32")
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != expected:
            raise ParameterError(f"Expected a batch of images shaped (N, {expected[0]}, "
                                 f"{expected[1]}, {expected[2]}); got {pixels.shape}.")
    if not 4 <= int(map_size) <= 64:
        raise ParameterError(f"The small map size must be 4 to 64 pixels; got {map_size}.")
    wanted = None if targets is None else [None if int(t) < 0 else Target(int(t))
                                           for t in np.asarray(targets)]
    results = class_heatmaps(model, pixels, wanted, method, layer, params,
                             batch_size=max(1, min(MAX_BATCH_SIZE, len(pixels))))
    height, width = expected[:2]
    heat = np.stack([r.heatmap for r in results]) if results else np.zeros((0, height, width),
                                                                           np.float32)
    small = tf.image.resize(heat[..., None], (map_size, map_size), method="bilinear")
    k = len(model.labels)
    probabilities = (np.stack([r.probabilities for r in results]) if results
                     else np.zeros((0, k), np.float32))
    return BatchResult(probabilities.astype(np.float32),
                       np.asarray([r.class_index for r in results], np.int64),
                       small.numpy()[..., 0].astype(np.float32),
                       heat.astype(np.float32) if full else None)


# --------------------------------------------------------------------------------------------
# The local engine
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class DatasetRun:
    """A model over a dataset: one row per image read, small maps, skipped files.

    Attributes
    ----------
    dataset : str
        The dataset's display name.
    classes : tuple of str
        The model's class names.
    paths : tuple of str
        Image paths relative to the dataset root, in dataset order (skipped files left out).
    labels : tuple of str or None
        Labels as given.
    label_indices : np.ndarray
        (N,) int64 class of each label; -1 where there is none or it matches no class.
    probabilities : np.ndarray
        (N, num_classes) float32 in [0, 1].
    predicted : np.ndarray
        (N,) int64, the most probable class.
    maps : np.ndarray
        (N, map_size, map_size) float32 in [0, 1]: the heatmap of the predicted class.
    skipped : tuple of SkippedFile
        Files left out while listing or reading, with the reason.
    unknown_labels : tuple of (str, int)
    layer, method : str
        ``layer`` is ``"input"`` for the pixel-gradient methods.
    map_files : tuple of str or None
        With ``full_maps_dir``: the ``.npy`` file of each image's full-size map.
    seconds : float
        Wall time of the run.
    params : tuple of (str, value)
        The method's parameters, defaults filled in.
    """

    dataset: str
    classes: tuple[str, ...]
    paths: tuple[str, ...]
    labels: tuple[str | None, ...]
    label_indices: np.ndarray
    probabilities: np.ndarray
    predicted: np.ndarray
    maps: np.ndarray
    skipped: tuple[SkippedFile, ...]
    unknown_labels: tuple[tuple[str, int], ...]
    layer: str
    method: str
    map_files: tuple[str, ...] | None
    seconds: float
    params: tuple = ()

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def confidence(self) -> np.ndarray:
        """(N,) float32 probability of the predicted class."""
        return self.probabilities[np.arange(len(self)), self.predicted]

    @property
    def labelled(self) -> np.ndarray:
        """(N,) bool: the image has a label that matches a class."""
        return self.label_indices >= 0

    @property
    def correct(self) -> np.ndarray:
        """(N,) bool: prediction equals the label (False where there is no usable label)."""
        return self.labelled & (self.predicted == self.label_indices)

    @property
    def accuracy(self) -> float | None:
        """Fraction in [0, 1] of labelled images predicted right; None with no labels."""
        count = int(self.labelled.sum())
        return float(self.correct.sum() / count) if count else None

    def confusion(self) -> np.ndarray | None:
        """(classes, classes) int64: rows are labels, columns predictions; None with no labels."""
        if not self.labelled.any():
            return None
        k = len(self.classes)
        matrix = np.zeros((k, k), np.int64)
        np.add.at(matrix, (self.label_indices[self.labelled], self.predicted[self.labelled]), 1)
        return matrix

    def class_accuracy(self) -> dict[str, tuple[int, float]]:
        """``{class: (labelled images, accuracy)}`` for classes with at least one label."""
        out = {}
        for k, name in enumerate(self.classes):
            pick = self.label_indices == k
            if pick.any():
                out[name] = (int(pick.sum()), float(self.correct[pick].mean()))
        return out

    def mean_maps(self) -> dict[int, np.ndarray]:
        """``{predicted class: (map_size, map_size) float32 mean map}`` for every predicted class."""
        return {int(k): self.maps[self.predicted == k].mean(axis=0)
                for k in np.unique(self.predicted)}


def map_file_name(index: int, path: str) -> str:
    """``00012_circle_scene_0003.npy``: unique (by index) and safe (no folders, no dots)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", path.rsplit(".", 1)[0]).strip("_")[:60]
    return f"{index:05d}_{stem or 'image'}.npy"


@dataclass(frozen=True, eq=False)
class EntriesResult:
    """What :func:`explain_entries` gives for one batch of dataset entries.

    Attributes
    ----------
    positions : np.ndarray
        (n,) int64 positions (in the dataset's entries) of the images read, in batch order.
    probabilities : np.ndarray
        (n, num_classes) float32 in [0, 1].
    predicted : np.ndarray
        (n,) int64.
    maps : np.ndarray
        (n, map_size, map_size) float32 in [0, 1].
    files : tuple of str
        The ``.npy`` file of each full-size map; empty without a folder.
    failed : tuple of (int, SkippedFile)
        Position and reason of each entry that could not be read.
    """

    positions: np.ndarray
    probabilities: np.ndarray
    predicted: np.ndarray
    maps: np.ndarray
    files: tuple[str, ...]
    failed: tuple[tuple[int, SkippedFile], ...]


def explain_entries(model: LoadedModel, read: Callable[[str], object],
                    batch: list[tuple[int, str]], *, layer: str,
                    map_size: int = DEFAULT_MAP_SIZE,
                    full_maps_dir: str | Path | None = None, method: str = "gradcam",
                    params: dict | None = None) -> EntriesResult:
    """The per-batch function of both engines: read, predict and explain some entries.

    The local engine calls it in-process; the Ray engine calls it in its actors
    (:mod:`viz_core.dataset.ray_engine`), so the numbers cannot differ between them.

    Parameters
    ----------
    model : LoadedModel
    read : callable(path) -> bytes or LoadedImage
        The dataset's reader (:attr:`viz_core.dataset.readers.Dataset.reader`).
    batch : list of (int, str)
        Each entry's position in the dataset and its path.
    layer : str
        Layer path (already checked, see :func:`check_run_options`).
    map_size : int
    full_maps_dir : path or None
        Existing folder for the full-size maps, named by :func:`map_file_name` (position, path).
    method : str
        One of :func:`dataset_methods`.
    params : dict or None
        The method's parameters.

    Returns
    -------
    EntriesResult
    """
    positions, pixels, failed = [], [], []
    for position, path in batch:
        try:
            got = read(path)
            image = got if isinstance(got, LoadedImage) else load_image(got, path)
            pixels.append(model.view(image))
            positions.append(position)
        except ImageError as exc:
            failed.append((position, SkippedFile(path, str(exc))))
    k = len(model.labels)
    if not pixels:
        return EntriesResult(np.zeros(0, np.int64), np.zeros((0, k), np.float32),
                             np.zeros(0, np.int64), np.zeros((0, map_size, map_size), np.float32),
                             (), tuple(failed))
    folder = None if full_maps_dir is None else Path(full_maps_dir)
    result = explain_batch(model, pixels, layer=layer if methods.uses_layer(method) else None,
                           map_size=map_size, full=folder is not None, method=method,
                           params=params)
    files = []
    if folder is not None:
        paths = dict(batch)
        for i, position in enumerate(positions):
            name = folder / map_file_name(position, paths[position])
            np.save(name, result.full_maps[i])
            files.append(str(name))
    return EntriesResult(np.asarray(positions, np.int64), result.probabilities, result.predicted,
                         result.maps, tuple(files), tuple(failed))


def check_run_options(model: LoadedModel, *, batch_size: int, layer: str | None, method: str,
                      map_size: int, params: dict | None = None) -> tuple[str, dict]:
    """The layer path to explain (``"input"`` for a pixel-gradient method) and the method's
    parameters with defaults filled in, once the options are checked (both engines).

    Raises
    ------
    ParameterError
    """
    allowed = dataset_methods()
    if method not in allowed:
        raise ParameterError(f"Dataset runs explain with one of {', '.join(allowed)}; "
                             f"got {method!r}.")
    settings = methods.get(method).validate(params)
    if not 1 <= int(batch_size) <= MAX_BATCH_SIZE:
        raise ParameterError(f"The batch size must be 1 to {MAX_BATCH_SIZE}; got {batch_size}.")
    if not 4 <= int(map_size) <= 64:
        raise ParameterError(f"The small map size must be 4 to 64 pixels; got {map_size}.")
    if not methods.uses_layer(method):
        return PIXEL_LAYER, settings
    return resolve_layer(model, layer), settings


class RunCollector:
    """Puts batches' results together into a :class:`DatasetRun`, in dataset order whatever
    order the batches arrive in (the Ray engine's come as workers finish)."""

    def __init__(self, model: LoadedModel, dataset: Dataset, *, layer: str, method: str,
                 with_files: bool, params: dict | None = None):
        self.model, self.dataset, self.layer, self.method = model, dataset, layer, method
        self.params = tuple(sorted((params or {}).items()))
        self.with_files = with_files
        self.parts: list[EntriesResult] = []
        self.done = 0
        self.started = time.perf_counter()

    def add(self, part: EntriesResult) -> int:
        """Keep one batch's rows; returns the number of entries done so far."""
        self.parts.append(part)
        self.done += len(part.positions) + len(part.failed)
        return self.done

    def message(self) -> str:
        total = len(self.dataset.entries)
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.done * (total - self.done) if self.done else 0.0
        return f"{self.done} of {total} images, about {left:.0f} s left"

    def finish(self) -> DatasetRun:
        dataset, total = self.dataset, len(self.dataset.entries)
        failed = sorted((f for part in self.parts for f in part.failed), key=lambda f: f[0])
        skipped = list(dataset.skipped) + [f[1] for f in failed]
        k = len(self.model.labels)
        positions = np.concatenate([p.positions for p in self.parts] or [np.zeros(0, np.int64)])
        if not len(positions):
            raise ParameterError(f"None of the {total} images of {dataset.name!r} could be read; "
                                 f"the first problem: "
                                 f"{skipped[0].reason if skipped else 'none'}.")
        order = np.argsort(positions, kind="stable")
        entries = [dataset.entries[int(i)] for i in positions[order]]
        files = [f for p in self.parts for f in p.files]
        return DatasetRun(
            dataset=dataset.name,
            classes=tuple(self.model.labels),
            paths=tuple(e.path for e in entries),
            labels=tuple(e.label for e in entries),
            label_indices=np.asarray([-1 if e.class_index is None else e.class_index
                                      for e in entries], np.int64),
            probabilities=np.concatenate([p.probabilities for p in self.parts]
                                         ).reshape(-1, k)[order],
            predicted=np.concatenate([p.predicted for p in self.parts])[order],
            maps=np.concatenate([p.maps for p in self.parts])[order],
            skipped=tuple(skipped),
            unknown_labels=dataset.unknown_labels,
            layer=self.layer,
            method=self.method,
            map_files=tuple(files[int(i)] for i in order) if self.with_files else None,
            seconds=time.perf_counter() - self.started,
            params=self.params,
        )


def run_dataset(model: LoadedModel, dataset: Dataset, *, batch_size: int = DEFAULT_BATCH_SIZE,
                layer: str | None = None, method: str = "gradcam",
                map_size: int = DEFAULT_MAP_SIZE, full_maps_dir: str | Path | None = None,
                progress: ProgressFn | None = None, should_stop: StopFn | None = None,
                params: dict | None = None) -> DatasetRun:
    """Predict and explain every image of ``dataset``, one batch at a time.

    Parameters
    ----------
    model : LoadedModel
    dataset : Dataset
        Labels already matched to ``model``'s classes.
    batch_size : int
        Images per batch, 1 to 512; memory held during the run grows with it, not with the
        dataset (plus a probability row and a small map per image).
    layer : str or None
        Layer a layer method explains; None is the last conv layer.
    method : str
        One of :func:`dataset_methods` (every layer and pixel-gradient method).
    map_size : int
        Side of the small maps kept in memory.
    full_maps_dir : path or None
        Folder for each image's full-size map as ``.npy`` (float32 in [0, 1], model input size);
        created if missing. None keeps no full-size map anywhere.
    progress : callable(fraction, message) or None
    should_stop : callable() -> bool, or None
        Checked between batches.
    params : dict or None
        The method's parameters (its registry defaults where not given).

    Returns
    -------
    DatasetRun

    Raises
    ------
    ParameterError
        Bad batch size, method, parameter, layer or map size, or every image failed to load.
    Cancelled
        ``should_stop()`` returned True.
    """
    layer_path, settings = check_run_options(model, batch_size=batch_size, layer=layer,
                                             method=method, map_size=map_size, params=params)
    folder = None if full_maps_dir is None else Path(full_maps_dir)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    entries, total = dataset.entries, len(dataset.entries)
    collector = RunCollector(model, dataset, layer=layer_path, method=method,
                             with_files=folder is not None, params=settings)
    if progress is not None:
        progress(0.0, f"0 of {total} images")
    for start in range(0, total, int(batch_size)):
        if should_stop is not None and should_stop():
            raise Cancelled(f"The dataset run was stopped after {collector.done} of {total} "
                            "images.")
        batch = [(i, entries[i].path) for i in range(start, min(total, start + int(batch_size)))]
        done = collector.add(explain_entries(model, dataset.reader, batch, layer=layer_path,
                                             map_size=map_size, full_maps_dir=folder,
                                             method=method, params=settings))
        if progress is not None:
            progress(done / max(1, total), collector.message())
    return collector.finish()
