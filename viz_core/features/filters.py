"""Filter patterns: the picture each filter of a layer responds to most, by gradient ascent.

The entry point (:func:`filter_patterns`), its results and its disk cache. Four methods share
one pipeline: cut the model at the layer, ascend (:mod:`viz_core.features.ascent`: ``classic``,
the tutorial's recipe, and ``fast``, the default; :mod:`viz_core.features.feature_vis`:
``fourier`` and ``maco``, with a natural-image prior), de-process, then measure activation and
readability (:mod:`viz_core.metrics.readability`). What may be asked is checked in
:mod:`viz_core.features.filter_choice`; the choices themselves are plain data in
:mod:`viz_core.features.filter_options`. Their public names are importable from here too.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from viz_core.features.ascent import (  # noqa: F401 (public names of the ascent, here too)
    Progress, ReceptiveField, RUNS, Ticker, deprocess_image, displayed, displayed_alpha,
    make_plan, mean_activations, receptive_field, starting_images)
from viz_core.features.filter_choice import (  # noqa: F401 (the checks, here too)
    check_filters, check_layer, check_method, check_size, default_layer, filter_count,
    parse_filters, pattern_layers, range_text)
from viz_core.features.filter_options import (  # noqa: F401 (the patterns' choices, here too)
    DEFAULT_COUNT, DEFAULT_SIZE, DEFAULT_STEPS, MAX_STEPS, METHOD_HELP, METHODS, PAGE_METHOD,
    SIZE_RANGE)
from viz_core.metrics.readability import robustness, spectral_slopes
from viz_core.models.loaded import LoadedModel
from viz_core.runtime.cache import DiskCache
from viz_core.errors import ParameterError

_CACHE_VERSION = 2  # 2: readability numbers and the maco transparency


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
                f"{range_text(self.filters)}."
            ) from None


def _median(values: np.ndarray) -> float:
    finite = np.asarray(values, "float64")
    finite = finite[np.isfinite(finite)]
    return float(np.median(finite)) if finite.size else float("nan")


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
    plan = make_plan(model, layer, method, size)
    ticker = Ticker(len(chosen) * (steps + 1), progress, should_stop)
    raw = RUNS[method](model, layer, plan, chosen, steps, seed, ticker)
    ticker.check()
    patterns = displayed(raw["shown"], plan)
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
        arrays["alpha"] = displayed_alpha(raw["alpha"], plan)
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
    info = check_layer(model, layer)
    chosen = check_filters(filters, int(info.output_shape[-1]), layer)
    check_method(method)
    steps = DEFAULT_STEPS[method] if steps is None else steps
    if not isinstance(steps, (int, np.integer)) or not 1 <= steps <= MAX_STEPS:
        raise ParameterError(f"Steps must be a whole number from 1 to {MAX_STEPS}; got {steps!r}.")
    check_size(size)
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
