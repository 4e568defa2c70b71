"""The registry of metrics: one :class:`MetricSpec` per number that judges an explanation map.

The Compare page's tables, arrows, caption and number formats, the ``compare --json`` rows,
``python -m viz_core metrics``, ``bench/bench_metrics.py`` and the README's table of metrics
are all read from here, and :func:`viz_core.metrics.evaluation.map_metrics` computes every
registered metric in a loop. Adding a metric is one :func:`register` call and one function.

Like :mod:`viz_core.methods.registry` this module imports neither TensorFlow nor Keras: a spec
names its compute function as ``"module:function"``, imported on first use.

Every compute function has one call shape, ``fn(inp, **params) -> float`` or
``-> (float, extras)`` with ``inp`` a :class:`viz_core.metrics.evaluation.MetricInput` (model,
image, target, method, the method's map, a way to make the method's map again for another
image or class, seed, a cache runner, progress and stop) and ``extras`` a small dict of plain
values shown next to the number (random-logit's other class).

Cost is counted in forward passes of the whole model, like a method's: a number, or
``cost(map_passes, params) -> float`` with ``map_passes`` the forward passes of one map of the
method being judged (a metric that remakes the map pays them again).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Mapping

from viz_core.errors import ParameterError
from viz_core.registries import Registry, checked_params, resolve
from viz_core.methods.registry import ParamSpec

DIRECTIONS = ("higher", "lower")
ARROWS = {"higher": "↑", "lower": "↓"}
#: What a metric needs: the map alone; the map and model runs on changed images; or the method
#: itself, run again on another class or image.
APPLIES_TO = ("map", "model", "method")


@dataclass(frozen=True)
class Choice:
    """A parameter taking one of a few words (a :class:`ParamSpec` is a number).

    Attributes
    ----------
    name : str
    default : str
    choices : tuple of str
    help : str
    """

    name: str
    default: str
    choices: tuple
    help: str

    def check(self, value, owner: str = ""):
        if value not in self.choices:
            who = f"{owner} " if owner else ""
            raise ParameterError(f"{who}{self.name} must be one of {', '.join(self.choices)}; "
                                 f"got {value!r}.")
        return value


@dataclass(frozen=True)
class MetricSpec:
    """One metric of an explanation map.

    Attributes
    ----------
    name : str
        What JSON keys and the command line use (``"road_morf"``).
    title : str
        What users read (``"ROAD MoRF"``); tables add the arrow of :attr:`direction`.
    paper : str
        Where it comes from (``"Rong et al. 2022"``).
    direction : {"higher", "lower"}
        Which way is better.
    cost : float or callable(map_passes, params) -> float
        Forward passes of the whole model for one map's score.
    compute : str or callable
        ``"module:function"`` or the function: ``fn(inp, **params)``.
    applies_to : {"map", "model", "method"}
        What it needs (see :data:`APPLIES_TO`).
    params : tuple of ParamSpec or Choice
    format : str
        printf-style number format for tables (``"%.3f"``).
    help : str
        One or two sentences in plain words.
    """

    name: str
    title: str
    paper: str
    direction: str
    cost: Any
    compute: Any
    applies_to: str = "model"
    params: tuple = ()
    format: str = "%.3f"
    help: str = ""

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ParameterError(f"Metric direction {self.direction!r} is not one of "
                                 f"{DIRECTIONS}.")
        if self.applies_to not in APPLIES_TO:
            raise ParameterError(f"Metric applies_to {self.applies_to!r} is not one of "
                                 f"{APPLIES_TO}.")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ParameterError(f"Metric {self.name!r} lists a parameter twice: {names}.")

    @property
    def arrow(self) -> str:
        return ARROWS[self.direction]

    @property
    def column(self) -> str:
        """The table column: title and arrow (``"Sparseness ↑"``)."""
        return f"{self.title} {self.arrow}"

    def formatted(self, value) -> str:
        """``value`` in :attr:`format` (``"n/a"`` for None or NaN)."""
        if value is None or (isinstance(value, float) and value != value):
            return "n/a"
        return self.format % value

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}

    def validate(self, params: Mapping | None = None) -> dict:
        """``params`` checked, defaults filled in.

        Raises
        ------
        ParameterError
            A parameter the metric does not take, or a bad value.
        """
        return checked_params("metric", self.name, self.title, self.params, params)

    def function(self):
        return resolve(self.compute)

    def passes(self, map_passes: float = 1.0, params: Mapping | None = None) -> float:
        """Forward passes of one score, for a method whose map costs ``map_passes``."""
        if isinstance(self.cost, numbers.Real):
            return float(self.cost)
        return float(self.cost(float(map_passes), self.validate(params)))


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------
_REGISTRY: Registry[MetricSpec] = Registry("metric")
register = _REGISTRY.register
unregister = _REGISTRY.unregister
registered = _REGISTRY.registered
get = _REGISTRY.get
specs = _REGISTRY.specs


def names() -> tuple[str, ...]:
    return tuple(s.name for s in _REGISTRY.specs())


def check_names(chosen) -> tuple[str, ...]:
    """Metric names checked (known), duplicates removed, order kept; None: every metric."""
    if chosen is None:
        return names()
    picked = tuple(dict.fromkeys(str(m).strip() for m in chosen if str(m).strip()))
    for name in picked:
        get(name)
    return picked


def as_json() -> list[dict]:
    """``[{name, title, direction, paper, params: {name: default}}]`` (``metrics --json``)."""
    return [{"name": s.name, "title": s.title, "direction": s.direction, "paper": s.paper,
             "params": s.defaults()} for s in _REGISTRY.specs()]


def markdown_table() -> str:
    """The README's table of metrics, one row per registered metric."""
    lines = ["| name | metric | better | paper | needs |", "| --- | --- | --- | --- | --- |"]
    needs = {"map": "the map", "model": "the map and model runs",
             "method": "the method run again"}
    for s in _REGISTRY.specs():
        lines.append(f"| `{s.name}` | {s.title} | {s.arrow} {s.direction} | {s.paper} | "
                     f"{needs[s.applies_to]} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Built-in metrics
# --------------------------------------------------------------------------------------------
#: The deletion / insertion curves' settings (literals: the command line reads them too).
BASELINES = ("blurred", "black", "white", "mean")
DEFAULT_BASELINE = "blurred"
DEFAULT_CURVE_STEPS = 20
MIN_STEPS, MAX_STEPS = 2, 200
#: Fractions of pixels ROAD removes (Rong et al. use 10% to 90%; five points keep it quick).
ROAD_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)
#: Max-sensitivity: noisy copies and the noise's half-width (a fraction of the pixel range).
SENSITIVITY_SAMPLES = 4
SENSITIVITY_RADIUS = 0.02

_CURVE_PARAMS = (ParamSpec("steps", DEFAULT_CURVE_STEPS, MIN_STEPS, MAX_STEPS, "int",
                           "points on the curve; each removes 1 / steps of the pixels"),
                 Choice("baseline", DEFAULT_BASELINE, BASELINES, "what removed pixels become"))


def _curve_cost(map_passes, p):
    return 2.0 * (p["steps"] + 1)  # both curves are made together, and shared


register(MetricSpec(
    name="deletion_auc", title="Deletion AUC", paper="Petsiuk et al. 2018", direction="lower",
    compute="viz_core.metrics.faithfulness:deletion_auc", cost=_curve_cost, applies_to="model",
    params=_CURVE_PARAMS,
    help="Remove the pixels the map ranks first, a share per step, and follow the class "
         "probability: a faithful map makes it drop fast (small area under the curve)."))
register(MetricSpec(
    name="insertion_auc", title="Insertion AUC", paper="Petsiuk et al. 2018",
    direction="higher", compute="viz_core.metrics.faithfulness:insertion_auc",
    cost=_curve_cost, applies_to="model", params=_CURVE_PARAMS,
    help="Start from an image with everything removed and reveal the pixels the map ranks "
         "first: a faithful map makes the probability rise fast (large area)."))
register(MetricSpec(
    name="road_morf", title="ROAD MoRF", paper="Rong et al. 2022", direction="lower",
    compute="viz_core.metrics.road:road_morf", cost=float(len(ROAD_FRACTIONS)),
    applies_to="model",
    help="Removes 10% to 90% of the pixels, most relevant first, and fills them in from their "
         "neighbours instead of a fixed colour, so the hole's shape tells the model less; the "
         "mean class probability left (lower = more faithful)."))
register(MetricSpec(
    name="road_lerf", title="ROAD LeRF", paper="Rong et al. 2022", direction="higher",
    compute="viz_core.metrics.road:road_lerf", cost=float(len(ROAD_FRACTIONS)),
    applies_to="model",
    help="The same, least relevant pixels first: a faithful map keeps the probability high."))
register(MetricSpec(
    name="random_logit", title="Random logit SSIM", paper="Sixt et al. 2020",
    direction="lower", compute="viz_core.metrics.randomisation:random_logit_score",
    cost=lambda map_passes, p: map_passes, applies_to="method",
    help="SSIM between this class's map and a random other class's; lower = the method tells "
         "classes apart."))
register(MetricSpec(
    name="sparseness", title="Sparseness", paper="Chalasani et al. 2020", direction="higher",
    compute="viz_core.metrics.complexity:sparseness_score", cost=0.0, applies_to="map",
    help="The Gini index of the map: higher = the importance is concentrated on few pixels."))
register(MetricSpec(
    name="max_sensitivity", title="Max-sensitivity", paper="Yeh et al. 2019",
    direction="lower", compute="viz_core.metrics.robustness:max_sensitivity_score",
    cost=lambda map_passes, p: p["samples"] * map_passes, applies_to="method",
    params=(ParamSpec("samples", SENSITIVITY_SAMPLES, 1, 64, "int", "noisy copies of the image"),
            ParamSpec("radius", SENSITIVITY_RADIUS, 0.0, 0.5, "float",
                      "noise half-width, a fraction of the pixel range")),
    help="The largest relative change of the map under small input noise (±2% of the pixel "
         f"range, {SENSITIVITY_SAMPLES} noisy copies); lower = more robust."))
