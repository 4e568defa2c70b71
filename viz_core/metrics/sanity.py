"""Sanity check for explanation maps (Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

An explanation of a model should change when the model changes. *Cascading randomisation*
re-initialises the model's weighted layers one by one from the top (the output layer) down and
redraws every method's map after each step. A method whose map hardly changes although the
layers that make the decision are now random is explaining the image, not the model.

The work is done on a **clone** of the caller's model (``keras.models.clone_model`` and
``set_weights``): the caller's model and its caches are never touched. A layer is re-initialised
with its own initialisers, each seeded (a Conv2D or Dense kernel gets fresh Glorot-uniform
values, biases and BatchNorm statistics their initial zeros and ones); a weight without a
matching initialiser is shuffled with a seeded permutation (same values, learned arrangement
gone). Steps are cumulative: step ``i`` has the top ``i`` weighted layers random.

Similarity of each map to the original (step 0) is measured two ways:

* Spearman's rank correlation over all pixels (Adebayo et al.'s main measure); a constant map
  (an empty Grad-CAM, say) ranks no pixel above another and counts as 0;
* SSIM (``skimage.metrics.structural_similarity``, data range 1).

**The flag rule.** A method is flagged "does not explain the model" when its map's similarity
(``metric``, Spearman by default) to the original stays above ``threshold`` (0.9) at *every*
randomisation step computed, i.e. even with the top layers random the map keeps its ranking of
pixels. Methods that depend on the weights fall far below 0.9 as soon as the output layer is
random; an edge detector stays at 1.

Built-in methods are the registry's (:func:`viz_core.metrics.maps.explanation_map`) plus
:data:`EDGE_CONTROL` ("edges": a Sobel edge map of the image, which ignores the model and so
must be flagged: a control). Any other ``(name, function)`` pair can be passed, where
``function(model, image, target)`` returns an (H, W) map.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

import keras
import numpy as np
from skimage.color import rgb2gray
from skimage.filters import sobel
from skimage.metrics import structural_similarity

from viz_core.models.catalog import LoadedModel
from viz_core.errors import Cancelled, ModelError, ParameterError
from viz_core.methods import registry
from viz_core.metrics.agreement import rank_correlation
from viz_core.metrics.maps import explanation_map, map_methods
from viz_core.metrics.maps import method_title as map_title
from viz_core.models.inspect import iter_layers
from viz_core.inputs.intake import ModelImage
from viz_core.runtime.limits import SIMILARITY_THRESHOLD
from viz_core.models.predict import probability_function
from viz_core.models.targets import Target
from viz_core.metrics.choices import (
    DEFAULT_METRIC, DEFAULT_SEED, DEFAULT_THRESHOLD, EDGE_CONTROL, METRICS)

MapFn = Callable[[LoadedModel, ModelImage, Target], np.ndarray]
Progress = Callable[[float, str], None]
StopFn = Callable[[], bool]


def sanity_methods() -> tuple[str, ...]:
    """Every method the check knows, read now: the registry's and the edge control."""
    return map_methods() + (EDGE_CONTROL,)


def default_methods() -> tuple[str, ...]:
    """What the check runs unless told: the registry's fast methods and the edge control."""
    return registry.default_names() + (EDGE_CONTROL,)


#: :func:`default_methods` of the built-in registry.
DEFAULT_METHODS = default_methods()
#: The dashboard randomises every weighted layer by default, but at most this many (top first).
DEFAULT_MAX_STEPS = 8


def _quick_params() -> dict[str, dict]:
    return {s.name: s.quick_params() for s in registry.specs() if s.quick_params()}


#: Cheaper settings for the methods that run many passes per map (a map per step and method):
#: the registry's ``quick`` values.
FAST_PARAMS = _quick_params()
_MIN_SSIM_SIDE = 7  # skimage's default SSIM window


def default_steps(layers: int) -> int:
    """How many of ``layers`` weighted layers the dashboard randomises unless told: all of
    them, at most :data:`DEFAULT_MAX_STEPS`, at least 1."""
    return max(1, min(int(layers), DEFAULT_MAX_STEPS))


def fast_params(methods: Sequence[str]) -> dict[str, dict]:
    """The cheaper settings (:data:`FAST_PARAMS`, read from the registry now) for those of
    ``methods`` that have them (what the dashboard and the ``sanity`` command pass as
    ``params``)."""
    quick = _quick_params()
    return {m: dict(quick[m]) for m in methods if m in quick}


@dataclass(frozen=True, eq=False)
class SanityReport:
    """Every method's map as the model's layers are randomised from the top down.

    Attributes
    ----------
    methods : tuple of str
        Method names, the order of the ``M`` axis.
    layers : tuple of str
        Paths of the randomised layers, top (output side) first. Step ``i`` (1-based) has
        ``layers[:i]`` re-initialised; step 0 is the trained model.
    maps : np.ndarray
        (S + 1, M, H, W) float32 in [0, 1], each map scaled so its maximum is 1 (all zeros
        when it has no positive value).
    spearman : np.ndarray
        (S + 1, M) float32 in [-1, 1], rank correlation of each map with the method's step-0
        map (1 at step 0; 0 for a constant map).
    ssim : np.ndarray
        (S + 1, M) float32 in [-1, 1], SSIM with the step-0 map (1 at step 0).
    probability : np.ndarray
        (S + 1,) float32, the class probability at each step: it shows the model itself changing.
    flagged : tuple of bool
        Per method: True when it fails the check (see :attr:`metric` and :attr:`threshold`).
    metric : str
        ``"spearman"`` or ``"ssim"``: the similarity the flag rule uses.
    threshold : float
        A method is flagged when its similarity stays above this at every step 1..S.
    class_index : int
    label : str
    seed : int
        Seed of the re-initialisation.
    """

    methods: tuple[str, ...]
    layers: tuple[str, ...]
    maps: np.ndarray
    spearman: np.ndarray
    ssim: np.ndarray
    probability: np.ndarray
    flagged: tuple[bool, ...]
    metric: str
    threshold: float
    class_index: int
    label: str
    seed: int

    @property
    def steps(self) -> int:
        """Number of randomisation steps S (not counting the trained model)."""
        return len(self.layers)

    def similarity(self, metric: str | None = None) -> np.ndarray:
        """(S + 1, M) similarity by ``metric`` (default: the one the flag rule uses)."""
        return self.ssim if (metric or self.metric) == "ssim" else self.spearman

    def is_flagged(self, method: str) -> bool:
        return self.flagged[self._index(method)]

    def _index(self, method: str) -> int:
        try:
            return self.methods.index(method)
        except ValueError:
            raise ParameterError(
                f"No method called {method!r} was checked; checked: {', '.join(self.methods)}."
            ) from None


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------
def method_title(method: str) -> str:
    """What users read for a method of the check (``"edges"`` is the control)."""
    return "Edge detector (control)" if method == EDGE_CONTROL else map_title(method)


def edge_map(model: LoadedModel, image: ModelImage, target: Target) -> np.ndarray:
    """The control "explanation": Sobel edge magnitude of the image; ignores model and class.

    Returns
    -------
    np.ndarray
        (H, W) float32 in [0, 1].
    """
    pixels = np.asarray(image.pixels, dtype="float32") / 255.0
    gray = rgb2gray(pixels) if pixels.shape[-1] == 3 else pixels[..., 0]
    edges = sobel(gray)
    top = float(edges.max())
    return (edges / top if top > 0 else np.zeros_like(edges)).astype("float32")


def weighted_layers(model: keras.Model) -> tuple[str, ...]:
    """Paths of the layers that hold weights, from the output back to the input.

    Nested models are entered (their own layers are listed, the container is not).
    """
    found = [path for path, layer in iter_layers(model)
             if not isinstance(layer, keras.Model) and layer.weights]
    return tuple(reversed(found))


def similarity_scores(original: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """``(spearman, ssim)`` of two (H, W) maps in [0, 1]; a constant map has Spearman 0."""
    rho = rank_correlation(original, other)
    rho = 0.0 if np.isnan(rho) else rho
    a, b = np.asarray(original, "float64"), np.asarray(other, "float64")
    if min(a.shape) < _MIN_SSIM_SIDE:
        raise ParameterError(
            f"The maps are {a.shape[1]}x{a.shape[0]}; SSIM needs at least {_MIN_SSIM_SIDE}x"
            f"{_MIN_SSIM_SIDE} pixels."
        )
    return float(rho), float(structural_similarity(a, b, data_range=1.0))


def flag_rule(similarity: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> tuple[bool, ...]:
    """Per method (column): True when the similarity stays above ``threshold`` at every
    randomisation step (rows 1..S of an (S + 1, M) array)."""
    sim = np.asarray(similarity, dtype="float64")
    if sim.ndim != 2 or sim.shape[0] < 2:
        raise ParameterError("The flag rule needs at least one randomisation step.")
    return tuple(bool(v) for v in np.all(sim[1:] > threshold, axis=0))


def _initialiser_values(layer, variable, seed: int) -> np.ndarray:
    """Fresh values for one weight: the layer's own initialiser (seeded), or a shuffle."""
    short = variable.name.split("/")[-1]
    shape = tuple(variable.shape)
    initialiser = getattr(layer, f"{short}_initializer", None)
    if isinstance(initialiser, keras.initializers.Initializer):
        config = initialiser.get_config()
        if "seed" in config:
            config["seed"] = int(seed)
        fresh = type(initialiser).from_config(config)
        return keras.ops.convert_to_numpy(fresh(shape, dtype=variable.dtype))
    # no initialiser to ask (custom layer): a seeded shuffle destroys the learned arrangement
    values = keras.ops.convert_to_numpy(variable).ravel()
    return np.random.default_rng(seed).permutation(values).reshape(shape)


def randomise_layer(model: keras.Model, path: str, seed: int) -> None:
    """Re-initialise the weights of the layer at ``path`` of ``model`` in place (a clone!)."""
    from viz_core.models.inspect import find_layer

    layer = find_layer(model, path)
    for number, variable in enumerate(layer.weights):
        state = np.random.SeedSequence([int(seed), number, *path.encode()]).generate_state(1)
        variable.assign(_initialiser_values(layer, variable, int(state[0])))


def model_clone(model: LoadedModel) -> keras.Model:
    """A structural copy of ``model.model`` with the same weights (the original is untouched)."""
    try:
        clone = keras.models.clone_model(model.model)
        clone.set_weights(model.model.get_weights())
    except (ValueError, TypeError) as exc:
        raise ModelError(
            f"The model {model.title!r} could not be copied for the sanity check ({exc}); "
            "models with custom layers may not support copying."
        ) from None
    return clone


def _as_loaded(model: LoadedModel, keras_model: keras.Model, tag: str) -> LoadedModel:
    """``keras_model`` (a clone with the same architecture) with ``model``'s knowledge and
    fresh caches of its own."""
    return LoadedModel(
        model=keras_model,
        name=model.name,
        title=f"{model.title} ({tag})",
        identity=f"{model.identity}|{tag}",
        weights=tag,
        preprocessing=model.preprocessing,
        labels=model.labels,
        info=model.info,
    )


def _resolve_methods(methods) -> tuple[tuple[str, MapFn | None], ...]:
    resolved: list[tuple[str, MapFn | None]] = []
    for item in methods:
        if isinstance(item, str):
            if item not in sanity_methods():
                raise ParameterError(
                    f"Unknown method {item!r}; choose from {', '.join(sanity_methods())} or pass "
                    "a (name, function) pair."
                )
            resolved.append((item, edge_map if item == EDGE_CONTROL else None))
        elif isinstance(item, tuple) and len(item) == 2 and callable(item[1]):
            resolved.append((str(item[0]), item[1]))
        else:
            raise ParameterError(
                f"A method is a name or a (name, function) pair; got {item!r}."
            )
    names = [name for name, _ in resolved]
    if not names:
        raise ParameterError("Choose at least one method to check.")
    if len(set(names)) != len(names):
        raise ParameterError(f"Each method can be checked once; got {names}.")
    return tuple(resolved)


def _normalised(values: np.ndarray, shape: tuple[int, int], name: str) -> np.ndarray:
    heat = np.asarray(values, dtype="float32")
    if heat.shape != shape:
        raise ParameterError(
            f"The method {name!r} returned a map of shape {heat.shape}; expected {shape} (the "
            "model's input height and width)."
        )
    heat = np.nan_to_num(np.maximum(heat, 0.0))
    top = float(heat.max())
    return heat / top if top > 0 else np.zeros_like(heat)


# --------------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------------
def cascading_randomisation(
    model: LoadedModel,
    image: ModelImage,
    target: Target,
    methods: Sequence[str | tuple[str, MapFn]] | None = None,
    *,
    steps: int | None = None,
    params: Mapping[str, Mapping] | None = None,
    seed: int = DEFAULT_SEED,
    metric: str = DEFAULT_METRIC,
    threshold: float = DEFAULT_THRESHOLD,
    progress: Progress | None = None,
    should_stop: StopFn | None = None,
) -> SanityReport:
    """Randomise the model's weighted layers from the top down and redraw every method's map.

    Parameters
    ----------
    model : LoadedModel
        Never modified: the randomisation happens on a clone.
    image : ModelImage
        ``model.view(loaded_image)``.
    target : Target
        The class whose maps are drawn.
    methods : sequence of str or (name, function), or None
        Names from :func:`sanity_methods` (None: :func:`default_methods`), or pairs whose ``function(model, image, target)``
        returns an (H, W) map at the model's input size (any non-negative scale).
    steps : int or None
        How many layers to randomise (top first); None: every weighted layer.
    params : mapping of method name -> dict, or None
        Parameters for built-in methods (e.g. ``{"smoothgrad": {"samples": 10}}``), passed to
        :func:`viz_core.metrics.maps.explanation_map`.
    seed : int
        Seed of the re-initialisation.
    metric : {"spearman", "ssim"}
        The similarity the flag rule uses.
    threshold : float
        A method is flagged when its similarity stays above this at every step.
    progress : callable(fraction, message) or None
    should_stop : callable() -> bool or None
        Checked between maps; True raises :class:`~viz_core.errors.Cancelled`.

    Returns
    -------
    SanityReport

    Raises
    ------
    ParameterError
        Unknown method or metric, steps out of range, a map of the wrong size.
    ModelError
        The model has no weighted layers or cannot be copied.
    """
    chosen = _resolve_methods(default_methods() if methods is None else methods)
    if metric not in METRICS:
        raise ParameterError(f"Unknown similarity {metric!r}; choose 'spearman' or 'ssim'.")
    threshold = SIMILARITY_THRESHOLD.check(threshold)
    params = {name: dict(p) for name, p in (params or {}).items()}
    for name in params:
        if name not in dict(chosen):
            raise ParameterError(
                f"Parameters were given for {name!r}, which is not among the checked methods."
            )
    k = model.class_index(target.class_index)
    target = Target(k, target.score)
    layers = weighted_layers(model.model)
    if not layers:
        raise ModelError(f"The model {model.title!r} has no layers with weights to randomise.")
    if steps is None:
        steps = len(layers)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or \
            not 1 <= int(steps) <= len(layers):
        raise ParameterError(
            f"The number of layers to randomise must be from 1 to {len(layers)} (the model's "
            f"weighted layers); got {steps!r}."
        )
    layers = layers[: int(steps)]
    h, w = model.info.input_shape[:2]
    total = (len(layers) + 1) * len(chosen)
    maps = np.zeros((len(layers) + 1, len(chosen), h, w), dtype="float32")
    probability = np.zeros(len(layers) + 1, dtype="float32")

    def draw(step_model: LoadedModel, step_image: ModelImage, step: int) -> None:
        for m, (name, function) in enumerate(chosen):
            if should_stop is not None and should_stop():
                raise Cancelled(
                    f"The sanity check was stopped at step {step} of {len(layers)}."
                )
            done = step * len(chosen) + m
            where = "trained model" if step == 0 else f"top {step} layer(s) random"
            if progress is not None:
                progress(done / total, f"{method_title(name)}, {where}")
            if function is None:
                values = explanation_map(step_model, step_image, target, name,
                                         **params.get(name, {}))
            else:
                values = function(step_model, step_image, target)
            maps[step, m] = _normalised(values, (h, w), name)
        probs = probability_function(step_model)(step_image.pixels[None])
        probability[step] = float(probs[0, k])

    draw(model, image, 0)  # the trained model itself: read-only, its cached passes are reused
    clone = model_clone(model)
    # One wrapper for every step, so compiled functions are traced once (they read the weights
    # when called). Results cached per image are not reused across steps: each step sees the
    # image under its own digest.
    randomised = _as_loaded(model, clone, f"randomised seed {seed}")
    for step, path in enumerate(layers, start=1):
        randomise_layer(clone, path, seed)
        draw(randomised, replace(image, digest=f"{image.digest}|randomised top {step}"), step)
    if progress is not None:
        progress(1.0, "done")

    spearman = np.ones((len(layers) + 1, len(chosen)), dtype="float32")
    ssim = np.ones_like(spearman)
    for step in range(1, len(layers) + 1):
        for m in range(len(chosen)):
            spearman[step, m], ssim[step, m] = similarity_scores(maps[0, m], maps[step, m])
    flagged = flag_rule(ssim if metric == "ssim" else spearman, float(threshold))
    return SanityReport(
        methods=tuple(name for name, _ in chosen),
        layers=layers,
        maps=maps,
        spearman=spearman,
        ssim=ssim,
        probability=probability,
        flagged=flagged,
        metric=metric,
        threshold=float(threshold),
        class_index=k,
        label=model.label(k),
        seed=int(seed),
    )
