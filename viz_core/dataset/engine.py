"""A model over a dataset: predictions and Grad-CAM maps in batches, with bounded memory.

:func:`explain_batch` is the one pure per-batch function: pixels in, probabilities, predicted
classes and small heatmaps out. A batch costs one forward pass and one gradient pass through the
back half of the model (the model cut at the explained layer by :func:`viz_core.models.graph.split_at`):
the score summed over the batch has, for each image, the gradient of its own score, because the
model runs in inference mode and images do not interact.

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
from typing import Callable

import numpy as np
import tensorflow as tf

from viz_core.models.catalog import LoadedModel
from viz_core.dataset.readers import Dataset, SkippedFile
from viz_core.errors import Cancelled, ImageError, ModelError, ParameterError
from viz_core.models.graph import flat_graph, split_at
from viz_core.inputs.intake import LoadedImage, load_image

DEFAULT_BATCH_SIZE = 32
DEFAULT_MAP_SIZE = 28
MAX_BATCH_SIZE = 512
METHODS = ("gradcam",)

ProgressFn = Callable[[float, str], None]
StopFn = Callable[[], bool]


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
        (N, map_size, map_size) float32 in [0, 1]: Grad-CAM of ``predicted``, each map scaled to
        its own maximum (all zeros when the ReLU leaves nothing).
    full_maps : np.ndarray or None
        (N, H, W) float32 in [0, 1] at the model's input size (what ``class_heatmap`` gives),
        only when asked for.
    """

    probabilities: np.ndarray
    predicted: np.ndarray
    maps: np.ndarray
    full_maps: np.ndarray | None = None


def _class_scores(logits, output, targets, kind: str, has_logits: bool):
    """(probabilities (N, classes), explained classes (N,), scores (N,)) as tensors."""
    if kind == "binary":
        p = output[:, 0]
        probs = tf.stack([1.0 - p, p], axis=1)
    elif kind == "linear":
        probs = tf.nn.softmax(output, axis=-1)
    else:
        probs = output
    chosen = tf.where(targets >= 0, targets, tf.cast(tf.argmax(probs, axis=-1), tf.int32))
    if kind == "binary":
        sign = tf.cast(chosen, tf.float32) * 2.0 - 1.0
        score = sign * (logits[:, 0] if has_logits else p) + (
            0.0 if has_logits else 1.0 - tf.cast(chosen, tf.float32))
    else:
        source = logits if has_logits else probs
        score = tf.gather(source, chosen, axis=1, batch_dims=1)
    return probs, chosen, score


def _step(model: LoadedModel, layer: str):
    """The compiled batch step ``(x, targets) -> (probs, chosen, cam)`` for ``layer``, built once
    per model and layer (in :meth:`LoadedModel.derived`)."""

    def build():
        kind = model.info.output_kind
        try:
            halves = split_at(model.model, layer,
                              flat=model.derived(("flat_graph",), lambda: flat_graph(model.model)))
        except ModelError:
            return _headless_step(model, layer, kind)

        @tf.function(reduce_retracing=True, autograph=False)
        def step(x, targets):
            acts, ctx = halves.run_front(x)
            with tf.GradientTape() as tape:
                tape.watch(acts)
                logits, output = halves.run_back(acts, ctx)
                probs, chosen, score = _class_scores(logits, output, targets, kind,
                                                     halves.has_logits)
                total = tf.reduce_sum(score)  # inside the tape: each image's own gradient
            return (probs, chosen, *_cam(acts, tape.gradient(total, acts)))

        return step

    return model.derived(("batch_gradcam", layer), build)


def _cam(acts, grads):
    """((N, h, w) Grad-CAM before the ReLU,) from activations and gradients (N, h, w, k)."""
    weights = tf.reduce_mean(grads, axis=(1, 2))
    return (tf.einsum("nhwk,nk->nhw", acts, weights),)


def _headless_step(model: LoadedModel, layer: str, kind: str):
    """The batch step for graphs Keras cannot cut: the whole model runs under the tape (same
    numbers, one full pass more per gradient)."""
    try:
        probe, has_logits = model.side_model([layer], logits=True, output=True), True
    except ModelError:
        probe, has_logits = model.side_model([layer], output=True), False

    @tf.function(reduce_retracing=True, autograph=False)
    def step(x, targets):
        with tf.GradientTape() as tape:
            outs = probe(x, training=False)
            acts, logits, output = outs if has_logits else (outs[0], None, outs[1])
            probs, chosen, score = _class_scores(logits, output, targets, kind, has_logits)
            total = tf.reduce_sum(score)
        return (probs, chosen, *_cam(acts, tape.gradient(total, acts)))

    return step


def _layer(model: LoadedModel, layer: str | None) -> str:
    if layer is None or not str(layer).strip():
        return model.info.last_conv_layer
    known = {entry.path: entry for entry in model.info.layers}
    path = str(layer).strip()
    if path not in known or not known[path].spatial:
        raise ParameterError(
            f"The model has no convolutional-stage layer called {path!r}; try "
            f"{model.info.last_conv_layer!r}."
        )
    return path


def explain_batch(model: LoadedModel, pixels: np.ndarray, *, layer: str | None = None,
                  map_size: int = DEFAULT_MAP_SIZE, targets: np.ndarray | None = None,
                  full: bool = False) -> BatchResult:
    """Predictions and Grad-CAM maps of a batch of images, in one forward and one gradient pass.

    Parameters
    ----------
    model : LoadedModel
        Never modified.
    pixels : np.ndarray
        (N, H, W, C) float32 in [0, 255] at the model's input size (``model.view(img).pixels``
        stacked); preprocessing is applied here.
    layer : str or None
        Layer to explain; None is the last conv layer.
    map_size : int
        Side of the small maps kept, 4 to 64.
    targets : np.ndarray or None
        (N,) int classes to explain; -1 or None means the predicted class.
    full : bool
        Also return the maps at the model's input size.

    Returns
    -------
    BatchResult

    Raises
    ------
    ParameterError
        Pixels of the wrong shape, an unknown layer or a map size out of range.
    """
    expected = tuple(model.info.input_shape)
    pixels = np.asarray(pixels, dtype="float32")
    if pixels.ndim != 4 or tuple(pixels.shape[1:]) != expected:
        raise ParameterError(f"Expected a batch of images shaped (N, {expected[0]}, "
                             f"{expected[1]}, {expected[2]}); got {pixels.shape}.")
    if not 4 <= int(map_size) <= 64:
        raise ParameterError(f"The small map size must be 4 to 64 pixels; got {map_size}.")
    n = len(pixels)
    wanted = np.full(n, -1, np.int32) if targets is None else np.asarray(targets, np.int32)
    probs, chosen, cam = _step(model, _layer(model, layer))(
        tf.convert_to_tensor(model.batch(pixels)), tf.convert_to_tensor(wanted))
    # As class_heatmap: resize to the input, then scale each map to its maximum. Done for the
    # whole batch at once: tf.image.resize (bilinear, half-pixel centres) gives resize_map's
    # numbers (scikit-image, order 1) to 1e-6, and a loop over images cost a third of the run.
    height, width = expected[:2]
    heat = tf.image.resize(tf.nn.relu(cam)[..., None], (height, width), method="bilinear")
    peak = tf.reduce_max(heat, axis=(1, 2, 3), keepdims=True)
    heat = tf.clip_by_value(tf.math.divide_no_nan(heat, peak), 0.0, 1.0)
    small = tf.image.resize(heat, (map_size, map_size), method="bilinear")
    return BatchResult(probs.numpy().astype(np.float32), chosen.numpy().astype(np.int64),
                       small.numpy()[..., 0].astype(np.float32),
                       heat.numpy()[..., 0].astype(np.float32) if full else None)


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
        (N, map_size, map_size) float32 in [0, 1]: Grad-CAM of the predicted class.
    skipped : tuple of SkippedFile
        Files left out while listing or reading, with the reason.
    unknown_labels : tuple of (str, int)
    layer, method : str
    map_files : tuple of str or None
        With ``full_maps_dir``: the ``.npy`` file of each image's full-size map.
    seconds : float
        Wall time of the run.
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
                    full_maps_dir: str | Path | None = None) -> EntriesResult:
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
        Layer path (already checked, see :func:`resolve_layer`).
    map_size : int
    full_maps_dir : path or None
        Existing folder for the full-size maps, named by :func:`map_file_name` (position, path).

    Returns
    -------
    EntriesResult
    """
    positions, pixels, failed = [], [], []
    for position, path in batch:
        try:
            got = read(path)
            image = got if isinstance(got, LoadedImage) else load_image(got, path)
            pixels.append(model.view(image).pixels)
            positions.append(position)
        except ImageError as exc:
            failed.append((position, SkippedFile(path, str(exc))))
    k = len(model.labels)
    if not pixels:
        return EntriesResult(np.zeros(0, np.int64), np.zeros((0, k), np.float32),
                             np.zeros(0, np.int64), np.zeros((0, map_size, map_size), np.float32),
                             (), tuple(failed))
    folder = None if full_maps_dir is None else Path(full_maps_dir)
    result = explain_batch(model, np.stack(pixels), layer=layer, map_size=map_size,
                           full=folder is not None)
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
                      map_size: int) -> str:
    """The layer path to explain, once the options are checked (both engines).

    Raises
    ------
    ParameterError
    """
    if method not in METHODS:
        raise ParameterError(f"Dataset runs explain with {', '.join(METHODS)}; got {method!r}.")
    if not 1 <= int(batch_size) <= MAX_BATCH_SIZE:
        raise ParameterError(f"The batch size must be 1 to {MAX_BATCH_SIZE}; got {batch_size}.")
    if not 4 <= int(map_size) <= 64:
        raise ParameterError(f"The small map size must be 4 to 64 pixels; got {map_size}.")
    return _layer(model, layer)


class RunCollector:
    """Puts batches' results together into a :class:`DatasetRun`, in dataset order whatever
    order the batches arrive in (the Ray engine's come as workers finish)."""

    def __init__(self, model: LoadedModel, dataset: Dataset, *, layer: str, method: str,
                 with_files: bool):
        self.model, self.dataset, self.layer, self.method = model, dataset, layer, method
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
        )


def run_dataset(model: LoadedModel, dataset: Dataset, *, batch_size: int = DEFAULT_BATCH_SIZE,
                layer: str | None = None, method: str = "gradcam",
                map_size: int = DEFAULT_MAP_SIZE, full_maps_dir: str | Path | None = None,
                progress: ProgressFn | None = None, should_stop: StopFn | None = None,
                ) -> DatasetRun:
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
        Layer Grad-CAM explains; None is the last conv layer.
    method : str
        ``"gradcam"`` (the one batched method).
    map_size : int
        Side of the small maps kept in memory.
    full_maps_dir : path or None
        Folder for each image's full-size map as ``.npy`` (float32 in [0, 1], model input size);
        created if missing. None keeps no full-size map anywhere.
    progress : callable(fraction, message) or None
    should_stop : callable() -> bool, or None
        Checked between batches.

    Returns
    -------
    DatasetRun

    Raises
    ------
    ParameterError
        Bad batch size, method, layer or map size, or every image failed to load.
    Cancelled
        ``should_stop()`` returned True.
    """
    layer_path = check_run_options(model, batch_size=batch_size, layer=layer, method=method,
                                   map_size=map_size)
    folder = None if full_maps_dir is None else Path(full_maps_dir)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    entries, total = dataset.entries, len(dataset.entries)
    collector = RunCollector(model, dataset, layer=layer_path, method=method,
                             with_files=folder is not None)
    if progress is not None:
        progress(0.0, f"0 of {total} images")
    for start in range(0, total, int(batch_size)):
        if should_stop is not None and should_stop():
            raise Cancelled(f"The dataset run was stopped after {collector.done} of {total} "
                            "images.")
        batch = [(i, entries[i].path) for i in range(start, min(total, start + int(batch_size)))]
        done = collector.add(explain_entries(model, dataset.reader, batch, layer=layer_path,
                                             map_size=map_size, full_maps_dir=folder))
        if progress is not None:
            progress(done / max(1, total), collector.message())
    return collector.finish()
