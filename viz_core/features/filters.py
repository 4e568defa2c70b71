"""Filter patterns: the picture each filter of a layer responds to most, by gradient ascent.

Four methods share one pipeline (cut the model at the layer, ascend, de-process, measure
activation and readability, see :mod:`viz_core.metrics.readability`). ``fourier`` and ``maco`` add a
natural-image prior and live in :mod:`viz_core.features.feature_vis`; the two below are plain ascents.

``classic``
    The tutorial's recipe, step for step, one filter at a time: start from a grey image with
    noise (``128 + 20 * U[0, 1)``), 40 steps of ``x += step * g / (rms(g) + 1e-5)`` where ``g``
    is the gradient of the filter's mean activation, then de-process (centre, divide by the
    standard deviation, x0.1, +0.5, clip to [0, 1]). Kept as the reference and for teaching.

``fast`` (default)
    The same objective, made cheap and aimed at what is shown:

    * the image is a small *periodic tile*, half a receptive field wide (at least 16 px),
      repeated for display: a 3x3 first-layer filter is optimised on a 16 px tile and
      ``block3_conv1`` of VGG16 (field 24 px) on a 40 px canvas, not on 150 px;
    * the canvas is the tile plus one receptive field of periodic context, and the loss
      averages exactly one period of the units that see no padding: the mean activation of
      the *infinite* tiled picture;
    * the tutorial's de-processing is part of the optimised function, so the steps improve the
      picture as displayed (contrast included), not a raw array normalised afterwards;
    * all filters of a batch in one compiled step (``tf.function``), 10 steps instead of 40;
    * a filter that does not respond to its start at all gets fresh starts (colour blobs with
      crisp edges, fine noise) followed by smaller steps, and the best tile seen is kept.

    Measured (``bench/bench_filters.py``, 64 filters of VGG16 ``block3_conv1``, random
    weights, 2 shared cores): about 23x faster than ``classic`` and 1.8x its mean activation on
    the displayed 8-bit patterns.

Where the ascent happens: in *pixel space* (RGB, 0..255, what the user sees), through the
model's differentiable preprocessing (:func:`viz_core.models.preprocess.preprocessing_function`). The
tutorial ascends in VGG's input space; for VGG ("caffe" preprocessing: RGB to BGR minus a
constant) the two differ by a channel flip and a shift, so the normalised gradient, the step of
one unit and the whole trajectory are the same up to channel order, and the start "128 + noise"
really is a grey picture. For models with other preprocessing, "one grey level per step" keeps
the same meaning, and patterns always come out in RGB.

A filter's result does not depend on which other filters share its batch: every filter has its
own seeded start, the loss of one image does not touch the others, and gradients are normalised
per image.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from viz_core.features import feature_vis
from viz_core.runtime.cache import DiskCache
from viz_core.models.catalog import LoadedModel
from viz_core.errors import Cancelled, ModelError, ParameterError
from viz_core.runtime.limits import filter_indices
from viz_core.models.preprocess import preprocessing_function
from viz_core.metrics.readability import robustness, spectral_slopes
from viz_core.features.filter_options import (  # noqa: F401 (the patterns' choices, here too)
    DEFAULT_COUNT, DEFAULT_SIZE, DEFAULT_STEPS, MAX_STEPS, METHOD_HELP, METHODS, PAGE_METHOD,
    SIZE_RANGE)

MIN_PERIOD = 16  # smallest tile (px): below this a tiled pattern reads as noise
PERIOD_OF_FIELD = 0.5  # tile side / receptive field; measured against 1.0: ~2% less
# activation reached for ~30% less time
TUTORIAL_STEP = 1.0  # pixel units per normalised step (the tutorial's ``step <- 1``)
FAST_STEP = 0.5  # normalised step from the noisy start, in units of the start's std
# After a fresh start the tile holds the structure that woke the filter: smaller steps,
# relative to the tile's spread, keep it (demo conv2d_4: +77% activation, VGG16 unchanged).
RESTART_STEP = 0.3
EPSILON = 1e-5
SHARPNESS = 4.0  # tanh gain that turns smooth periodic noise into blobs with crisp edges
_BATCH_PIXELS = 64 * 48 * 48  # canvas pixels per batch: bounds memory on the first layers
_MEASURE_PIXELS = 16 * 150 * 150  # forward only, so larger batches fit (fewer calls)
# fourier / maco optimise the full canvas. On 2 CPU cores large batches of big pictures are
# slower per picture (demo conv2d_4, 150 px, seconds per picture and step: fourier 0.06 at
# batch 1, 0.13 at 8, 0.17 at 16; classic 0.04 at 1, 0.09 at 16), so pictures of 150 px go
# one at a time and smaller ones are batched up to the same number of pixels.
_PRIOR_PIXELS = 150 * 150
_CACHE_VERSION = 2  # 2: readability numbers and the maco transparency

Progress = Callable[[float, str], None]


# -- results ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReceptiveField:
    """How much of the input one unit of a layer sees.

    Attributes
    ----------
    size : int
        Side of the square of input pixels that can change one unit (measured by gradient).
    jump : int
        Input pixels between two neighbouring units (the layer's total stride).
    offset : int
        Input column (and row) where unit 0's field starts; negative with ``same`` padding.
    bounded : bool
        False when the field reached the edges of the probe image, so it may be larger.
    """

    size: int
    jump: int
    offset: int
    bounded: bool


@dataclass(frozen=True)
class FilterPattern:
    """One filter's pattern.

    Attributes
    ----------
    index : int
        Filter (channel) index in the layer.
    pattern : np.ndarray
        (H, W, 3) uint8 RGB, as displayed.
    activation : float
        Mean activation of the filter over the displayed 8-bit pattern, preprocessed as the
        model expects.
    dead : bool
        The gradient was exactly zero at every step: the filter never responded, so the
        pattern is just the de-processed start.
    trace : np.ndarray
        (steps,) float32, the objective before each step.
    robustness : float
        Mean activation of the pattern under 16 seeded small random transformations over
        :attr:`activation` (NaN when the activation is not positive).
    spectral_slope : float
        Slope of the pattern's log power spectrum against log frequency (photographs: about -2).
    alpha : np.ndarray or None
        (H, W) float32 in [0, 1], ``maco``'s transparency (where the pattern matters).
    """

    index: int
    pattern: np.ndarray
    activation: float
    dead: bool
    trace: np.ndarray
    robustness: float = float("nan")
    spectral_slope: float = float("nan")
    alpha: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class FilterPatterns:
    """Patterns of several filters of one layer, and how they were made.

    Attributes
    ----------
    model_identity : str
    layer : str
        Layer path, e.g. ``"block3_conv1"`` or ``"base/conv_b"``.
    method : str
        ``"fast"`` or ``"classic"``.
    filters : tuple of int
        Filter indices, in the order of the arrays below.
    patterns : np.ndarray
        (N, H, W, 3) uint8 RGB, the displayed pictures (H = W = ``size`` for models that accept
        any input size).
    activations : np.ndarray
        (N,) float32, mean activation over each displayed 8-bit pattern.
    dead : np.ndarray
        (N,) bool, gradient exactly zero at every step (``fast``: from every fresh start it
        was given), so the pattern is only the de-processed start.
    trace : np.ndarray
        (N, steps) float32, the objective before each step (classic: the tutorial's
        ``loss_value``; fast: the mean activation of the tiled picture being optimised;
        fourier / maco: the mean activation on that step's transformed picture or crops).
    robustness : np.ndarray
        (N,) float32, mean activation of each displayed pattern under 16 seeded random
        transformations (shift up to 8 px, zoom 0.9-1.1, rotation up to 5 degrees) over its
        untransformed activation; NaN where that activation is not positive.
    spectral_slopes : np.ndarray
        (N,) float32, slope of each pattern's radially averaged log power spectrum against log
        frequency (photographs about -2, white noise 0); NaN for a flat pattern.
    alpha : np.ndarray or None
        (N, H, W) float32 in [0, 1], ``maco``'s transparency maps; None for other methods.
    steps, size, seed : int
        Parameters used.
    canvas : int
        Side of the image the ascent ran on (classic: ``size``).
    period : int
        Side of the repeating tile (``canvas`` when the pattern is not tiled).
    seconds : float
        Compute time (of the original run, when read from the disk cache).
    from_cache : bool
        Read from the disk cache.
    """

    model_identity: str
    layer: str
    method: str
    filters: tuple[int, ...]
    patterns: np.ndarray
    activations: np.ndarray
    dead: np.ndarray
    trace: np.ndarray
    robustness: np.ndarray
    spectral_slopes: np.ndarray
    alpha: np.ndarray | None
    steps: int
    size: int
    seed: int
    canvas: int
    period: int
    seconds: float
    from_cache: bool = False

    def __len__(self) -> int:
        return len(self.filters)

    def item(self, position: int) -> FilterPattern:
        """The filter at ``position`` in :attr:`filters` (not the filter index)."""
        return FilterPattern(
            index=int(self.filters[position]),
            pattern=self.patterns[position],
            activation=float(self.activations[position]),
            dead=bool(self.dead[position]),
            trace=self.trace[position],
            robustness=float(self.robustness[position]),
            spectral_slope=float(self.spectral_slopes[position]),
            alpha=None if self.alpha is None else self.alpha[position],
        )

    def summary(self) -> dict[str, float]:
        """Per-layer readability: medians over the filters that responded.

        Returns
        -------
        dict
            ``activation``, ``robustness``, ``spectral_slope`` (NaN when no filter responded)
            and ``filters``, the number of filters counted.
        """
        live = ~self.dead
        return {
            "filters": int(live.sum()),
            "activation": _median(self.activations[live]),
            "robustness": _median(self.robustness[live]),
            "spectral_slope": _median(self.spectral_slopes[live]),
        }

    def by_filter(self, index: int) -> FilterPattern:
        """The pattern of filter ``index`` of the layer."""
        try:
            return self.item(self.filters.index(int(index)))
        except ValueError:
            raise ParameterError(
                f"Filter {index} was not computed; this result has filters "
                f"{_range_text(self.filters)}."
            ) from None


def _median(values: np.ndarray) -> float:
    finite = np.asarray(values, "float64")
    finite = finite[np.isfinite(finite)]
    return float(np.median(finite)) if finite.size else float("nan")


# -- parameters ------------------------------------------------------------------------------
def parse_filters(text: str) -> tuple[int, ...]:
    """Filter indices from ``"0:64"`` (Python slice, end excluded), ``"5"`` or ``"1,4,9"``.

    Raises
    ------
    ParameterError
        The text is not of these forms.
    """
    return tuple(filter_indices(text))


def filter_count(model: LoadedModel, layer: str) -> int:
    """Number of filters (channels) of ``layer``."""
    return int(_check_layer(model, layer).output_shape[-1])


def default_layer(model: LoadedModel) -> str:
    """A conv layer a third of the way in (``block3_conv1`` for VGG16, as in the tutorial)."""
    convs = pattern_layers(model, conv_only=True)
    return convs[len(convs) // 3]


def pattern_layers(model: LoadedModel, *, conv_only: bool = True) -> tuple[str, ...]:
    """Layers whose filters can be drawn: conv layers (or every layer with feature maps)."""
    return tuple(
        info.path for info in model.info.layers
        if info.spatial and not info.nested and (info.conv or not conv_only)
        and info.output_shape[-1]
    )


def _check_layer(model: LoadedModel, layer: str):
    try:
        info = model.info.layer(layer)
    except ModelError:
        some = ", ".join(pattern_layers(model)[:6])
        raise ParameterError(
            f"The model has no layer called {layer!r}; conv layers include {some}."
        ) from None
    if not info.spatial or info.nested or not info.output_shape[-1]:
        raise ParameterError(
            f"The layer {layer!r} has output shape {info.output_shape}, not feature maps "
            "(height, width, filters); choose a convolutional layer."
        )
    return info


def _check_filters(filters, count: int, layer: str) -> tuple[int, ...]:
    if filters is None:
        return tuple(range(min(DEFAULT_COUNT, count)))
    if isinstance(filters, str):
        filters = parse_filters(filters)
    try:
        chosen = tuple(int(f) for f in filters)
    except (TypeError, ValueError):
        raise ParameterError(f"Filters must be whole numbers; got {filters!r}.") from None
    if not chosen:
        raise ParameterError(f"No filters chosen; {layer!r} has filters 0 to {count - 1}.")
    bad = [f for f in chosen if not 0 <= f < count]
    if bad:
        raise ParameterError(
            f"Filter {bad[0]} does not exist: {layer!r} has {count} filters, 0 to {count - 1}."
        )
    if len(set(chosen)) != len(chosen):
        raise ParameterError(f"The filters {_range_text(chosen)} list a filter twice.")
    return chosen


def _range_text(indices: Sequence[int]) -> str:
    idx = list(indices)
    if idx and idx == list(range(idx[0], idx[0] + len(idx))):
        return f"{idx[0]}:{idx[-1] + 1}"
    return ",".join(str(i) for i in idx[:12]) + ("..." if len(idx) > 12 else "")


# -- the model, cut at the layer -------------------------------------------------------------
def _flexible(model: keras.Model, channels: int) -> keras.Model:
    """The same layers (shared weights) on an input of any height and width."""

    def clone(layer):
        return _flexible(layer, channels) if isinstance(layer, keras.Model) else layer

    inputs = keras.tree.map_structure(lambda _: keras.Input((None, None, channels)), model.input)
    return keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)


@dataclass(frozen=True, eq=False)
class _Cut:
    """The model from pixels to one layer's activations."""

    fn: Callable  # pixels (B, H, W, C) float in [0, 255] -> activations (B, h, w, K)
    flexible: bool  # accepts any input size
    channels: int  # input channels (1 or 3)


def _cut(model: LoadedModel, layer: str) -> _Cut:
    def build() -> _Cut:
        side = model.side_model([layer])
        channels = int(model.info.input_shape[2])
        pre = preprocessing_function(model.preprocessing)
        flexible = True
        try:
            net = _flexible(side, channels)
            net(np.zeros((1, 40, 40, channels), "float32"))
        except Exception:  # noqa: BLE001  any layer that needs its training size (Reshape...)
            net, flexible = side, False

        def fn(pixels):
            out = net(pre(pixels), training=False)
            return out[0] if isinstance(out, (list, tuple)) else out

        return _Cut(fn=fn, flexible=flexible, channels=channels)

    return model.derived(("filters.cut", layer), build)


def receptive_field(model: LoadedModel, layer: str) -> ReceptiveField:
    """Measure the receptive field of ``layer`` by gradient, for any architecture.

    The gradient of the centre unit (all channels summed) with respect to two seeded noise
    images is non-zero exactly on the pixels that unit sees; its bounding box gives the size
    and offset, and the ratio of input to output size the jump.
    """
    _check_layer(model, layer)

    def build() -> ReceptiveField:
        cut = _cut(model, layer)
        height, width, channels = model.info.input_shape
        side = min(height, width) if not cut.flexible else max(height, width)
        shape = (height, width) if not cut.flexible else (side, side)
        rng = np.random.default_rng(0)
        x = tf.constant(rng.uniform(0, 255, (2, *shape, channels)).astype("float32"))
        with tf.GradientTape() as tape:
            tape.watch(x)
            act = cut.fn(x)
            ch, cw = int(act.shape[1]) // 2, int(act.shape[2]) // 2
            score = tf.reduce_sum(act[:, ch, cw, :])
        grad = np.abs(tape.gradient(score, x).numpy()).sum(axis=(0, 3))
        rows, cols = np.nonzero(grad.sum(axis=1))[0], np.nonzero(grad.sum(axis=0))[0]
        jump = max(1, int(round(shape[1] / int(act.shape[2]))))
        if rows.size == 0:  # no gradient at all (a dead unit): assume the whole image
            return ReceptiveField(shape[1], jump, 0, False)
        size = int(max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1)
        bounded = bool(rows[0] > 0 and cols[0] > 0 and rows[-1] < shape[0] - 1
                       and cols[-1] < shape[1] - 1)
        return ReceptiveField(size=size, jump=jump, offset=int(cols[0]) - cw * jump,
                              bounded=bounded)

    return model.derived(("filters.rf", layer), build)


@dataclass(frozen=True)
class _Plan:
    """Geometry of one run: canvas, tile and the units the fast loss averages."""

    canvas: tuple[int, int]  # (H, W) of the image the model sees during the ascent
    period: tuple[int, int]  # (H, W) of the repeating tile (= canvas when not tiled)
    display: tuple[int, int]  # (H, W) of the displayed pattern
    window: tuple[int, int] | None  # (first unit, count) averaged; None = all units


def _plan(model: LoadedModel, layer: str, method: str, size: int) -> _Plan:
    cut = _cut(model, layer)
    if not cut.flexible:  # the model only runs at its own size: no tiling, no resizing
        h, w, _ = model.info.input_shape
        return _Plan((h, w), (h, w), (h, w), None)
    if method != "fast":  # the whole picture is optimised at the displayed size
        return _Plan((size, size), (size, size), (size, size), None)
    rf = receptive_field(model, layer)
    period = _round_up(max(rf.size * PERIOD_OF_FIELD, MIN_PERIOD), rf.jump)
    # Units whose whole field lies on the canvas see no padding; one period of them averages
    # the activation of the infinite tiled picture.
    first = max(0, math.ceil(-rf.offset / rf.jump))
    count = max(1, period // rf.jump)
    canvas = _round_up(first * rf.jump + rf.offset + (count - 1) * rf.jump + rf.size, rf.jump)
    if not rf.bounded or canvas >= size:
        return _Plan((size, size), (size, size), (size, size), None)
    return _Plan((canvas, canvas), (period, period), (size, size), (first, count))


def _round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


# -- de-processing and display ---------------------------------------------------------------
def deprocess_image(x: np.ndarray) -> np.ndarray:
    """The tutorial's ``deprocess_image``: centre, divide by std (+1e-5), x0.1, +0.5, clip.

    Parameters
    ----------
    x : np.ndarray
        Any float array (one image, e.g. (H, W, C)).

    Returns
    -------
    np.ndarray
        Same shape, float32 in [0, 1].
    """
    x = np.asarray(x, dtype="float64")
    x = x - x.mean()
    x = x / (x.std(ddof=1) + EPSILON)  # R's sd(): the n - 1 denominator
    return np.clip(x * 0.1 + 0.5, 0.0, 1.0).astype("float32")


def _deprocess_tf(x):
    """:func:`deprocess_image` per image of a batch, times 255 (differentiable)."""
    axes = list(range(1, len(x.shape)))
    n = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), x.dtype)
    centred = x - tf.reduce_mean(x, axis=axes, keepdims=True)
    sd = tf.sqrt(tf.reduce_sum(tf.square(centred), axis=axes, keepdims=True) / (n - 1.0))
    return tf.clip_by_value(centred / (sd + EPSILON) * 0.1 + 0.5, 0.0, 1.0) * 255.0


def _to_uint8(values01: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(values01) * 255.0), 0, 255).astype("uint8")


def _tile(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """Repeat (N, h, w, C) tiles to (N, height, width, C)."""
    _, h, w, _ = images.shape
    reps = (1, -(-height // h), -(-width // w), 1)
    return np.tile(images, reps)[:, :height, :width, :]


def _rgb(images: np.ndarray) -> np.ndarray:
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


# -- compiled steps --------------------------------------------------------------------------
def _pick(act, indices):
    """(B, h, w) activations of filter ``indices[b]`` for image b."""
    return tf.gather(act, indices, axis=3, batch_dims=1)


def _classic_step(model: LoadedModel, layer: str, plan: _Plan):
    """Compiled tutorial step: loss (B,), normalised gradient, gradient rms (B,)."""
    cut = _cut(model, layer)
    spec = tf.TensorSpec((None, *plan.canvas, cut.channels), tf.float32)

    def build():
        @tf.function(input_signature=[spec, tf.TensorSpec((None,), tf.int32)])
        def step(x, indices):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_mean(_pick(cut.fn(x), indices), axis=[1, 2])
            grad = tape.gradient(loss, x)
            rms = tf.sqrt(tf.reduce_mean(tf.square(grad), axis=[1, 2, 3], keepdims=True))
            return loss, grad / (rms + EPSILON), tf.reshape(rms, [-1])

        return step

    return model.derived(("filters.classic_step", layer, plan), build)


def _fast_step(model: LoadedModel, layer: str, plan: _Plan):
    """Compiled fast step on the tile parameters: loss (B,), normalised gradient, rms (B,)."""
    cut = _cut(model, layer)
    (ch, cw), (ph, pw) = plan.canvas, plan.period
    reps = (1, -(-ch // ph), -(-cw // pw), 1)
    spec = tf.TensorSpec((None, ph, pw, cut.channels), tf.float32)

    def build():
        @tf.function(input_signature=[spec, tf.TensorSpec((None,), tf.int32)])
        def step(x, indices):
            with tf.GradientTape() as tape:
                tape.watch(x)
                shown = _deprocess_tf(x)  # optimise the picture as it will be displayed
                canvas = tf.tile(shown, reps)[:, :ch, :cw, :]
                act = _pick(cut.fn(canvas), indices)
                if plan.window is not None:
                    first, count = plan.window
                    act = act[:, first:first + count, first:first + count]
                loss = tf.reduce_mean(act, axis=[1, 2])
            grad = tape.gradient(loss, x)
            rms = tf.sqrt(tf.reduce_mean(tf.square(grad), axis=[1, 2, 3], keepdims=True))
            return loss, grad / (rms + EPSILON), tf.reshape(rms, [-1])

        return step

    return model.derived(("filters.fast_step", layer, plan), build)


def _measure_fn(model: LoadedModel, layer: str, display: tuple[int, int]):
    cut = _cut(model, layer)
    spec = tf.TensorSpec((None, *display, cut.channels), tf.float32)

    def build():
        @tf.function(input_signature=[spec, tf.TensorSpec((None,), tf.int32)])
        def measure(pixels, indices):
            return tf.reduce_mean(_pick(cut.fn(pixels), indices), axis=[1, 2])

        return measure

    return model.derived(("filters.measure", layer, display), build)


def mean_activations(
    model: LoadedModel, layer: str, images: np.ndarray, filters: Sequence[int]
) -> np.ndarray:
    """Mean activation of filter ``filters[i]`` over image ``i``.

    Parameters
    ----------
    images : np.ndarray
        (N, H, W, 3) uint8 RGB (or (N, H, W, C) pixels in [0, 255]); preprocessed as the model
        expects; 3-channel pictures are averaged to grey for 1-channel models.
    filters : sequence of int, length N

    Returns
    -------
    np.ndarray
        (N,) float32.
    """
    _check_layer(model, layer)
    cut = _cut(model, layer)
    pixels = np.asarray(images, dtype="float32")
    if pixels.ndim != 4 or len(pixels) != len(filters):
        raise ParameterError(
            f"Give one image per filter as (N, H, W, C); got images of shape {pixels.shape} "
            f"for {len(filters)} filters."
        )
    if cut.channels == 1 and pixels.shape[-1] == 3:
        pixels = pixels.mean(axis=-1, keepdims=True)
    if not cut.flexible and pixels.shape[1:3] != tuple(model.info.input_shape[:2]):
        raise ParameterError(
            f"This model only runs on {model.info.input_shape[0]}x{model.info.input_shape[1]} "
            f"images; got {pixels.shape[1]}x{pixels.shape[2]}."
        )
    measure = _measure_fn(model, layer, tuple(pixels.shape[1:3]))
    batch = max(1, _MEASURE_PIXELS // (pixels.shape[1] * pixels.shape[2]))
    out = [
        measure(pixels[i:i + batch], np.asarray(filters[i:i + batch], "int32")).numpy()
        for i in range(0, len(pixels), batch)
    ]
    return np.concatenate(out).astype("float32")


def _batch_size(canvas: tuple[int, int]) -> int:
    return max(1, _BATCH_PIXELS // (canvas[0] * canvas[1]))


# -- the ascent ------------------------------------------------------------------------------
def _start(seed: int, index: int, shape: tuple[int, ...], attempt: int = 0) -> np.ndarray:
    """The tutorial's start for one filter: grey 128 plus uniform noise of width 20.

    Seeded by (seed, filter index[, attempt]) only, so it does not depend on batch mates.
    """
    rng = np.random.default_rng([seed, index] if attempt == 0 else [seed, index, attempt])
    return (rng.random(shape) * 20.0 + 128.0).astype("float32")


class _Ticker:
    """Counts steps, reports progress and honours ``should_stop`` between steps."""

    def __init__(self, total: int, progress: Progress | None, should_stop):
        self.total, self.done = max(1, total), 0
        self.progress, self.should_stop = progress, should_stop

    def check(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled(
                f"Stopped after {self.done} of {self.total} steps; nothing was saved."
            )

    def tick(self, amount: int, message: str) -> None:
        self.done += amount
        if self.progress is not None:
            self.progress(min(1.0, self.done / self.total), message)


def _run_classic(model, layer, plan, filters, steps, seed, ticker) -> dict:
    """The tutorial, one filter at a time (batch of 1)."""
    step_fn = _classic_step(model, layer, plan)
    channels = _cut(model, layer).channels
    shown, traces, rms_max = [], [], []
    for n, index in enumerate(filters):
        x = _start(seed, index, (1, *plan.canvas, channels))
        trace, peak = np.zeros(steps, "float32"), 0.0
        for i in range(steps):
            ticker.check()
            loss, grad, rms = step_fn(x, np.array([index], "int32"))
            trace[i], peak = float(loss[0]), max(peak, float(rms[0]))
            x = x + grad.numpy() * TUTORIAL_STEP
            ticker.tick(1, f"filter {index} ({n + 1} of {len(filters)}), step {i + 1}/{steps}")
        shown.append(deprocess_image(x[0]))
        traces.append(trace)
        rms_max.append(peak)
    return {
        "shown": np.stack(shown),
        "trace": np.stack(traces),
        "dead": np.asarray(rms_max) == 0.0,
    }


def _fast_start(seed: int, index: int, period: tuple[int, int], channels: int,
                attempt: int = 0) -> np.ndarray:
    """The tile a fast ascent starts from, at unit scale (FAST_STEP is relative to it).

    Attempt 0 is the tutorial's grey + noise (the objective de-processes the tile, so only the
    noise pattern matters). Fresh starts for filters that did not respond alternate colour
    blobs with crisp edges (at most 1, then 2 cycles per tile) with fine noise: filters that
    ignore fine noise often respond to large patches of colour. Measured on the demo model's
    last conv layer (64 filters): 25 silent on fine noise alone, 3 with these restarts; smooth
    blobs without crisp edges left 7 and reached 28% less activation.
    """
    if attempt == 0:
        return (_start(seed, index, (*period, channels)) - 138.0) / 20.0
    rng = np.random.default_rng([seed, index, attempt])
    cycles = (1, 2, 0)[(attempt - 1) % 3]
    if not cycles:
        return (rng.random((*period, channels)) - 0.5).astype("float32")
    return _smooth_noise(rng, period, channels, cycles)


def _smooth_noise(rng, period: tuple[int, int], channels: int, cycles: int) -> np.ndarray:
    """Random periodic noise with at most ``cycles`` cycles per tile, std about 0.29.

    Built in the Fourier domain so that it tiles without seams (numpy's inverse FFT).
    """
    h, w = period
    spectrum = np.zeros((h, w // 2 + 1, channels), complex)
    for fy in list(range(0, cycles + 1)) + list(range(-cycles, 0)):
        for fx in range(0, cycles + 1):
            if fy or fx:
                spectrum[fy, fx] = rng.normal(size=channels) + 1j * rng.normal(size=channels)
    x = np.fft.irfft2(spectrum, s=(h, w), axes=(0, 1))
    x = np.tanh(SHARPNESS * x / (x.std() + EPSILON))  # blobs with crisp edges
    return (x / (x.std() + EPSILON) * 0.29).astype("float32")


def _run_fast(model, layer, plan, filters, steps, seed, ticker) -> dict:
    """Batched, compiled ascent on periodic tiles, the de-processing inside the objective.

    A filter whose gradient is exactly zero (it does not respond to its tile at all) gets a
    fresh start at the next step; the tile shown is the best one seen (highest objective),
    so a step that overshoots into a region where the filter is silent is not kept. A filter
    that responded to none of its starts is flagged dead.
    """
    step_fn = _fast_step(model, layer, plan)
    channels = _cut(model, layer).channels
    batch = _batch_size(plan.canvas)
    shown, traces, dead = [], [], []
    for b0 in range(0, len(filters), batch):
        chunk = filters[b0:b0 + batch]
        x = np.stack([_fast_start(seed, i, plan.period, channels) for i in chunk])
        indices = np.asarray(chunk, "int32")
        trace = np.zeros((len(chunk), steps), "float32")
        alive = np.zeros(len(chunk), bool)
        restarted = np.zeros(len(chunk), bool)
        best, best_x = np.full(len(chunk), -np.inf, "float32"), x.copy()
        for i in range(steps):
            ticker.check()
            loss, grad, rms = (t.numpy() for t in step_fn(x, indices))
            trace[:, i] = loss
            better = loss > best
            best[better], best_x[better] = loss[better], x[better]
            alive |= rms > 0.0
            if i < steps - 1:
                spread = x.reshape(len(x), -1).std(axis=1)
                size = np.where(restarted, RESTART_STEP * spread, FAST_STEP)
                x = x + grad * size[:, None, None, None]
                for n in np.flatnonzero(rms == 0.0):
                    x[n] = _fast_start(seed, chunk[n], plan.period, channels, attempt=i + 1)
                    restarted[n] = True
            ticker.tick(len(chunk), f"filters {_range_text(chunk)}, step {i + 1}/{steps}")
        shown.append(np.stack([deprocess_image(t) for t in best_x]))
        traces.append(trace)
        dead.append(~alive)
    return {
        "shown": np.concatenate(shown),
        "trace": np.concatenate(traces),
        "dead": np.concatenate(dead),
    }


def _prior_batch(canvas: tuple[int, int], crops: int = 1) -> int:
    return max(1, _PRIOR_PIXELS // (canvas[0] * canvas[1] * crops))


def _fourier_compiled(model: LoadedModel, layer: str, plan: _Plan):
    """Compiled fourier step and renderer."""
    cut = _cut(model, layer)

    def build():
        return (feature_vis.fourier_step(cut.fn, plan.canvas, cut.channels),
                feature_vis.fourier_render(plan.canvas, cut.channels))

    return model.derived(("filters.fourier_step", layer, plan), build)


def _maco_compiled(model: LoadedModel, layer: str, plan: _Plan):
    cut = _cut(model, layer)

    def build():
        return (feature_vis.maco_step(cut.fn, plan.canvas, cut.channels),
                feature_vis.maco_render(plan.canvas, cut.channels))

    return model.derived(("filters.maco_step", layer, plan), build)


def _run_fourier(model, layer, plan, filters, steps, seed, ticker) -> dict:
    """Lucid-style ascent (:mod:`viz_core.features.feature_vis`), filters batched."""
    step, render = _fourier_compiled(model, layer, plan)
    run = feature_vis.run_fourier(step, render, filters, plan.canvas, _cut(model, layer).channels,
                                  steps, seed, ticker, _prior_batch(plan.canvas))
    return {"shown": run.shown, "trace": run.trace, "dead": run.dead}


def _run_maco(model, layer, plan, filters, steps, seed, ticker) -> dict:
    """MACO ascent (:mod:`viz_core.features.feature_vis`), filters batched; adds the transparency."""
    step, render = _maco_compiled(model, layer, plan)
    run = feature_vis.run_maco(step, render, filters, plan.canvas, _cut(model, layer).channels,
                               steps, seed, ticker,
                               _prior_batch(plan.canvas, feature_vis.MACO_CROPS))
    return {"shown": run.shown, "trace": run.trace, "dead": run.dead, "alpha": run.alpha}


_RUNS = {"classic": _run_classic, "fast": _run_fast, "fourier": _run_fourier,
         "maco": _run_maco}


def _prior_starts(model, layer, plan, filters, method, seed) -> np.ndarray:
    """The fourier / maco starting pictures, (N, H, W, C) float in [0, 1]."""
    channels = _cut(model, layer).channels
    h, w = plan.canvas
    if method == "fourier":
        render = _fourier_compiled(model, layer, plan)[1]
        params = [feature_vis.fourier_start(seed, i, (channels, h, w // 2 + 1, 2))
                  for i in filters]
    else:
        render = _maco_compiled(model, layer, plan)[1]
        params = [feature_vis.maco_start(seed, i, (channels, h, w // 2 + 1)) for i in filters]
    return render(np.stack(params)).numpy() / 255.0


def starting_images(
    model: LoadedModel,
    layer: str,
    filters: Sequence[int] | str | None = None,
    *,
    method: str = "fast",
    size: int = DEFAULT_SIZE,
    seed: int = 0,
) -> np.ndarray:
    """The pictures the ascent starts from, shown the way the results are shown.

    ``classic``: the tutorial's grey image with noise; ``fast``: the first noisy tile, tiled.
    Both pass through the same de-processing as the patterns (centre, scale, clip), so
    comparing a start with its pattern isolates what the ascent changed. ``fourier`` and
    ``maco``: their starting parameters rendered to pixels (near-flat grey for ``fourier``,
    random-phase 1/f noise for ``maco``). Same arguments as :func:`filter_patterns`.

    Returns
    -------
    np.ndarray
        (N, H, W, 3) uint8 RGB.
    """
    info = _check_layer(model, layer)
    chosen = _check_filters(filters, int(info.output_shape[-1]), layer)
    _check_method(method)
    _check_size(size)
    plan = _plan(model, layer, method, int(size))
    channels = _cut(model, layer).channels
    if method in ("fourier", "maco"):
        tiles = _prior_starts(model, layer, plan, chosen, method, seed)
    elif method == "classic":
        tiles = np.stack([deprocess_image(_start(seed, i, (*plan.canvas, channels)))
                          for i in chosen])
    else:
        tiles = np.stack([deprocess_image(_fast_start(seed, i, plan.period, channels))
                          for i in chosen])
    return _rgb(_tile(_to_uint8(tiles), *plan.display))


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ParameterError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")


def _check_size(size) -> None:
    if not isinstance(size, (int, np.integer)) or not SIZE_RANGE[0] <= size <= SIZE_RANGE[1]:
        raise ParameterError(
            f"Size must be a whole number of pixels from {SIZE_RANGE[0]} to {SIZE_RANGE[1]}; "
            f"got {size!r}."
        )


def filter_patterns(
    model: LoadedModel,
    layer: str,
    filters: Sequence[int] | str | None = None,
    *,
    method: str = "fast",
    steps: int | None = None,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    disk: DiskCache | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FilterPatterns:
    """The input pattern each chosen filter of ``layer`` responds to most.

    Parameters
    ----------
    model : LoadedModel
        Not modified: the ascent runs on a side model cut at ``layer``.
    layer : str
        Path of a layer with feature maps, e.g. ``"block3_conv1"`` or ``"base/conv_b"``.
    filters : sequence of int, ``"0:64"`` text, or None
        Filter indices; None means the first 64 (as in the tutorial's 8x8 grid).
    method : {"fast", "classic", "fourier", "maco"}
    steps : int or None
        Gradient-ascent steps; None means :data:`DEFAULT_STEPS` of the method (``fast`` 10,
        the tutorial's 40 for ``classic``).
    size : int
        Side of the displayed pattern in pixels (the tutorial's 150); the classic method also
        ascends at this size. Models that only run at their own input size use that instead.
    seed : int
        Seed of the noisy starts (each filter's start depends on the seed and its index only).
    disk : DiskCache or None
        Where results are kept across restarts, keyed by model identity, layer, filters,
        method and parameters; e.g. ``Workbench.disk``.
    progress : callable(fraction, message) or None
        Called after every step.
    should_stop : callable() -> bool or None
        Asked before every step; True stops the work with :class:`~viz_core.errors.Cancelled`.

    Returns
    -------
    FilterPatterns
        Patterns (N, size, size, 3) uint8, activations on the displayed patterns, dead flags,
        robustness and spectral slope of every pattern, ``maco``'s transparency.

    Raises
    ------
    ParameterError
        Unknown layer or method, filters out of range, steps or size out of range.
    Cancelled
        ``should_stop`` returned True.
    """
    chosen, steps, size, seed, key = _request(model, layer, filters, method, steps, size, seed)
    if disk is not None:
        stored = disk.get(key)
        if stored is not None:
            if progress is not None:
                progress(1.0, "from the cache")
            return _from_arrays(stored, model, layer, method, chosen, steps, seed, True)

    began = time.perf_counter()
    plan = _plan(model, layer, method, size)
    ticker = _Ticker(len(chosen) * (steps + 1), progress, should_stop)
    raw = _RUNS[method](model, layer, plan, chosen, steps, seed, ticker)
    ticker.check()
    patterns = _rgb(_tile(_to_uint8(raw["shown"]), *plan.display))
    activations = mean_activations(model, layer, patterns, chosen)
    ticker.check()
    robust = robustness(lambda images, owners: mean_activations(model, layer, images, owners),
                        patterns, chosen, base=activations)
    ticker.tick(len(chosen), "measuring the patterns")
    arrays = {
        "patterns": patterns,
        "activations": activations,
        "dead": raw["dead"].astype(bool),
        "trace": raw["trace"].astype("float32"),
        "robustness": robust,
        "spectral_slopes": spectral_slopes(patterns),
        "canvas": np.array(plan.canvas[1]),
        "period": np.array(plan.period[1]),
        "seconds": np.array(time.perf_counter() - began),
    }
    if "alpha" in raw:
        arrays["alpha"] = _tile(raw["alpha"][..., None], *plan.display)[..., 0]
    if disk is not None:
        disk.put(key, arrays)
    return _from_arrays(arrays, model, layer, method, chosen, steps, seed, False)


def cached_filter_patterns(
    model: LoadedModel,
    layer: str,
    filters: Sequence[int] | str | None = None,
    *,
    method: str = "fast",
    steps: int | None = None,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    disk: DiskCache,
) -> FilterPatterns | None:
    """The result :func:`filter_patterns` would return from ``disk``, or None (never computes)."""
    chosen, steps, size, seed, key = _request(model, layer, filters, method, steps, size, seed)
    stored = disk.get(key)
    if stored is None:
        return None
    return _from_arrays(stored, model, layer, method, chosen, steps, seed, True)


def _request(model, layer, filters, method, steps, size, seed):
    """Checked parameters and the disk-cache key of one request."""
    info = _check_layer(model, layer)
    chosen = _check_filters(filters, int(info.output_shape[-1]), layer)
    _check_method(method)
    steps = DEFAULT_STEPS[method] if steps is None else steps
    if not isinstance(steps, (int, np.integer)) or not 1 <= steps <= MAX_STEPS:
        raise ParameterError(f"Steps must be a whole number from 1 to {MAX_STEPS}; got {steps!r}.")
    _check_size(size)
    steps, size, seed = int(steps), int(size), int(seed)
    key = ("filter_patterns", _CACHE_VERSION, model.identity, layer, chosen, method, steps,
           size, seed)
    return chosen, steps, size, seed, key


def _from_arrays(arrays, model, layer, method, chosen, steps, seed, from_cache) -> FilterPatterns:
    return FilterPatterns(
        model_identity=model.identity,
        layer=layer,
        method=method,
        filters=chosen,
        patterns=arrays["patterns"],
        activations=np.asarray(arrays["activations"], "float32"),
        dead=np.asarray(arrays["dead"], bool),
        trace=np.asarray(arrays["trace"], "float32"),
        robustness=np.asarray(arrays["robustness"], "float32"),
        spectral_slopes=np.asarray(arrays["spectral_slopes"], "float32"),
        alpha=np.asarray(arrays["alpha"], "float32") if "alpha" in arrays else None,
        steps=steps,
        size=int(arrays["patterns"].shape[2]),
        seed=seed,
        canvas=int(arrays["canvas"]),
        period=int(arrays["period"]),
        seconds=float(arrays["seconds"]),
        from_cache=from_cache,
    )
