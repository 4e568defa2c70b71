"""The neuron atlas: what each channel of a layer responds to, shown with the dataset's images.

For a layer of a model over a :class:`~viz_core.dataset.readers.Dataset`, per channel:

* the top-k images by the channel's spatial maximum (or mean, ``score="mean"``), each with the
  position of the maximum in the layer's grid and the receptive-field box around it in input
  pixels (:func:`layer_field`: kernels, strides, padding and dilation along the path from the
  input; clipped at the border);
* the bottom-k (the images that silence it);
* a histogram of the per-image scores;
* class selectivity: mean activation (spatial mean) per label, or per predicted class when the
  dataset has no labels; the most selective class and ``(a_max - a_rest) / (a_max + a_rest)``.

Memory is O(channels x k) whatever the number of images: each batch's (batch x channels)
scores are merged into the kept top-k with one vectorised sort per batch (numpy over all
channels at once; a ``heapq`` per channel would be a Python push per image and channel,
2.5 million of them for 512 channels over 5,000 images). The histogram is one pass with running
bounds: each channel keeps ``BINS`` bins whose range doubles when a value falls outside (pairs of
bins merge), so counts stay exact without a first pass over the data.

:func:`atlas_entries` is the per-batch function (read some entries, run the model to the layer,
reduce to per-channel numbers); :class:`AtlasCollector` merges batches in any order, so a
distributed engine can run the same function. :func:`neuron_atlas` is the local engine, and
:func:`cached_atlas` keeps results on disk keyed by (model, layer, dataset, k, score).
Pictures (crops, overlays, PNG files) are drawn by the front ends from :func:`exemplar_pixels`
and :func:`channel_maps`; :func:`cached_unit_patterns` finds a unit's synthetic pattern where
the Filter patterns page left it in the disk cache, without drawing it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from viz_core.dataset.readers import Dataset, SkippedFile
from viz_core.errors import Cancelled, ImageError, ParameterError
from viz_core.inputs.intake import LoadedImage, load_image
from viz_core.models.loaded import LoadedModel
from viz_core.runtime.cache import DiskCache

DEFAULT_K = 8
MAX_K = 64
BINS = 32  # histogram bins per channel (even: the range doubles by merging pairs)
SCORES = ("max", "mean")
DEFAULT_BATCH_SIZE = 32
_EPS = 1e-7

ProgressFn = Callable[[float, str], None]
StopFn = Callable[[], bool]


# --------------------------------------------------------------------------------------------
# Receptive fields from the layers' geometry
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """Where a layer's units look in the input, per axis (rows, columns).

    Unit ``(y, x)`` sees input rows ``start[0] + y * jump[0]`` up to (not including)
    ``... + size[0]``, and likewise for columns.

    Attributes
    ----------
    size : (int, int)
        Side of one unit's field in input pixels.
    jump : (int, int)
        Input pixels between neighbouring units (the total stride).
    start : (int, int)
        First input row and column of unit (0, 0)'s field; negative with ``same`` padding.
    measured : bool
        True when the layers' geometry was not known and the field was measured by gradient
        (:func:`viz_core.features.ascent.receptive_field`).
    """

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[int, int]
    measured: bool = False

    def box(self, y: int, x: int, height: int, width: int) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` of unit ``(y, x)``'s field in input pixels, clipped to the
        ``height`` x ``width`` image; ``x1``, ``y1`` exclusive."""
        y0 = self.start[0] + int(y) * self.jump[0]
        x0 = self.start[1] + int(x) * self.jump[1]
        return (max(0, x0), max(0, y0), min(width, x0 + self.size[1]),
                min(height, y0 + self.size[0]))


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, (int, np.integer)) else tuple(
        int(v) for v in value)


def _same_pad(n: int, kernel: int, stride: int) -> int:
    """Padding before the first row (TensorFlow's ``same``: the extra pixel goes after)."""
    total = max((math.ceil(n / stride) - 1) * stride + kernel - n, 0)
    return total // 2


def _spatial(tensor) -> tuple[int, int] | None:
    shape = tuple(tensor.shape)
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        return None
    return int(shape[1]), int(shape[2])


class _UnknownGeometry(Exception):
    """A layer on the path whose effect on positions is not known (resizing, transposed conv)."""


def _field_of(tensor, memo: dict) -> tuple:
    """(size, jump, start) per axis of ``tensor``, walking the graph back to the input."""
    key = id(tensor)
    if key in memo:
        return memo[key]
    history = getattr(tensor, "_keras_history", None)  # Keras's only record of the producer
    layer = None if history is None else history[0]
    node = None if layer is None else layer._inbound_nodes[history[1]]
    parents = [] if node is None else [t for t in _flat(node.input_tensors)
                                       if _spatial(t) is not None]
    if not parents:  # the input
        memo[key] = ((1, 1), (1, 1), (0, 0))
        return memo[key]
    # Several inputs (Add, Concatenate): the widest field decides what a unit can see.
    size, jump, start = max((_field_of(t, memo) for t in parents), key=lambda f: f[0])
    kernel = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
    n_in, n_out = _spatial(parents[0]), _spatial(tensor)
    if kernel is not None and type(layer).__name__ != "Conv2DTranspose":
        kernel = _pair(kernel)
        strides = _pair(getattr(layer, "strides", None) or kernel)
        dilation = _pair(getattr(layer, "dilation_rate", 1))
        padding = getattr(layer, "padding", "valid")
        out = []
        for a in range(2):
            k_eff = dilation[a] * (kernel[a] - 1) + 1
            pad = _same_pad(n_in[a], k_eff, strides[a]) if padding == "same" else 0
            out.append((size[a] + (k_eff - 1) * jump[a], jump[a] * strides[a],
                        start[a] - pad * jump[a]))
        result = tuple(zip(*out))
    elif n_in == n_out:  # activation, normalisation, dropout...: positions unchanged
        result = (size, jump, start)
    else:
        raise _UnknownGeometry(type(layer).__name__)
    memo[key] = result
    return result


def _flat(value) -> list:
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flat(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flat(v)]
    return [value]


def layer_field(model: LoadedModel, layer: str) -> Field:
    """The receptive field of ``layer``'s units, from the kernels, strides, padding and
    dilation of the layers between the input and it (the widest path where branches meet).

    Layers whose geometry is not known (resizing, transposed convolutions) fall back to the
    field measured by gradient (:func:`viz_core.features.ascent.receptive_field`).
    """
    def build() -> Field:
        from viz_core.models.graph import flat_graph

        try:
            tensor = flat_graph(model.model).tensors[layer]
            size, jump, start = _field_of(tensor, {})
            return Field(tuple(size), tuple(jump), tuple(start))
        except (_UnknownGeometry, KeyError):
            from viz_core.features.ascent import receptive_field

            rf = receptive_field(model, layer)
            return Field((rf.size, rf.size), (rf.jump, rf.jump), (rf.offset, rf.offset),
                         measured=True)

    return model.derived(("atlas.field", layer), build)


# --------------------------------------------------------------------------------------------
# The per-batch function
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class AtlasBatch:
    """Per-channel numbers of one batch of dataset entries.

    Attributes
    ----------
    positions : np.ndarray
        (n,) int64 positions in the dataset's entries of the images read.
    maxima, means : np.ndarray
        (n, C) float32: each channel's spatial maximum and mean in each image.
    where : np.ndarray
        (n, C, 2) int32 ``[y, x]`` of each maximum in the layer's grid.
    groups : np.ndarray
        (n,) int64 class of each image for selectivity (label, or prediction when the dataset
        has no labels); -1 for none.
    failed : tuple of (int, SkippedFile)
    """

    positions: np.ndarray
    maxima: np.ndarray
    means: np.ndarray
    where: np.ndarray
    groups: np.ndarray
    failed: tuple[tuple[int, SkippedFile], ...]


def _forward(model: LoadedModel, layer: str, predict: bool):
    """pixels (N, H, W, C) in [0, 255] -> (activations (N, h, w, K), probabilities or None)."""
    import tensorflow as tf

    def build():
        side = model.side_model([layer], output=predict)

        @tf.function(reduce_retracing=True)
        def run(x):
            outs = side(x, training=False)
            return outs if predict else (outs[0] if isinstance(outs, (list, tuple)) else outs,)

        return run

    run = model.derived(("atlas.forward", layer, predict), build)

    def forward(pixels):
        outs = run(tf.constant(model.batch(pixels)))
        return outs[0].numpy(), (outs[1].numpy() if predict else None)

    return forward


def atlas_entries(model: LoadedModel, read: Callable[[str], object],
                  batch: Sequence[tuple[int, str, int]], *, layer: str,
                  channels: np.ndarray | None = None, predict: bool = False) -> AtlasBatch:
    """Read some entries, run the model to ``layer`` and reduce each channel to numbers.

    Parameters
    ----------
    model : LoadedModel
    read : callable(path) -> bytes or LoadedImage
        The dataset's reader.
    batch : sequence of (int, str, int)
        Each entry's position, path and label's class (-1 for none).
    layer : str
        A layer with feature maps (checked by the caller).
    channels : np.ndarray or None
        (C,) channel indices kept; None keeps all.
    predict : bool
        Group images by predicted class instead of their labels.
    """
    positions, pixels, labels, failed = [], [], [], []
    for position, path, label in batch:
        try:
            got = read(path)
            image = got if isinstance(got, LoadedImage) else load_image(got, path)
            pixels.append(model.view(image).pixels)
            positions.append(position)
            labels.append(label)
        except ImageError as exc:
            failed.append((position, SkippedFile(path, str(exc))))
    if not pixels:
        c = 0 if channels is None else len(channels)
        return AtlasBatch(np.zeros(0, np.int64), np.zeros((0, c), np.float32),
                          np.zeros((0, c), np.float32), np.zeros((0, c, 2), np.int32),
                          np.zeros(0, np.int64), tuple(failed))
    acts, probs = _forward(model, layer, predict)(np.stack(pixels))
    if channels is not None:
        acts = acts[..., channels]
    n, h, w, c = acts.shape
    flat = acts.reshape(n, h * w, c)
    best = flat.argmax(axis=1)  # (n, C): first maximum in row-major order
    maxima = np.take_along_axis(flat, best[:, None, :], axis=1)[:, 0, :]
    where = np.stack([best // w, best % w], axis=-1).astype(np.int32)
    if predict:  # as the rest of the project reads outputs (one sigmoid unit: 2 classes)
        from viz_core.models.targets import class_probabilities

        groups = class_probabilities(probs, model.info.output_kind).argmax(axis=1)
    else:
        groups = np.asarray(labels)
    return AtlasBatch(np.asarray(positions, np.int64), maxima.astype(np.float32),
                      flat.mean(axis=1).astype(np.float32), where,
                      np.asarray(groups, np.int64), tuple(failed))


# --------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Atlas:
    """A layer's channels, each with its exemplars, histogram and class selectivity.

    Image references (``top_refs``, ``bottom_refs``) index ``names`` and ``entries``; -1 pads a
    row when the dataset has fewer than ``k`` images.

    Attributes
    ----------
    layer, dataset, score : str
        ``score`` is ``"max"`` or ``"mean"``: how images are ranked.
    model_identity, dataset_identity : str
    k : int
    channels : np.ndarray
        (C,) int64 channel numbers in the layer.
    images : int
        Images read.
    names : tuple of str
        Paths of the images referenced, sorted by dataset position.
    entries : np.ndarray
        (U,) int64 dataset position of each of ``names``.
    top_refs, bottom_refs : np.ndarray
        (C, k) int64; top: highest score first, bottom: lowest first (ties: earlier image).
    top_values, bottom_values : np.ndarray
        (C, k) float32 each image's spatial maximum of the channel (the contract's
        ``activation``, whatever ``score`` ranks by).
    top_where, bottom_where : np.ndarray
        (C, k, 2) int32 ``[y, x]`` of the maximum in the layer's grid.
    hist_counts : np.ndarray
        (C, BINS) int64 per-image scores; bin ``b`` of channel ``c`` is
        ``[hist_low[c] + b * hist_width[c], ... + hist_width[c])``.
    hist_low, hist_width : np.ndarray
        (C,) float64.
    classes : tuple of str
    class_means : np.ndarray
        (C, K) float32 mean of the channel's spatial mean per class; NaN for a class with no
        image.
    class_counts : np.ndarray
        (K,) int64 images per class.
    grouped_by : str
        ``"label"`` or ``"predicted"``.
    field : Field
    input_size, grid_size : (int, int)
        Height and width of the model's input and of the layer's grid.
    skipped : tuple of SkippedFile
    seconds : float
    """

    layer: str
    dataset: str
    score: str
    model_identity: str
    dataset_identity: str
    k: int
    channels: np.ndarray
    images: int
    names: tuple[str, ...]
    entries: np.ndarray
    top_refs: np.ndarray
    top_values: np.ndarray
    top_where: np.ndarray
    bottom_refs: np.ndarray
    bottom_values: np.ndarray
    bottom_where: np.ndarray
    hist_counts: np.ndarray
    hist_low: np.ndarray
    hist_width: np.ndarray
    classes: tuple[str, ...]
    class_means: np.ndarray
    class_counts: np.ndarray
    grouped_by: str
    field: Field
    input_size: tuple[int, int]
    grid_size: tuple[int, int]
    skipped: tuple[SkippedFile, ...] = ()
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.channels)

    def row(self, channel: int) -> int:
        """Row of layer channel ``channel`` in the arrays.

        Raises
        ------
        ParameterError
            The channel is not in this atlas.
        """
        hits = np.nonzero(self.channels == int(channel))[0]
        if not len(hits):
            raise ParameterError(f"Channel {channel} is not in this atlas; it has channels "
                                 f"{int(self.channels[0])} to {int(self.channels[-1])}.")
        return int(hits[0])

    @property
    def selective_for(self) -> np.ndarray:
        """(C,) int64 class with the highest mean activation (-1 when no class has images)."""
        means = np.where(np.isnan(self.class_means), -np.inf, self.class_means)
        best = means.argmax(axis=1)
        return np.where(np.isfinite(means.max(axis=1)), best, -1).astype(np.int64)

    @property
    def selectivity(self) -> np.ndarray:
        """(C,) float32 ``(a_max - a_rest) / (a_max + a_rest)``: ``a_max`` the highest class
        mean, ``a_rest`` the mean of the other classes' means (classes with images only).
        In [0, 1] for non-negative activations; 0 with fewer than two classes."""
        out = np.zeros(len(self), np.float32)
        seen = self.class_counts > 0
        if seen.sum() < 2:
            return out
        means = self.class_means[:, seen].astype(np.float64)
        a_max = means.max(axis=1)
        a_rest = (means.sum(axis=1) - a_max) / (means.shape[1] - 1)
        return ((a_max - a_rest) / (np.abs(a_max + a_rest) + _EPS)).astype(np.float32)

    def box(self, y: int, x: int) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` receptive-field box of grid unit ``(y, x)``, clipped."""
        return self.field.box(y, x, *self.input_size)

    def exemplars(self, channel: int, which: str = "top") -> list[dict]:
        """``[{image, entry, activation, position: [y, x], box: [x0, y0, x1, y1]}]`` of a
        channel's top or bottom images, best first."""
        r = self.row(channel)
        refs, values, where = ((self.top_refs, self.top_values, self.top_where) if which == "top"
                               else (self.bottom_refs, self.bottom_values, self.bottom_where))
        out = []
        for ref, value, (y, x) in zip(refs[r], values[r], where[r]):
            if ref < 0:
                continue
            out.append({"image": self.names[ref], "entry": int(self.entries[ref]),
                        "activation": float(value), "position": [int(y), int(x)],
                        "box": list(self.box(y, x))})
        return out

    def histogram(self, channel: int) -> tuple[np.ndarray, np.ndarray]:
        """``(counts (BINS,), edges (BINS + 1,))`` of a channel's per-image scores."""
        r = self.row(channel)
        edges = self.hist_low[r] + self.hist_width[r] * np.arange(BINS + 1)
        return self.hist_counts[r].copy(), edges

    def to_index(self) -> dict:
        """The JSON index: ``{layer, images, channels: [{channel, top, bottom, mean_by_class,
        selective_for, selectivity, histogram}], ...}`` (the command's contract)."""
        selective, index = self.selective_for, self.selectivity
        units = []
        for r, channel in enumerate(self.channels):
            counts, edges = self.histogram(int(channel))
            units.append({
                "channel": int(channel),
                "top": self.exemplars(int(channel), "top"),
                "bottom": self.exemplars(int(channel), "bottom"),
                "mean_by_class": {name: (None if np.isnan(v) else float(v))
                                  for name, v in zip(self.classes, self.class_means[r])},
                "selective_for": (self.classes[selective[r]] if selective[r] >= 0 else None),
                "selectivity": float(index[r]),
                "histogram": {"counts": counts.tolist(), "edges": edges.tolist()},
            })
        return {"layer": self.layer, "dataset": self.dataset, "images": self.images,
                "score": self.score, "k": self.k, "grouped_by": self.grouped_by,
                "classes": list(self.classes), "class_counts": self.class_counts.tolist(),
                "input_size": list(self.input_size), "grid_size": list(self.grid_size),
                "field": {"size": list(self.field.size), "jump": list(self.field.jump),
                          "start": list(self.field.start), "measured": self.field.measured},
                "skipped": [{"file": s.file, "reason": s.reason} for s in self.skipped],
                "seconds": self.seconds, "channels": units}

    # -- on disk: named arrays only (DiskCache reads without pickle) --------------------------
    _ARRAYS = ("channels", "entries", "top_refs", "top_values", "top_where", "bottom_refs",
               "bottom_values", "bottom_where", "hist_counts", "hist_low", "hist_width",
               "class_means", "class_counts")

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything as named numpy arrays (strings as unicode arrays)."""
        out = {name: getattr(self, name) for name in self._ARRAYS}
        out["text"] = np.asarray([self.layer, self.dataset, self.score, self.model_identity,
                                  self.dataset_identity, self.grouped_by])
        out["names"] = np.asarray(self.names, dtype=str).reshape(-1)
        out["classes"] = np.asarray(self.classes, dtype=str).reshape(-1)
        out["numbers"] = np.asarray([self.k, self.images, *self.field.size, *self.field.jump,
                                     *self.field.start, int(self.field.measured),
                                     *self.input_size, *self.grid_size], np.int64)
        out["skipped"] = np.asarray([[s.file, s.reason] for s in self.skipped],
                                    dtype=str).reshape(-1, 2)
        out["seconds"] = np.asarray(self.seconds)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Atlas:
        layer, dataset, score, model_id, data_id, grouped = (str(t) for t in arrays["text"])
        n = [int(v) for v in arrays["numbers"]]
        return cls(layer=layer, dataset=dataset, score=score, model_identity=model_id,
                   dataset_identity=data_id, k=n[0], images=n[1],
                   names=tuple(str(s) for s in arrays["names"]),
                   classes=tuple(str(s) for s in arrays["classes"]), grouped_by=grouped,
                   field=Field((n[2], n[3]), (n[4], n[5]), (n[6], n[7]), bool(n[8])),
                   input_size=(n[9], n[10]), grid_size=(n[11], n[12]),
                   skipped=tuple(SkippedFile(str(f), str(r)) for f, r in arrays["skipped"]),
                   seconds=float(arrays["seconds"]),
                   **{name: arrays[name] for name in cls._ARRAYS})


# --------------------------------------------------------------------------------------------
# Merging batches: top-k, bottom-k, histograms, class sums
# --------------------------------------------------------------------------------------------
def _keep(kept: tuple, new: tuple, k: int, highest: bool) -> tuple:
    """The k best of the kept and the new candidates per channel, in one sort for all
    channels: by rank key (highest or lowest first), then by earlier image.

    ``kept`` and ``new`` are ``(keys (C, m), refs (C, m), values (C, m), where (C, m, 2))``.
    """
    keys, refs, values, where = (np.concatenate([a, b], axis=1) for a, b in zip(kept, new))
    order = np.lexsort((refs, -keys if highest else keys), axis=1)[:, :k]
    return (np.take_along_axis(keys, order, 1), np.take_along_axis(refs, order, 1),
            np.take_along_axis(values, order, 1), np.take_along_axis(where, order[..., None], 1))


class AtlasCollector:
    """Merges :class:`AtlasBatch` results, in any order, into an :class:`Atlas` with memory
    O(channels x (k + BINS + classes))."""

    def __init__(self, model: LoadedModel, dataset: Dataset, *, layer: str, k: int,
                 score: str, channels: np.ndarray, grouped_by: str, field: Field,
                 grid_size: tuple[int, int]):
        self.model, self.dataset, self.layer, self.k, self.score = model, dataset, layer, k, score
        self.channels, self.grouped_by, self.field = channels, grouped_by, field
        self.grid_size = grid_size
        c, classes = len(channels), len(model.labels)
        empty = (np.zeros((c, 0), np.float32), np.zeros((c, 0), np.int64),
                 np.zeros((c, 0), np.float32), np.zeros((c, 0, 2), np.int32))
        self.top = self.bottom = empty
        self.hist_counts = np.zeros((c, BINS), np.int64)
        self.hist_low = np.zeros(c, np.float64)
        self.hist_width = np.zeros(c, np.float64)  # 0: no value seen yet
        self.sums = np.zeros((c, classes), np.float64)
        self.counts = np.zeros(classes, np.int64)
        self.images, self.done = 0, 0
        self.failed: list[tuple[int, SkippedFile]] = []
        self.started = time.perf_counter()

    def add(self, part: AtlasBatch) -> int:
        """Merge one batch; returns the number of entries done so far."""
        self.done += len(part.positions) + len(part.failed)
        self.failed.extend(part.failed)
        if not len(part.positions):
            return self.done
        self.images += len(part.positions)
        ranked = part.maxima if self.score == "max" else part.means
        new = (ranked.T, np.broadcast_to(part.positions[None, :], ranked.T.shape),
               part.maxima.T, part.where.transpose(1, 0, 2))
        self.top = _keep(self.top, new, self.k, highest=True)
        self.bottom = _keep(self.bottom, new, self.k, highest=False)
        self._histogram(ranked)
        ok = part.groups >= 0
        np.add.at(self.sums.T, part.groups[ok], part.means[ok].astype(np.float64))
        np.add.at(self.counts, part.groups[ok], 1)
        return self.done

    def _histogram(self, scores: np.ndarray) -> None:
        """Add (n, C) scores to each channel's bins, doubling a channel's range (merging pairs
        of bins) until its values fit: counts stay exact in one pass."""
        for r in range(scores.shape[1]):
            v = scores[:, r].astype(np.float64)
            lo, hi = float(v.min()), float(v.max())
            if self.hist_width[r] == 0.0:
                self.hist_low[r] = lo
                self.hist_width[r] = max(hi - lo, 1e-6) / BINS * (1 + 1e-9)
            counts, low, width = self.hist_counts[r], self.hist_low[r], self.hist_width[r]
            while hi >= low + width * BINS:  # grow upwards
                counts = np.concatenate([counts.reshape(-1, 2).sum(1),
                                         np.zeros(BINS // 2, np.int64)])
                width *= 2
            while lo < low:  # grow downwards
                counts = np.concatenate([np.zeros(BINS // 2, np.int64),
                                         counts.reshape(-1, 2).sum(1)])
                low -= width * BINS
                width *= 2
            bins = np.clip(((v - low) / width).astype(np.int64), 0, BINS - 1)
            self.hist_counts[r] = counts + np.bincount(bins, minlength=BINS)
            self.hist_low[r], self.hist_width[r] = low, width

    def message(self) -> str:
        total = len(self.dataset.entries)
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.done * (total - self.done) if self.done else 0.0
        return f"{self.done} of {total} images, about {left:.0f} s left"

    def finish(self) -> Atlas:
        total = len(self.dataset.entries)
        failed = sorted(self.failed, key=lambda f: f[0])
        skipped = tuple(self.dataset.skipped) + tuple(f[1] for f in failed)
        if not self.images:
            raise ParameterError(f"None of the {total} images of {self.dataset.name!r} could "
                                 f"be read; the first problem: "
                                 f"{skipped[0].reason if skipped else 'none'}.")
        _, top_pos, top_values, top_where = self.top
        _, bottom_pos, bottom_values, bottom_where = self.bottom
        used = np.unique(np.concatenate([top_pos.ravel(), bottom_pos.ravel()]))
        used = used[used >= 0]
        ref_of = {int(p): i for i, p in enumerate(used)}

        def refs(pos):
            return np.vectorize(lambda p: ref_of.get(int(p), -1), otypes=[np.int64])(pos)

        def pad(a, fill):
            missing = self.k - a.shape[1]
            if missing <= 0:
                return a
            shape = (a.shape[0], missing) + a.shape[2:]
            return np.concatenate([a, np.full(shape, fill, a.dtype)], axis=1)

        with np.errstate(invalid="ignore", divide="ignore"):
            means = (self.sums / self.counts[None, :]).astype(np.float32)
        means[:, self.counts == 0] = np.nan
        height, width = self.model.info.input_shape[:2]
        return Atlas(
            layer=self.layer, dataset=self.dataset.name, score=self.score,
            model_identity=self.model.identity, dataset_identity=self.dataset.identity,
            k=self.k, channels=self.channels, images=self.images,
            names=tuple(self.dataset.entries[int(p)].path for p in used),
            entries=used.astype(np.int64),
            top_refs=pad(refs(top_pos), -1), top_values=pad(top_values, np.nan),
            top_where=pad(top_where, -1),
            bottom_refs=pad(refs(bottom_pos), -1), bottom_values=pad(bottom_values, np.nan),
            bottom_where=pad(bottom_where, -1),
            hist_counts=self.hist_counts, hist_low=self.hist_low, hist_width=self.hist_width,
            classes=tuple(self.model.labels), class_means=means, class_counts=self.counts,
            grouped_by=self.grouped_by, field=self.field, input_size=(int(height), int(width)),
            grid_size=self.grid_size, skipped=skipped,
            seconds=time.perf_counter() - self.started)


# --------------------------------------------------------------------------------------------
# The local engine
# --------------------------------------------------------------------------------------------
def parse_channels(text: str | Sequence[int] | None, count: int) -> np.ndarray:
    """Channel numbers from ``"0:64"``, ``"3,7"``, a sequence or None (all ``count``).

    Raises
    ------
    ParameterError
        A channel outside ``0..count-1`` or text that is not a range or a list.
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        return np.arange(count, dtype=np.int64)
    try:
        if isinstance(text, str) and ":" in text:
            start, _, stop = text.partition(":")
            picked = list(range(int(start or 0), min(count, int(stop)) if stop else count))
        elif isinstance(text, str):
            picked = [int(t) for t in text.split(",") if t.strip()]
        else:
            picked = [int(t) for t in text]
    except ValueError:
        raise ParameterError(f"Channels are a range like 0:64 or a list like 3,7; got "
                             f"{text!r}.") from None
    bad = [c for c in picked if not 0 <= c < count]
    if not picked or bad:
        raise ParameterError(f"The layer has channels 0 to {count - 1}; got {text!r}.")
    return np.asarray(sorted(set(picked)), np.int64)


def check_atlas_options(model: LoadedModel, layer: str | None, k: int, score: str,
                        batch_size: int) -> str:
    """The layer path once the options are checked.

    Raises
    ------
    ParameterError
    """
    from viz_core.methods.checks import resolve_layer

    if not 1 <= int(k) <= MAX_K:
        raise ParameterError(f"k (images per channel) must be 1 to {MAX_K}; got {k}.")
    if score not in SCORES:
        raise ParameterError(f"Images are ranked by one of {', '.join(SCORES)}; got {score!r}.")
    if not 1 <= int(batch_size) <= 512:
        raise ParameterError(f"The batch size must be 1 to 512; got {batch_size}.")
    return resolve_layer(model, layer)


def neuron_atlas(model: LoadedModel, dataset: Dataset, layer: str | None = None, *,
                 k: int = DEFAULT_K, score: str = "max",
                 channels: str | Sequence[int] | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, progress: ProgressFn | None = None,
                 should_stop: StopFn | None = None) -> Atlas:
    """Each channel of ``layer`` over ``dataset``: exemplars, histogram, class selectivity.

    Parameters
    ----------
    model : LoadedModel
        Never modified.
    dataset : Dataset
        Labels matched to ``model``'s classes; without labels, images are grouped by
        predicted class (one extra pass through the rest of the model).
    layer : str or None
        A layer with feature maps; None is the last conv layer.
    k : int
        Top and bottom images kept per channel, 1 to 64.
    score : str
        ``"max"`` (spatial maximum) or ``"mean"`` ranks the images.
    channels : str, sequence of int or None
        ``"0:64"``, a list, or None for every channel.
    batch_size : int
    progress : callable(fraction, message) or None
    should_stop : callable() -> bool or None
        Checked between batches.

    Returns
    -------
    Atlas

    Raises
    ------
    ParameterError
        Bad layer, k, score, channels or batch size; every image failed to load.
    Cancelled
        ``should_stop()`` returned True.
    """
    collector, every = start_atlas(model, dataset, layer, k=k, score=score, channels=channels,
                                   batch_size=batch_size)
    total = len(dataset.entries)
    if progress is not None:
        progress(0.0, f"0 of {total} images")
    for start in range(0, total, int(batch_size)):
        if should_stop is not None and should_stop():
            raise Cancelled(f"The atlas was stopped after {collector.done} of {total} images.")
        batch = entry_batch(dataset, start, min(total, start + int(batch_size)))
        done = collector.add(atlas_entries(model, dataset.reader, batch, layer=collector.layer,
                                           channels=every,
                                           predict=collector.grouped_by == "predicted"))
        if progress is not None:
            progress(done / max(1, total), collector.message())
    return collector.finish()


def start_atlas(model: LoadedModel, dataset: Dataset, layer: str | None, *, k: int,
                score: str, channels: str | Sequence[int] | None,
                batch_size: int) -> tuple[AtlasCollector, np.ndarray | None]:
    """The options checked, and an empty collector for them: what every engine starts from.

    Returns
    -------
    (AtlasCollector, np.ndarray or None)
        The collector (its ``layer`` the layer's path, ``grouped_by`` ``"predicted"`` when the
        dataset has no labels) and the channels :func:`atlas_entries` keeps (None: all).
    """
    path = check_atlas_options(model, layer, k, score, batch_size)
    shape = model.info.layer(path).output_shape
    picked = parse_channels(channels, int(shape[-1]))
    collector = AtlasCollector(model, dataset, layer=path, k=int(k), score=score,
                               channels=picked,
                               grouped_by="label" if dataset.labelled else "predicted",
                               field=layer_field(model, path),
                               grid_size=(int(shape[0]), int(shape[1])))
    return collector, (None if len(picked) == shape[-1] else picked)


def entry_batch(dataset: Dataset, start: int, stop: int) -> list[tuple[int, str, int]]:
    """``[(position, path, class or -1)]`` of entries ``start`` to ``stop`` (exclusive): what
    :func:`atlas_entries` reads."""
    return [(i, dataset.entries[i].path,
             -1 if dataset.entries[i].class_index is None else dataset.entries[i].class_index)
            for i in range(start, stop)]


def atlas_key(model: LoadedModel, dataset: Dataset, layer: str, k: int, score: str,
              channels: np.ndarray) -> tuple:
    """What names an atlas in the cache: model, layer, dataset, k, score, channels."""
    return ("atlas", 1, model.identity, layer, dataset.identity, int(k), score,
            tuple(int(c) for c in channels))


def cached_atlas(model: LoadedModel, dataset: Dataset, layer: str | None = None, *,
                 disk: DiskCache | None, k: int = DEFAULT_K, score: str = "max",
                 channels: str | Sequence[int] | None = None,
                 runner: Callable[..., Atlas] | None = None, **options) -> Atlas:
    """:func:`neuron_atlas`, kept on ``disk`` so a second call with the same model, layer,
    dataset, k, score and channels is read back instead of computed (``disk=None``: no cache).

    ``runner`` is the engine, called as :func:`neuron_atlas` is (the default); e.g.
    :func:`viz_core.dataset.atlas_ray.neuron_atlas_ray` with its recipe bound: both engines
    give the same atlas, so they share the cache.
    """
    path = check_atlas_options(model, layer, k, score, options.get("batch_size",
                                                                   DEFAULT_BATCH_SIZE))
    picked = parse_channels(channels, int(model.info.layer(path).output_shape[-1]))
    key = atlas_key(model, dataset, path, k, score, picked)
    if disk is not None:
        hit = disk.get(key)
        if hit is not None:
            return Atlas.from_arrays(hit)
    atlas = (runner or neuron_atlas)(model, dataset, path, k=k, score=score, channels=picked,
                                     **options)
    if disk is not None:
        disk.put(key, atlas.arrays())
    return atlas


# --------------------------------------------------------------------------------------------
# What the pictures need
# --------------------------------------------------------------------------------------------
def exemplar_pixels(model: LoadedModel, dataset: Dataset,
                    entries: Sequence[int]) -> dict[int, np.ndarray]:
    """``{entry: (H, W, 3) uint8}`` the images at these dataset positions as the model sees
    them (its input size; grey models' images repeated to RGB), read through the dataset."""
    out = {}
    for position in dict.fromkeys(int(e) for e in entries):
        entry = dataset.entries[position]
        pixels = model.view(dataset.load(entry)).pixels
        if pixels.shape[-1] == 1:
            pixels = np.repeat(pixels, 3, axis=-1)
        out[position] = np.clip(pixels + 0.5, 0, 255).astype(np.uint8)
    return out


def channel_maps(model: LoadedModel, layer: str, pixels: np.ndarray,
                 channel: int) -> np.ndarray:
    """(N, h, w) float32 activations of one channel for (N, H, W, 3) uint8 images."""
    pixels = np.asarray(pixels, np.float32)
    if model.info.input_shape[2] == 1:
        pixels = pixels.mean(axis=-1, keepdims=True)
    acts, _ = _forward(model, layer, False)(pixels)
    return acts[..., int(channel)].astype(np.float32)


# --------------------------------------------------------------------------------------------
# A unit's synthetic pattern, when the Filter patterns page already drew it
# --------------------------------------------------------------------------------------------
PATTERN_METHOD = "fourier"
#: First-n filter ranges the Filter patterns page asks for (its gallery's counts and its
#: default range), the requests a unit's pattern is looked up in besides its own.
PATTERN_PREFIXES = (8, 16, 32, 64)


def pattern_requests(channels: Sequence[int], count: int,
                     prefixes: Sequence[int] = PATTERN_PREFIXES) -> list[tuple[int, ...]]:
    """The filter tuples the Filter patterns page may have drawn that hold some of
    ``channels``, in a layer of ``count`` filters: each channel alone (the page's "every
    method" view), the first-n ranges, then the 64-wide blocks around each channel."""
    channels = [int(c) for c in channels]
    out = [(c,) for c in channels]
    out += [tuple(range(min(n, count))) for n in sorted(set(prefixes))
            if any(c < n for c in channels)]
    for block in sorted({c // 64 for c in channels}):
        out.append(tuple(range(block * 64, min(count, block * 64 + 64))))
    return list(dict.fromkeys(out))


def cached_unit_patterns(model: LoadedModel, layer: str, channels: Sequence[int], *,
                         disk: DiskCache, method: str = PATTERN_METHOD, size: int | None = None,
                         steps: int | None = None, seed: int = 0) -> dict:
    """Each channel's filter pattern already in the disk cache, never computed.

    The filter-pattern cache is keyed by the whole request (the filters asked for together),
    so the requests :func:`pattern_requests` lists are looked up in turn, each read at most
    once, until every channel is found.

    Parameters
    ----------
    model : LoadedModel
    layer : str
    channels : sequence of int
    disk : DiskCache
        The Filter patterns page's (``Workbench.disk``).
    method : str
        ``"fourier"`` by default (natural-looking patterns, the atlas cards').
    size, steps, seed
        As the page drew them: None is the default size and the method's default steps;
        the page's seed is 0.

    Returns
    -------
    dict of int to FilterPattern
        Only the channels found; ``.pattern`` is (H, W, 3) uint8, ``.dead`` says the filter
        never responded.
    """
    from viz_core.features.filters import DEFAULT_SIZE, cached_filter_patterns

    count = int(model.info.layer(layer).output_shape[-1])
    wanted = {int(c) for c in channels if 0 <= int(c) < count}
    found = {}
    for filters in pattern_requests(sorted(wanted), count):
        if not wanted - found.keys():
            break
        if not (set(filters) & (wanted - found.keys())):
            continue
        result = cached_filter_patterns(model, layer, filters, method=method, steps=steps,
                                        size=DEFAULT_SIZE if size is None else size,
                                        seed=seed, disk=disk)
        if result is not None:
            for c in wanted - found.keys():
                if c in result.filters:
                    found[c] = result.by_filter(c)
    return found


def cached_unit_pattern(model: LoadedModel, layer: str, channel: int, *, disk: DiskCache,
                        **options):
    """One channel's :class:`~viz_core.features.filters.FilterPattern` from the disk cache, or
    None when the Filter patterns page has not drawn it (see :func:`cached_unit_patterns`)."""
    return cached_unit_patterns(model, layer, [channel], disk=disk, **options).get(int(channel))
