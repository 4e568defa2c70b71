"""Every registered metric of one method's map, in one loop over :mod:`viz_core.metrics.registry`.

:func:`map_metrics` makes the method's compare-view map (the Class heatmaps page's settings,
see :func:`viz_core.metrics.maps.compared_call`), hands each metric a :class:`MetricInput` and collects the
numbers in a :class:`MapMetrics` keyed by the metrics' registry names. Progress advances by each
metric's registered cost.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from viz_core.errors import Cancelled, ParameterError
from viz_core.inputs.intake import ModelImage
from viz_core.methods import registry as methods
from viz_core.metrics import registry
from viz_core.metrics.maps import compared_call
from viz_core.models.catalog import LoadedModel
from viz_core.models.targets import Target
from viz_core.runtime.cache import content_key

Progress = Callable[[float, str], None]
StopFn = Callable[[], bool]
#: ``run(function, *args, **kwargs)``: calls ``function``, possibly from a cache
#: (:meth:`viz_core.runtime.workbench.Workbench.run`).
Runner = Callable[..., Any]
_NOT_IN_KEY = frozenset({"progress", "should_stop"})


def call_cache() -> Runner:
    """A runner caching by content for one :func:`map_metrics` call (no workbench given): two
    metrics of one computation (ROAD's MoRF and LeRF) run it once."""
    store: dict = {}

    def run(function, *args, **kwargs):
        keyed = {k: v for k, v in kwargs.items() if k not in _NOT_IN_KEY}
        key = (f"{function.__module__}.{function.__qualname__}", content_key(args),
               content_key(keyed))
        if key not in store:
            store[key] = function(*args, **kwargs)
        return store[key]

    return run


@dataclass(frozen=True, eq=False)
class MetricInput:
    """What every metric's function gets (``fn(inp, **params)``).

    Attributes
    ----------
    model : LoadedModel
        Never modified.
    image : ModelImage
        Pixels (H, W, C) float32 in [0, 255].
    target : Target
    method : str
        The judged method (a registry name).
    heatmap : np.ndarray
        (H, W) float32 in [0, 1]: the method's map of ``image`` for ``target``.
    explain : callable(image, target) -> (H, W) map
        The method run again, with the same settings, on another image or class.
    seed : int
        For metrics that draw random numbers.
    run : callable(function, *args, **kwargs)
        Runs a computation, possibly from a cache: metrics that share one (both deletion
        curves, ROAD's two orders) run it once.
    progress : callable(fraction, message) or None
    should_stop : callable() -> bool or None
    """

    model: LoadedModel
    image: ModelImage
    target: Target
    method: str
    heatmap: np.ndarray
    explain: Callable[[ModelImage, Target], np.ndarray]
    seed: int = 0
    run: Runner = field(default=lambda function, *a, **k: function(*a, **k))
    progress: Progress | None = None
    should_stop: StopFn | None = None


@dataclass(frozen=True, eq=False)
class MapMetrics:
    """The registered metrics of one method's map.

    Attributes
    ----------
    method : str
    values : mapping of metric name -> float
        In the registry's order; NaN where a metric has no answer (max-sensitivity of an empty
        map).
    extras : mapping of metric name -> mapping
        What some metrics report beside the number (random-logit: ``{"class": k}``).
    """

    method: str
    values: Mapping[str, float]
    extras: Mapping[str, Mapping] = field(default_factory=dict)

    def __getitem__(self, name: str) -> float:
        try:
            return self.values[name]
        except KeyError:
            raise ParameterError(f"No metric {name!r} was computed; computed: "
                                 f"{', '.join(self.values)}.") from None

    def as_dict(self) -> dict:
        """``{name: value}`` plus ``{name_key: extra}`` (``random_logit_class``), for JSON."""
        out: dict = dict(self.values)
        for name, extra in self.extras.items():
            out.update({f"{name}_{key}": value for key, value in extra.items()})
        return out

    @property
    def random_logit_class(self) -> int | None:
        return self.extras.get("random_logit", {}).get("class")


def map_passes(model: LoadedModel, method: str) -> float:
    """Forward passes of one compare-view map of ``method`` on ``model``."""
    _, _, kwargs = compared_call(model, None, None, method)
    kwargs = dict(kwargs)
    kwargs.pop("method")
    layer = kwargs.pop("layer")
    return methods.get(method).passes(model.info, kwargs, layer)


def metric_params(spec: registry.MetricSpec, settings: Mapping | None,
                  params: Mapping | None = None) -> dict:
    """``spec``'s parameters: those of ``settings`` it takes (shared settings such as the
    curves' ``steps``), then its own ``params``."""
    shared = {p.name: settings[p.name] for p in spec.params if settings and p.name in settings}
    return spec.validate({**shared, **dict(params or {})})


def metrics_passes(model: LoadedModel, method: str, metrics=None,
                   settings: Mapping | None = None, *, with_map: bool = True) -> float:
    """Forward passes :func:`map_metrics` costs with nothing cached (``with_map=False``: the
    method's map itself already made)."""
    passes = map_passes(model, method)
    return passes * with_map + sum(
        registry.get(m).passes(passes, metric_params(registry.get(m), settings))
        for m in registry.check_names(metrics))


def map_metrics(model: LoadedModel, image: ModelImage, target: Target, method: str, *,
                metrics=None, settings: Mapping | None = None,
                params: Mapping[str, Mapping] | None = None, seed: int = 0,
                run: Runner | None = None, progress: Progress | None = None,
                should_stop: StopFn | None = None) -> MapMetrics:
    """Every registered metric (or those named in ``metrics``) of ``method``'s compare-view map.

    Parameters
    ----------
    model, image, target
        As for :func:`viz_core.methods.heatmap.class_heatmap`.
    method : str
        A registered method.
    metrics : sequence of str or None
        Registry names; None: every registered metric, in the registry's order.
    settings : mapping or None
        Values for every metric that takes a parameter of that name (``steps``, ``baseline``).
    params : mapping of metric name -> mapping, or None
        One metric's own parameters.
    seed : int
        For the metrics that draw random numbers.
    run : callable(function, *args, **kwargs) or None
        A cache runner (``bench.run``) so the map and shared computations come from the
        workbench; None: each is computed once for this call.
    progress : callable(fraction, message) or None
        Advances by each metric's registered cost.
    should_stop : callable() -> bool or None
        Checked between metrics; True raises :class:`~viz_core.errors.Cancelled`.

    Returns
    -------
    MapMetrics
    """
    chosen = registry.check_names(metrics)
    params = dict(params or {})
    for name in params:
        if name not in chosen:
            raise ParameterError(f"Parameters were given for the metric {name!r}, which is not "
                                 f"among those computed: {', '.join(chosen)}.")
    run = run or call_cache()

    def explain(img: ModelImage, tgt: Target) -> np.ndarray:
        function, args, kwargs = compared_call(model, img, tgt, method)
        return run(function, *args, should_stop=should_stop, **kwargs).heatmap

    def step(fraction: float, message: str) -> None:
        if should_stop is not None and should_stop():
            raise Cancelled("The metrics were stopped before they finished.")
        if progress is not None:
            progress(fraction, message)

    step(0.0, "map")
    specs = [registry.get(m) for m in chosen]
    settings_of = [metric_params(s, settings, params.get(s.name)) for s in specs]
    passes = map_passes(model, method)
    # a metric that costs nothing still gets a sliver of the bar
    weights = [passes] + [max(0.5, s.passes(passes, p)) for s, p in zip(specs, settings_of)]
    total = float(sum(weights))
    heat = explain(image, target)
    inp = MetricInput(model=model, image=image, target=target, method=method, heatmap=heat,
                      explain=explain, seed=int(seed), run=run, should_stop=should_stop)
    values, extras = {}, {}
    done = weights[0]
    for spec, kwargs, weight in zip(specs, settings_of, weights[1:]):
        step(done / total, spec.title)
        result = spec.function()(inp, **kwargs)
        value, extra = result if isinstance(result, tuple) else (result, None)
        values[spec.name] = float(value)
        if extra:
            extras[spec.name] = dict(extra)
        done += weight
    step(1.0, "done")
    return MapMetrics(method, values, extras)
