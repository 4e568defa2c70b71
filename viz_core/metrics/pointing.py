"""The pointing game (Zhang et al. 2016): does a method's strongest point fall on the object?

Freshly generated shape scenes (:func:`viz_core.demo.shapes.draw_scene`) come with the exact box
of every shape. For each shape, each method explains the shape's class; it scores a *hit* when
the maximum of its map lies inside the shape's box, widened by ``tolerance`` pixels on every
side (Zhang et al. allow 15 px at 224 px; the default here is :data:`DEFAULT_TOLERANCE` = 4 px
at the scenes' 150 px, about the size of one cell of the demo model's last 18x18 feature map
after upsampling blur). The hit rate is hits / trials.

Details that decide a hit:

* The maximum is the first maximal pixel in raster order (as ``ClassHeatmap.peak``). An empty
  map (no positive value anywhere) points nowhere and is a miss.
* Maps are at the model's input resolution; the peak's pixel centre is mapped to the scene's
  pixel grid before the box test, so a model with another input size is scored fairly.
* Scene ``i`` is drawn from seed ``seed + i``. With one shape per scene, its class is ``i % 4``
  (every class equally often); with ``shapes`` > 1 the classes are ``i, i + 1, ...`` modulo 4
  (all different, so the box of the class is unambiguous).
* The default first seed, :data:`POINTING_FIRST_SEED`, is beyond every training run's range and
  below the training's held-out range (``viz_core.demo.train``): the scenes are new to the model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from viz_core.methods import registry
from viz_core.models.catalog import LoadedModel
from viz_core.demo.shapes import CLASS_NAMES, Scene, draw_scene
from viz_core.errors import Cancelled, ParameterError
from viz_core.metrics.maps import check_methods, explanation_map, method_title
from viz_core.inputs.intake import image_from_array
from viz_core.models.targets import Target
from viz_core.metrics.choices import (  # noqa: F401 (DEFAULT_TOLERANCE: pages import it from here)
    DEFAULT_SCENES, DEFAULT_TOLERANCE, MAX_SCENES, POINTING_FIRST_SEED)


def default_methods() -> tuple[str, ...]:
    """Every registered method (:mod:`viz_core.methods.registry`), read now."""
    return registry.names()


Progress = Callable[[float, str], None]
StopFn = Callable[[], bool]


@dataclass(frozen=True)
class MethodScore:
    """One method's result: ``hits`` of ``total`` trials."""

    method: str
    hits: int
    total: int

    @property
    def hit_rate(self) -> float:
        """hits / total, in [0, 1]."""
        return self.hits / self.total if self.total else 0.0

    @property
    def title(self) -> str:
        return method_title(self.method)


@dataclass(frozen=True, eq=False)
class PointingResult:
    """The pointing game over ``scenes`` generated scenes.

    Attributes
    ----------
    model : str
        Name of the model played.
    scenes : int
    seed : int
        First scene seed (scene ``i`` has seed ``seed + i``).
    shapes_per_scene : int
    tolerance : int
        Pixels the boxes were widened by.
    scores : tuple of MethodScore
        One per method, in the order asked.
    hits : np.ndarray
        (M, T) bool, hit of each method on each trial (T = scenes * shapes_per_scene).
    peaks : np.ndarray
        (M, T, 2) int, ``(x, y)`` of each map's maximum in scene pixels; ``(-1, -1)`` for an
        empty map.
    boxes : np.ndarray
        (T, 4) int, ``(x0, y0, x1, y1)`` of each trial's shape (x1, y1 exclusive).
    class_indices : np.ndarray
        (T,) int, the class explained in each trial.
    scene_seeds : np.ndarray
        (T,) int, the seed of each trial's scene.
    """

    model: str
    scenes: int
    seed: int
    shapes_per_scene: int
    tolerance: int
    scores: tuple[MethodScore, ...]
    hits: np.ndarray
    peaks: np.ndarray
    boxes: np.ndarray
    class_indices: np.ndarray
    scene_seeds: np.ndarray

    def score(self, method: str) -> MethodScore:
        for entry in self.scores:
            if entry.method == method:
                return entry
        raise ParameterError(
            f"No method called {method!r} was played; played: "
            f"{', '.join(s.method for s in self.scores)}."
        )

    def as_dict(self) -> dict:
        """The JSON the command line prints."""
        return {
            "model": self.model,
            "scenes": self.scenes,
            "seed": self.seed,
            "shapes_per_scene": self.shapes_per_scene,
            "tolerance": self.tolerance,
            "methods": [{"method": s.method, "hits": s.hits, "total": s.total,
                         "hit_rate": s.hit_rate} for s in self.scores],
        }


# --------------------------------------------------------------------------------------------
# Scoring one map (pure numpy)
# --------------------------------------------------------------------------------------------
def heatmap_peak(heatmap: np.ndarray, scene_size: tuple[int, int] | None = None):
    """``(x, y)`` of the map's maximum, or None for an empty map (no positive value).

    Parameters
    ----------
    heatmap : (H, W) float
    scene_size : (height, width) or None
        When given, the peak's pixel centre is mapped to a grid of this size.
    """
    heat = np.asarray(heatmap, dtype="float64")
    if heat.ndim != 2 or heat.size == 0:
        raise ParameterError(f"A map must be a 2-D array (height x width); got shape {heat.shape}.")
    if not np.any(heat > 0):
        return None
    row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
    if scene_size is not None and tuple(scene_size) != heat.shape:
        sh, sw = scene_size
        col = int(np.floor((col + 0.5) * sw / heat.shape[1]))
        row = int(np.floor((row + 0.5) * sh / heat.shape[0]))
    return int(col), int(row)


def is_hit(heatmap: np.ndarray, box: Sequence[int], tolerance: int = 0,
           scene_size: tuple[int, int] | None = None) -> bool:
    """Whether the map's maximum lies in ``box`` widened by ``tolerance`` pixels.

    Parameters
    ----------
    heatmap : (H, W) float
    box : (x0, y0, x1, y1)
        x0, y0 inclusive; x1, y1 exclusive (scene pixels).
    tolerance : int
        Pixels added on every side of the box.
    scene_size : (height, width) or None
        Size of the scene the box is in, when the map has another size.
    """
    peak = heatmap_peak(heatmap, scene_size)
    if peak is None:
        return False
    x, y = peak
    x0, y0, x1, y1 = (int(v) for v in box)
    t = int(tolerance)
    return x0 - t <= x < x1 + t and y0 - t <= y < y1 + t


def hit_rate(heatmaps: np.ndarray, boxes: np.ndarray, tolerance: int = 0) -> float:
    """Fraction of (N, H, W) maps whose maximum lies in their (N, 4) box (same grid)."""
    heatmaps, boxes = np.asarray(heatmaps), np.asarray(boxes)
    if len(heatmaps) != len(boxes) or len(boxes) == 0:
        raise ParameterError(
            f"Give one box per map; got {len(heatmaps)} maps and {len(boxes)} boxes."
        )
    return float(np.mean([is_hit(h, b, tolerance) for h, b in zip(heatmaps, boxes)]))


# --------------------------------------------------------------------------------------------
# Scenes
# --------------------------------------------------------------------------------------------
def scene_classes(index: int, shapes: int) -> tuple[str, ...]:
    """The classes of scene ``index``: ``index % 4`` first, then the next ones (all distinct)."""
    return tuple(CLASS_NAMES[(index + j) % len(CLASS_NAMES)] for j in range(shapes))


def pointing_scenes(scenes: int, seed: int = POINTING_FIRST_SEED, shapes: int = 1) -> tuple[Scene, ...]:
    """The scenes a pointing game plays on (see the module docstring)."""
    scenes, shapes = _check_counts(scenes, shapes)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"The first scene seed must be a whole number >= 0; got {seed!r}.")
    return tuple(draw_scene(int(seed) + i, scene_classes(i, shapes)) for i in range(scenes))


def _check_counts(scenes, shapes) -> tuple[int, int]:
    if isinstance(scenes, bool) or not isinstance(scenes, (int, np.integer)) or \
            not 1 <= int(scenes) <= MAX_SCENES:
        raise ParameterError(
            f"The number of scenes must be a whole number from 1 to {MAX_SCENES}; got {scenes!r}."
        )
    if isinstance(shapes, bool) or not isinstance(shapes, (int, np.integer)) or \
            not 1 <= int(shapes) <= len(CLASS_NAMES):
        raise ParameterError(
            f"A scene holds 1 to {len(CLASS_NAMES)} shapes of different classes; got {shapes!r}."
        )
    return int(scenes), int(shapes)


def shape_classes(model: LoadedModel) -> dict[str, int]:
    """The model's class index of each shape name; ParameterError when it lacks one."""
    known = {label.lower(): i for i, label in enumerate(model.labels)}
    missing = [name for name in CLASS_NAMES if name not in known]
    if missing:
        raise ParameterError(
            "The pointing game draws shape scenes, so it needs a model that knows the classes "
            f"{', '.join(CLASS_NAMES)} (such as the demo model); {model.title!r} has no class "
            f"{missing[0]!r} (its classes include {', '.join(model.labels[:6])})."
        )
    return {name: known[name] for name in CLASS_NAMES}


# --------------------------------------------------------------------------------------------
# The game
# --------------------------------------------------------------------------------------------
def pointing_game(
    model: LoadedModel,
    methods: Sequence[str] | None = None,
    *,
    scenes: int = DEFAULT_SCENES,
    seed: int = POINTING_FIRST_SEED,
    shapes: int = 1,
    tolerance: int = DEFAULT_TOLERANCE,
    params: Mapping[str, Mapping] | None = None,
    progress: Progress | None = None,
    should_stop: StopFn | None = None,
) -> PointingResult:
    """Play the pointing game with ``methods`` on ``scenes`` fresh shape scenes.

    Parameters
    ----------
    model : LoadedModel
        A model with the shape classes (the demo model); not modified.
    methods : sequence of str
        Names from :func:`viz_core.metrics.maps.map_methods`; None: :func:`default_methods`.
    scenes : int
        Number of scenes, 1 to :data:`MAX_SCENES`.
    seed : int
        First scene seed.
    shapes : int
        Shapes per scene (1 to 4, different classes); each shape is one trial.
    tolerance : int
        Pixels (in the 150 px scene) the boxes are widened by, 0 to 20.
    params : mapping of method -> dict, or None
        Method parameters for :func:`viz_core.metrics.maps.explanation_map`.
    progress : callable(fraction, message) or None
    should_stop : callable() -> bool or None
        Checked before every map; True raises :class:`~viz_core.errors.Cancelled`.

    Returns
    -------
    PointingResult
    """
    chosen = check_methods(default_methods() if methods is None else methods)
    scenes, shapes = _check_counts(scenes, shapes)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, np.integer)) or \
            not 0 <= int(tolerance) <= 20:
        raise ParameterError(f"The tolerance is 0 to 20 pixels; got {tolerance!r}.")
    params = {name: dict(p) for name, p in (params or {}).items()}
    for name in params:
        if name not in chosen:
            raise ParameterError(
                f"Parameters were given for {name!r}, which is not among the methods played."
            )
    indices = shape_classes(model)
    drawn = pointing_scenes(scenes, seed, shapes)
    trials = scenes * shapes
    hits = np.zeros((len(chosen), trials), dtype=bool)
    peaks = np.full((len(chosen), trials, 2), -1, dtype="int64")
    boxes = np.zeros((trials, 4), dtype="int64")
    classes = np.zeros(trials, dtype="int64")
    seeds = np.zeros(trials, dtype="int64")
    work, done = trials * len(chosen), 0
    t = 0
    for scene in drawn:
        view = model.view(image_from_array(scene.image, f"scene_{scene.seed}"))
        size = scene.image.shape[:2]
        for shape in scene.shapes:
            k = indices[shape.label]
            boxes[t], classes[t], seeds[t] = shape.box, k, scene.seed
            for m, method in enumerate(chosen):
                if should_stop is not None and should_stop():
                    raise Cancelled(f"The pointing game was stopped after {done} of {work} maps.")
                heat = explanation_map(model, view, Target(k), method, **params.get(method, {}))
                peak = heatmap_peak(heat, size)
                if peak is not None:
                    peaks[m, t] = peak
                hits[m, t] = is_hit(heat, shape.box, tolerance, size)
                done += 1
                if progress is not None:
                    progress(done / work, f"scene {t // shapes + 1} of {scenes}: "
                             f"{method_title(method)}")
            t += 1
    scores = tuple(MethodScore(method, int(hits[m].sum()), trials)
                   for m, method in enumerate(chosen))
    return PointingResult(
        model=model.name,
        scenes=scenes,
        seed=int(seed),
        shapes_per_scene=shapes,
        tolerance=int(tolerance),
        scores=scores,
        hits=hits,
        peaks=peaks,
        boxes=boxes,
        class_indices=classes,
        scene_seeds=seeds,
    )

