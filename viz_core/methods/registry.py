"""The registry of explanation methods: one :class:`MethodSpec` per method, read by everything.

The Class heatmaps, Compare and Sanity pages, the pointing game, the presenter warm-up and the
``heatmap`` / ``compare`` / ``sanity`` / ``evaluate`` / ``methods`` commands list methods from
here, and :func:`viz_core.methods.heatmap.class_heatmap` validates a method's parameters here, once. Adding
a method is one :func:`register` call with its compute function (see README, "Adding a method").

This module imports neither TensorFlow nor Keras (``python -m viz_core --help`` stays fast): a
spec names its compute function as ``"module:function"``, imported on first use.

Families and compute function shapes (``inputs``):

* ``"layer"`` methods work on one layer's activations ``A``, a stack (N, h, w, k) float32 (or
  one image's (h, w, k)):

  - ``inputs="gradients"``: ``fn(A, G, **params) -> (N, h, w)`` with ``G`` the gradient of the
    class score with respect to ``A`` (same shape); the function returns the whole map, so
    per-pixel weightings (LayerCAM, HiResCAM) fit as well as channel weights (Grad-CAM);
  - ``inputs="activations"``: ``fn(A, **params) -> (N, h, w)`` (no gradient: EigenCAM);
  - ``inputs="context"``: ``fn(ctx, **params) -> (h, w)`` with ``ctx`` a
    :class:`viz_core.methods.context.MethodContext` (model, image, target, layer, progress,
    stop), for methods that run the model again (Score-CAM, AblationCAM), one image at a time.
* ``"pixel-gradient"`` methods work on the pixels: ``inputs="pixel-gradients"``,
  ``fn(batch, **params) -> (N, H, W)`` with ``batch`` a
  :class:`viz_core.methods.context.PixelBatch` (images, targets, ``batch.gradients(copies)``);
  or ``inputs="context"``, ``fn(ctx, **params) -> (H, W)``, one image at a time.
* ``"perturbation"`` methods: ``inputs="context"``, ``fn(ctx, **params)`` returns an (H, W) map
  at the model's input resolution.
* ``"relevance"`` methods (LRP, :mod:`viz_core.methods.relevance`): ``inputs="context"``,
  ``fn(ctx, **params)`` returns the (H, W) signed pixel relevance and its extras; given a
  :class:`~viz_core.methods.context.PixelBatch` instead (what ``class_heatmaps`` passes), the
  (N, H, W) maps of the batch and extras of one number per image.

A ``"context"`` or ``"pixel-gradients"`` function may return ``(raw, extras)`` with ``extras`` a
dict (``attribution_sum``, ``score_difference``: one number, or one per image). Raw maps are
signed; ``class_heatmap`` rectifies, resizes and scales them to [0, 1]. All but ``"context"``
methods are batched by :func:`viz_core.methods.heatmap.class_heatmaps` (the dataset engine).

Cost is counted in *forward passes' worth* of the whole model: a gradient with respect to the
pixels is 3 (one forward, about two for the backward pass); a pass through the part of the
network after a layer counts as the share of the model's multiply-adds after that layer
(estimated from the layer list, see :func:`share_after`).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from viz_core.errors import ModelError, ParameterError
from viz_core.registries import Registry, checked_params, resolve

FAMILIES = ("layer", "pixel-gradient", "perturbation", "relevance")
FAMILY_TITLES = {"layer": "layer (feature maps)", "pixel-gradient": "pixel gradients",
                 "perturbation": "perturbation (model runs on changed images)",
                 "relevance": "relevance propagation (score handed back layer by layer)"}
INPUTS = ("gradients", "activations", "pixel-gradients", "context")
#: The inputs each family may take (the first is the usual one).
FAMILY_INPUTS = {"layer": ("gradients", "activations", "context"),
                 "pixel-gradient": ("pixel-gradients", "context"),
                 "perturbation": ("context",),
                 "relevance": ("context",)}
KINDS = ("int", "float")
#: A gradient with respect to the pixels costs about this many forward passes (backward ~ 2x).
GRADIENT_PASSES = 3.0
#: What a method may cost at most, in forward passes' worth (about 10 minutes of VGG16 on a
#: 2-core machine); checked where a cost depends on several parameters (Occlusion).
MAX_PASSES = 4096
SEED_HIGH = 2**32 - 1


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a method: its default, its range, and how the page offers it.

    Attributes
    ----------
    name : str
        Keyword of the compute function; the command line's flag is ``--name`` (``_`` -> ``-``).
    default : int, float or None
        None only when ``none_means`` says what None stands for.
    low, high : int or float
        Inclusive range every value must lie in (the registry refuses others).
    kind : {"int", "float"}
    help : str
        One line in plain words.
    none_means : str or None
        When set, None is allowed and means this (e.g. ``"every channel"``).
    page : tuple (low, high, step) or None
        The Class heatmaps page's slider; None: no widget (the default is used).
    page_default : int, float or None
        The page's value when it differs from ``default`` (what Compare and the warm-up use too).
    quick : int, float or None
        A cheaper value for runs that draw many maps (the sanity check); None: ``default``.
    channels : bool
        The value counts channels of the layer: the page's slider ends at the layer's channel
        count, and that count (every channel) is passed as None.
    above_low : bool
        ``low`` itself is refused, ``(low, high]``: for a value that is divided by (as
        :data:`viz_core.runtime.limits.COMPACTNESS`).
    """

    name: str
    default: Any
    low: float
    high: float
    kind: str
    help: str
    none_means: str | None = None
    page: tuple | None = None
    page_default: Any = None
    quick: Any = None
    channels: bool = False
    above_low: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ParameterError(f"Parameter kind {self.kind!r} is not one of {KINDS}.")
        if self.default is None and self.none_means is None:
            raise ParameterError(f"Parameter {self.name!r} has no default.")

    @property
    def flag(self) -> str:
        """The command-line flag, e.g. ``--max-channels``."""
        return "--" + self.name.replace("_", "-")

    @property
    def on_page(self):
        """The value the page starts from (``page_default`` or ``default``)."""
        return self.default if self.page_default is None else self.page_default

    def check(self, value, method: str = ""):
        """``value`` as an int or float inside the range, or None when allowed.

        Raises
        ------
        ParameterError
            Wrong type (a bool, text, a fraction for an int) or out of range; the message names
            the value and the range.
        """
        owner = f"{method} " if method else ""
        if value is None:
            if self.none_means is None:
                raise ParameterError(f"{owner}{self.name} needs a value from {self.low} to "
                                     f"{self.high}; got None.")
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ParameterError(f"{owner}{self.name} must be a number from {self.low} to "
                                 f"{self.high}; got {value!r}.")
        if self.kind == "int":
            if not float(value).is_integer():
                raise ParameterError(f"{owner}{self.name} must be a whole number from "
                                     f"{self.low} to {self.high}; got {value!r}.")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ParameterError(f"{owner}{self.name} must be from {self.low} to "
                                     f"{self.high}; got {value!r}.")
        low_ok = value > self.low if self.above_low else value >= self.low
        if not (low_ok and value <= self.high):
            allowed = f" (or None for {self.none_means})" if self.none_means else ""
            span = (f"above {self.low}, up to {self.high}" if self.above_low
                    else f"from {self.low} to {self.high}")
            raise ParameterError(f"{owner}{self.name} must be {span}{allowed}; got {value!r}.")
        return value


CostFn = Callable[[Any, Mapping, str | None], float]


@dataclass(frozen=True)
class MethodSpec:
    """One explanation method.

    Attributes
    ----------
    name : str
        What the command line and URLs use (``"gradcam"``).
    title : str
        What users read (``"Grad-CAM"``).
    family : {"layer", "pixel-gradient", "perturbation"}
    help : str
        One paragraph in plain words, naming the paper.
    params : tuple of ParamSpec
    cost : callable(info, params, layer) -> float
        Forward passes' worth for one map; ``info`` is a
        :class:`viz_core.models.inspect.ModelInfo`, ``params`` the validated parameters, ``layer`` a
        layer path or None (the last conv layer).
    compute : str or callable
        ``"module:function"`` (imported on first use) or the function itself; its call shape
        depends on ``inputs`` (see the module docstring).
    inputs : {"gradients", "activations", "pixel-gradients", "context"}
    fast : bool
        The map costs a pass or two whatever the parameters: the page draws it at once.
    by_default : bool or None
        Compare, the sanity check and the pointing game run it unless told; None: as ``fast``.
        The later fast methods say False, so those views keep a readable handful by default.
    answers : str
        What question the map answers, in a few words ("which table" column).
    weakness : str
        Its best-known weakness, in a few words.
    """

    name: str
    title: str
    family: str
    help: str
    cost: CostFn
    compute: Any
    inputs: str = "context"
    params: tuple = ()
    fast: bool = False
    by_default: bool | None = None
    answers: str = ""
    weakness: str = ""

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ParameterError(f"Method family {self.family!r} is not one of {FAMILIES}.")
        if self.inputs not in INPUTS:
            raise ParameterError(f"Method inputs {self.inputs!r} is not one of {INPUTS}.")
        if self.inputs not in FAMILY_INPUTS[self.family]:
            raise ParameterError(f"A {self.family} method takes inputs "
                                 f"{' or '.join(map(repr, FAMILY_INPUTS[self.family]))}.")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ParameterError(f"Method {self.name!r} lists a parameter twice: {names}.")

    @property
    def uses_layer(self) -> bool:
        return self.family == "layer"

    def param(self, name: str) -> ParamSpec:
        for p in self.params:
            if p.name == name:
                return p
        raise ParameterError(f"The method {self.name!r} has no parameter {name!r}.")

    def defaults(self) -> dict:
        """``{name: default}`` of every parameter."""
        return {p.name: p.default for p in self.params}

    def validate(self, params: Mapping | None = None) -> dict:
        """``params`` checked (names, types, ranges), defaults filled in.

        Raises
        ------
        ParameterError
            A parameter the method does not take, or a value of the wrong type or out of range.
        """
        return checked_params("method", self.name, self.title, self.params, params)

    def page_params(self, channels: int = 0) -> dict:
        """The parameters the Class heatmaps page passes with its widgets untouched.

        Only parameters with a widget are passed (the others keep their default inside
        ``class_heatmap``), so the page, Compare and the warm-up share one cached result.
        ``channels`` is the layer's channel count for parameters that count channels: the
        page's value, or None (every channel) when the layer has no more than that.
        """
        values = {}
        for p in self.params:
            if p.page is None:
                continue
            value = p.on_page
            if p.channels and value is not None and channels and channels <= value:
                value = None
            values[p.name] = value
        return values

    def quick_params(self) -> dict:
        """Parameters with a cheaper ``quick`` value, at that value (for the sanity check)."""
        return {p.name: p.quick for p in self.params if p.quick is not None}

    def function(self) -> Callable:
        """The compute function (imported now if given as ``"module:function"``)."""
        return resolve(self.compute)

    def passes(self, info, params: Mapping | None = None, layer: str | None = None) -> float:
        """Forward passes' worth of one map with ``params`` (validated, defaults filled)."""
        return float(self.cost(info, self.validate(params), layer))


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------
_REGISTRY: Registry[MethodSpec] = Registry("method")
register = _REGISTRY.register
unregister = _REGISTRY.unregister
registered = _REGISTRY.registered
get = _REGISTRY.get
specs = _REGISTRY.specs


def names(family: str | None = None, *, fast: bool | None = None) -> tuple[str, ...]:
    """Registered method names in order, optionally of one family and/or speed."""
    return tuple(s.name for s in _REGISTRY.specs()
                 if (family is None or s.family == family) and (fast is None or s.fast == fast))


def dataset_names() -> tuple[str, ...]:
    """What a dataset run takes: the layer and pixel-gradient methods (batched) and relevance
    propagation (one image at a time, one backward sweep each)."""
    return names("layer") + names("pixel-gradient") + names("relevance")


def default_names() -> tuple[str, ...]:
    """What Compare, the sanity check and the pointing game run unless told (``by_default``)."""
    return tuple(s.name for s in _REGISTRY.specs()
                 if (s.fast if s.by_default is None else s.by_default))


def check_names(chosen: Iterable[str], allowed: Sequence[str]) -> tuple[str, ...]:
    """``chosen`` method names checked against ``allowed``: blanks and duplicates removed,
    order kept, at least one left.

    The one check of a list of methods: :func:`viz_core.metrics.faithfulness.check_methods` (Compare,
    the pointing game, the sanity check) calls it, and so does the command line's ``--methods``
    while parsing, before TensorFlow loads (this module has no TensorFlow).

    Raises
    ------
    ParameterError
        No name left, or a name not in ``allowed``; the message lists ``allowed``.
    """
    allowed = tuple(allowed)
    picked = tuple(dict.fromkeys(str(m).strip() for m in chosen if str(m).strip()))
    if not picked:
        raise ParameterError(f"Choose at least one method from {', '.join(allowed)}.")
    unknown = [m for m in picked if m not in allowed]
    if unknown:
        raise ParameterError(f"Unknown method {unknown[0]!r}; choose from {', '.join(allowed)}.")
    return picked


def title(name: str) -> str:
    spec = _REGISTRY.lookup(name)
    return spec.title if spec is not None else name


def uses_layer(name: str) -> bool:
    return get(name).uses_layer


def as_json() -> list[dict]:
    """``[{name, title, family, params: {name: default}}]`` (``python -m viz_core methods``)."""
    return [{"name": s.name, "title": s.title, "family": s.family, "params": s.defaults()}
            for s in _REGISTRY.specs()]


def which_method_rows(info=None) -> list[dict]:
    """The "which method when" table: one row per method, in plain words.

    Parameters
    ----------
    info : ModelInfo or None
        With a model, the cost column gives its forward passes at the page's defaults.
    """
    rows = []
    for s in _REGISTRY.specs():
        if info is not None:
            cost = f"about {format_passes(s.passes(info, s.page_params(_channels(info))))}"
        else:
            cost = "a pass or two" if s.fast else "many passes"
        rows.append({"Method": s.title, "Kind": FAMILY_TITLES[s.family],
                     "Answers": s.answers, "Cost": cost, "Weakness": s.weakness})
    return rows


def format_passes(passes: float) -> str:
    n = max(1, int(round(passes)))
    return f"{n} forward pass" + ("" if n == 1 else "es")


# --------------------------------------------------------------------------------------------
# Cost helpers (ModelInfo in, numbers out; no TensorFlow)
# --------------------------------------------------------------------------------------------
def _layer_work(layer) -> float:
    """Rough multiply-adds of one layer for one image: weights x output positions."""
    if layer.nested:
        return 0.0  # its own layers are listed after it
    shape = [d or 1 for d in (layer.output_shape or ())]
    positions = shape[0] * shape[1] if layer.spatial and len(shape) >= 3 else 1
    values = math.prod(shape) if shape else 1
    return float(layer.params * positions + values)


def share_after(info, layer: str | None) -> float:
    """Share of the model's work done after ``layer`` (None: the last conv layer), in [0, 1]."""
    path = layer or info.last_conv_layer
    work = [_layer_work(entry) for entry in info.layers]
    total = sum(work) or 1.0
    for i, entry in enumerate(info.layers):
        if entry.path == path:
            return min(1.0, sum(work[i + 1:]) / total)
    return 1.0


def _channels(info, layer: str | None = None) -> int:
    path = layer or info.last_conv_layer
    try:
        return int(info.layer(path).output_shape[-1] or 1)
    except (ModelError, IndexError, TypeError):  # class_heatmap reports a bad layer itself
        return 1


def _layer_gradient_cost(info, params, layer):
    return 1.0 + 2.0 * share_after(info, layer)


def _occlusion_positions(size: int, patch: int, stride: int) -> list[int]:
    """Top-left corners along one side: every ``stride``, plus one flush with the far edge."""
    patch = min(patch, size)
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def occlusion_windows(height: int, width: int, patch: int, stride: int) -> int:
    """How many patch positions Occlusion tries on an image of ``height`` x ``width``."""
    return (len(_occlusion_positions(height, patch, stride))
            * len(_occlusion_positions(width, patch, stride)))


# --------------------------------------------------------------------------------------------
# Built-in methods
# --------------------------------------------------------------------------------------------
_LAYER = "viz_core.methods.layer"
_PIXEL = "viz_core.methods.pixel"
_PERTURBATION = "viz_core.methods.perturbation"
_SEED = ParamSpec("seed", 0, 0, SEED_HIGH, "int", "random seed (same seed, same map)")

register(MethodSpec(
    name="gradcam", title="Grad-CAM", family="layer", inputs="gradients", fast=True,
    compute=f"{_LAYER}:gradcam_map", cost=_layer_gradient_cost,
    help="Gradient of the class score at a layer, averaged per channel: weights for the layer's "
         "feature maps, added up and the positive part kept (Selvaraju et al. 2017, "
         "\"Grad-CAM\"). One forward and one backward pass.",
    answers="which regions of a layer's feature maps raise the class score",
    weakness="coarse (the layer's resolution); averaging can cancel opposite gradients"))
register(MethodSpec(
    name="gradcam++", title="Grad-CAM++", family="layer", inputs="gradients", fast=True,
    compute=f"{_LAYER}:gradcam_pp_map", cost=_layer_gradient_cost,
    help="Like Grad-CAM, but each channel is weighted by where its gradient is positive, with "
         "higher-order terms (Chattopadhyay et al. 2018, \"Grad-CAM++\"); better when several "
         "objects of one class are in the image.",
    answers="the same, counting every instance of the class",
    weakness="coarse; the higher-order terms assume an exponential score"))
register(MethodSpec(
    name="scorecam", title="Score-CAM", family="layer", inputs="context",
    compute=f"{_LAYER}:scorecam_map",
    cost=lambda info, p, layer: 1.0 + (p["max_channels"] or _channels(info, layer)),
    params=(ParamSpec("max_channels", None, 1, 4096, "int",
                      "score only this many channels, those with the largest mean activation",
                      none_means="every channel", page=(1, 4096, 1), page_default=64, quick=32,
                      channels=True),),
    help="No gradients: each channel of the layer, scaled to [0, 1], masks the image and the "
         "model scores what is left; the scores weigh the channels (Wang et al. 2020, "
         "\"Score-CAM\"). One forward pass per channel, so it is slow on big models.",
    answers="which feature maps, used as masks, keep the class score high",
    weakness="one pass per channel; small differences between channels after the softmax"))
register(MethodSpec(
    name="layercam", title="LayerCAM", family="layer", inputs="gradients", fast=True,
    compute=f"{_LAYER}:layercam_map", cost=_layer_gradient_cost,
    help="Every position of every feature map weighted by its own positive gradient, then "
         "added up: ReLU(sum_k ReLU(dS/dA_k) * A_k) (Jiang et al. 2021, \"LayerCAM\"). Fine "
         "maps from earlier layers too.",
    answers="where, position by position, the layer pushes the class score up",
    weakness="ignores negative gradients; noisy at early layers"))
register(MethodSpec(
    name="hirescam", title="HiResCAM", family="layer", inputs="gradients", fast=True,
    compute=f"{_LAYER}:hirescam_map", cost=_layer_gradient_cost,
    help="Gradient times activation, element by element, summed over channels: "
         "ReLU(sum_k dS/dA_k * A_k) (Draelos & Carin 2020, \"HiResCAM\"). For a model ending in "
         "global average pooling and one dense layer it shows exactly the locations the score "
         "adds up from.",
    answers="the locations the class score is computed from",
    weakness="coarse at deep layers; mixes positive and negative evidence before the ReLU"))
register(MethodSpec(
    name="xgradcam", title="XGradCAM", family="layer", inputs="gradients", fast=True,
    compute=f"{_LAYER}:xgradcam_map", cost=_layer_gradient_cost,
    help="Channel weights sum(dS/dA_k * A_k) / sum(A_k): the gradient averaged where the "
         "channel is active (Fu et al. 2020, \"Axiom-based Grad-CAM\"), chosen to satisfy two "
         "axioms, sensitivity and conservation.",
    answers="like Grad-CAM, weighting each channel where it is active",
    weakness="coarse; channels with tiny activations get unstable weights"))
register(MethodSpec(
    name="eigencam", title="EigenCAM", family="layer", inputs="activations", fast=True,
    compute=f"{_LAYER}:eigencam_map", cost=lambda info, p, layer: 1.0,
    help="No gradient and no class: the first principal component of the layer's feature maps "
         "(positions as samples, channels as features, centred), projected back on the "
         "positions (Muhammad & Yeasin 2020, \"Eigen-CAM\"). Its sign is arbitrary; it is "
         "chosen so the map correlates positively with the layer's summed activation.",
    answers="what the layer attends to most, whatever the class",
    weakness="the same map for every class; cannot tell two objects apart"))
register(MethodSpec(
    name="ablationcam", title="AblationCAM", family="layer", inputs="context",
    compute=f"{_LAYER}:ablationcam_map",
    cost=lambda info, p, layer: 1.0 + _channels(info, layer) * share_after(info, layer),
    help="Each channel of the layer is set to zero in turn and the rest of the network runs "
         "again; the drop of the class score, relative to the score, weighs the channel "
         "(Desai & Ramaswamy 2020, \"Ablation-CAM\"). No gradients; only the part of the "
         "model after the layer runs, channels in batches.",
    answers="which feature maps the class score cannot do without",
    weakness="one pass of the network's back part per channel; channels that stand in for "
             "each other look unimportant"))
register(MethodSpec(
    name="saliency", title="Vanilla saliency (gradient)", family="pixel-gradient",
    inputs="pixel-gradients", compute=f"{_PIXEL}:saliency_map",
    cost=lambda info, p, layer: GRADIENT_PASSES, fast=True,
    help="Gradient of the class score with respect to each pixel, the largest over the colour "
         "channels (Simonyan et al. 2014, \"Deep Inside Convolutional Networks\").",
    answers="which pixels, changed a little, change the score most",
    weakness="noisy; sensitive to edges more than to the object"))
register(MethodSpec(
    name="smoothgrad", title="SmoothGrad", family="pixel-gradient",
    inputs="pixel-gradients", compute=f"{_PIXEL}:smoothgrad_map",
    cost=lambda info, p, layer: GRADIENT_PASSES * p["samples"],
    params=(ParamSpec("samples", 25, 1, 256, "int", "noisy copies to average",
                      page=(5, 100, 5), quick=10),
            ParamSpec("noise", 0.15, 0.0, 1.0, "float",
                      "noise as a fraction of the pixel range", page=(0.0, 0.5, 0.05)),
            _SEED),
    help="The pixel gradient averaged over noisy copies of the image (Smilkov et al. 2017, "
         "\"SmoothGrad\"): less speckle than the plain gradient.",
    answers="which pixels matter, with the noise of single gradients averaged out",
    weakness="one gradient per copy; the noise level changes the picture"))
register(MethodSpec(
    name="integrated_gradients", title="Integrated Gradients", family="pixel-gradient",
    inputs="pixel-gradients", compute=f"{_PIXEL}:integrated_gradients_map",
    cost=lambda info, p, layer: GRADIENT_PASSES * (p["steps"] + 1),
    params=(ParamSpec("steps", 64, 2, 512, "int", "steps from the baseline to the image",
                      page=(8, 256, 8), quick=16),
            ParamSpec("baseline", 0.0, 0.0, 255.0, "float",
                      "baseline pixel value, 0 = black")),
    help="Pixel gradients summed along a straight path from a black image to the image "
         "(Sundararajan et al. 2017, \"Axiomatic Attribution for Deep Networks\"); the pixels' "
         "attributions add up to the change of the score.",
    answers="how much each pixel adds to the score compared with a black image",
    weakness="depends on the baseline; one gradient per step"))
register(MethodSpec(
    name="occlusion", title="Occlusion", family="perturbation",
    compute=f"{_PERTURBATION}:occlusion_map",
    cost=lambda info, p, layer: 1.0 + occlusion_windows(info.input_shape[0],
                                                        info.input_shape[1], p["patch"],
                                                        p["stride"]),
    params=(ParamSpec("patch", 24, 2, 512, "int", "side of the square patch, in model pixels",
                      page=(4, 64, 2)),
            ParamSpec("stride", 12, 1, 512, "int", "pixels the patch moves each step",
                      page=(2, 64, 2)),
            ParamSpec("fill", 0.0, 0.0, 255.0, "float",
                      "pixel value of the patch, 0 = black")),
    help="A grey-box patch slides over the image and the model scores each occluded copy; a "
         "pixel's heat is the average drop of the class score over the patches covering it "
         "(Zeiler & Fergus 2014, \"Visualizing and Understanding Convolutional Networks\").",
    answers="which patches the class score cannot do without",
    weakness="one pass per patch position; the patch size sets the detail"))
register(MethodSpec(
    name="rise", title="RISE", family="perturbation",
    compute=f"{_PERTURBATION}:rise_map", cost=lambda info, p, layer: 1.0 + p["masks"],
    params=(ParamSpec("masks", 500, 1, 4096, "int", "random masks to score",
                      page=(50, 2000, 50), quick=100),
            ParamSpec("cells", 7, 2, 32, "int", "grid cells per side of each low-resolution mask"),
            ParamSpec("keep", 0.5, 0.05, 0.95, "float", "share of the cells each mask keeps"),
            _SEED),
    help="Random low-resolution masks, smoothly upsampled and shifted, hide parts of the "
         "image; a pixel's heat is the average class score of the masks that keep it, minus "
         "the average over all masks (Petsiuk et al. 2018, \"RISE\"). Seeded: the same seed "
         "gives the same map.",
    answers="which regions, when kept, keep the class score high",
    weakness="needs hundreds of passes; grainy with few masks"))
register(MethodSpec(
    name="lime", title="LIME", family="perturbation",
    compute="viz_core.methods.lime:lime_map", cost=lambda info, p, layer: 1.0 + p["samples"],
    params=(ParamSpec("n_superpixels", 35, 2, 500, "int", "superpixels the image is cut into",
                      page=(5, 150, 1)),
            ParamSpec("compactness", 10.0, 0.0, 1000.0, "float",
                      "SLIC's compactness: higher = squarer superpixels, lower = follow colour",
                      above_low=True),
            ParamSpec("samples", 500, 10, 20000, "int",
                      "perturbed images (random superpixels hidden, blurred)",
                      page=(100, 2000, 100), quick=200),
            _SEED),
    help="The image is cut into superpixels; random sets of them are hidden (blurred) and the "
         "model scores each copy; a weighted linear model from \"which superpixels were shown\" "
         "to the class probability gives each superpixel a weight; the map paints the positive "
         "ones (Ribeiro et al. 2016, \"Why Should I Trust You?\"). The LIME page shows more.",
    answers="which superpixels, when shown, raise the class probability",
    weakness="hundreds of passes; superpixels set the detail; weights vary with the seed"))


_RELEVANCE = "viz_core.methods.relevance"
_LRP_EPSILON = ParamSpec("epsilon", 0.01, 0.0, 100.0, "float",
                         "stabiliser added to each layer's output before dividing: larger = "
                         "less noise, more relevance absorbed", above_low=True)
_LRP_WEAKNESS = "needs a rule for every layer (custom layers are refused); rules change the picture"
register(MethodSpec(
    name="lrp_epsilon", title="LRP-epsilon", family="relevance",
    compute=f"{_RELEVANCE}:lrp_epsilon_map", cost=lambda info, p, layer: GRADIENT_PASSES,
    fast=True, by_default=False, params=(_LRP_EPSILON,),
    help="Layer-wise relevance propagation (Bach et al. 2015): the class logit is handed back "
         "layer by layer to the pixels, each input of a layer getting its share x*w/(z + "
         "epsilon) of the output's relevance; the pixels' relevances add up to the score "
         "(less what epsilon and biases absorb). One forward and one backward sweep.",
    answers="how much each pixel contributes to the class logit",
    weakness=_LRP_WEAKNESS))
register(MethodSpec(
    name="lrp_zplus", title="LRP-z+", family="relevance",
    compute=f"{_RELEVANCE}:lrp_zplus_map", cost=lambda info, p, layer: GRADIENT_PASSES,
    fast=True, by_default=False,
    help="Layer-wise relevance propagation with the z+ rule (alpha 1, beta 0; Montavon et al. "
         "2017, \"Deep Taylor Decomposition\"): each layer hands relevance back only along its "
         "positive contributions, so every pixel's relevance is positive evidence.",
    answers="which pixels feed the positive evidence for the class",
    weakness="ignores counter-evidence; less class-specific than epsilon"))
register(MethodSpec(
    name="lrp_alphabeta", title="LRP-alpha-beta", family="relevance",
    compute=f"{_RELEVANCE}:lrp_alphabeta_map", cost=lambda info, p, layer: GRADIENT_PASSES,
    fast=True, by_default=False,
    params=(ParamSpec("alpha", 2.0, 1.0, 10.0, "float",
                      "weight of positive contributions (alpha - beta must be 1)"),
            ParamSpec("beta", 1.0, 0.0, 9.0, "float",
                      "weight of negative contributions (alpha - beta must be 1)")),
    help="Layer-wise relevance propagation with the alpha-beta rule (Bach et al. 2015): "
         "positive and negative contributions are handed back separately, weighted alpha and "
         "-beta (alpha - beta = 1 keeps the total), so counter-evidence shows as negative "
         "relevance.",
    answers="which pixels speak for and against the class",
    weakness="alpha and beta change the picture; only alpha - beta = 1 conserves relevance"))
register(MethodSpec(
    name="lrp_composite", title="LRP epsilon-plus-flat", family="relevance",
    compute=f"{_RELEVANCE}:lrp_composite_map", cost=lambda info, p, layer: GRADIENT_PASSES,
    fast=True, by_default=False,
    params=(ParamSpec("epsilon", 0.01, 0.0, 100.0, "float",
                      "stabiliser of the epsilon rule on the dense layers", above_low=True),
            ParamSpec("bounded", 0, 0, 1, "int",
                      "1: the z^B rule on the first layer (shares bounded by the lowest and "
                      "highest pixel the preprocessing makes) instead of the flat rule")),
    help="Layer-wise relevance propagation with the usual composite (Kohlbrenner et al. 2020, "
         "\"Towards best practice in explaining neural network decisions with LRP\"): epsilon "
         "on dense layers, z+ on convolutions, the flat rule (equal shares) on the first layer, "
         "or with bounded=1 the z^B rule (Montavon et al. 2017). BatchNormalization is folded "
         "into the layer before it first.",
    answers="which pixels the class logit comes from, with the best-practice rules",
    weakness=_LRP_WEAKNESS))


_GUIDED = "viz_core.methods.guided"
_SHAP = "viz_core.methods.shap"
register(MethodSpec(
    name="input_x_gradient", title="Input x Gradient", family="pixel-gradient",
    inputs="pixel-gradients", compute=f"{_PIXEL}:input_x_gradient_map",
    cost=lambda info, p, layer: GRADIENT_PASSES, fast=True, by_default=False,
    help="The model's input times the class score's gradient with respect to it, summed over "
         "the colour channels (Shrikumar et al. 2016; Ancona et al. 2018). The input is the "
         "image after the model's preprocessing (e.g. pixels / 255, or minus the ImageNet "
         "mean), so what the preprocessing maps to zero gets no attribution.",
    answers="how much each pixel's value, times its sensitivity, adds to the score",
    weakness="depends on the preprocessing's zero; noisy like the plain gradient"))
register(MethodSpec(
    name="vargrad", title="VarGrad", family="pixel-gradient",
    inputs="pixel-gradients", compute=f"{_PIXEL}:vargrad_map",
    cost=lambda info, p, layer: GRADIENT_PASSES * p["samples"],
    params=get("smoothgrad").params,  # the same noisy copies as SmoothGrad
    help="The variance of the pixel gradients of SmoothGrad's noisy copies, summed over the "
         "colour channels (Adebayo et al. 2018, \"Local Explanation Methods for Deep Neural "
         "Networks Lack Sensitivity to Parameter Values\").",
    answers="which pixels' gradients swing most when the image is jittered",
    weakness="one gradient per copy; shows instability more than evidence"))
register(MethodSpec(
    name="squaregrad", title="SquareGrad", family="pixel-gradient",
    inputs="pixel-gradients", compute=f"{_PIXEL}:squaregrad_map",
    cost=lambda info, p, layer: GRADIENT_PASSES * p["samples"],
    params=get("smoothgrad").params,
    help="The mean of the squared pixel gradients of SmoothGrad's noisy copies, summed over "
         "the colour channels (Hooker et al. 2019, \"A Benchmark for Interpretability Methods "
         "in Deep Neural Networks\"): opposite signs do not cancel.",
    answers="which pixels the score is most sensitive to around the image",
    weakness="one gradient per copy; squaring lets a few pixels dominate"))
register(MethodSpec(
    name="guided_backprop", title="Guided Backpropagation", family="pixel-gradient",
    inputs="pixel-gradients", compute=f"{_GUIDED}:guided_backprop_map",
    cost=lambda info, p, layer: GRADIENT_PASSES, fast=True, by_default=False,
    help="The pixel gradient with every ReLU guided: a gradient passes back only where the "
         "ReLU's input was positive and the gradient itself is positive (Springenberg et al. "
         "2015, \"Striving for Simplicity\"); the largest magnitude over the colour channels. "
         "Sharp pictures, but Adebayo et al. 2018 showed they hardly change when the model's "
         "weights are random: the Sanity page shows it.",
    answers="which edges and textures the network's ReLUs let through",
    weakness="fails the randomisation check: looks like an edge detector, barely class-specific"))
register(MethodSpec(
    name="guided_gradcam", title="Guided Grad-CAM", family="pixel-gradient",
    inputs="pixel-gradients", compute=f"{_GUIDED}:guided_gradcam_map",
    cost=lambda info, p, layer: GRADIENT_PASSES + _layer_gradient_cost(info, p, None),
    help="Guided Backpropagation times Grad-CAM at the last conv layer, upsampled (Selvaraju "
         "et al. 2017, \"Grad-CAM\"): the fine detail of the one, kept where the other finds "
         "the class.",
    answers="fine detail inside the region that raises the class score",
    weakness="inherits Guided Backpropagation's insensitivity to the weights inside the region"))
register(MethodSpec(
    name="kernelshap", title="KernelSHAP", family="perturbation",
    compute=f"{_SHAP}:kernelshap_map", cost=lambda info, p, layer: 2.0 + p["samples"],
    params=(ParamSpec("n_superpixels", 16, 2, 200, "int", "superpixels the image is cut into",
                      page=(4, 64, 1)),
            ParamSpec("compactness", 10.0, 0.0, 1000.0, "float",
                      "SLIC's compactness: higher = squarer superpixels, lower = follow colour",
                      above_low=True),
            ParamSpec("samples", 500, 10, 20000, "int",
                      "coalitions scored (all of them when there are fewer)",
                      page=(100, 2000, 100), quick=200),
            _SEED),
    help="Shapley values of superpixels (Lundberg & Lee 2017, \"A Unified Approach to "
         "Interpreting Model Predictions\"): random sets of superpixels are shown, the rest "
         "blurred, and a linear fit weighted by the Shapley kernel, with the all-hidden and "
         "all-shown images fixed, gives each superpixel its share; the shares add up to "
         "score(image) - score(all blurred). Exact when every set is scored.",
    answers="each superpixel's fair share of the score change from a blurred image",
    weakness="one pass per sample; superpixels set the detail; estimates vary with the seed"))
register(MethodSpec(
    name="gradientshap", title="GradientSHAP", family="pixel-gradient",
    inputs="pixel-gradients", compute=f"{_SHAP}:gradientshap_map",
    cost=lambda info, p, layer: GRADIENT_PASSES * p["samples"],
    params=(ParamSpec("samples", 32, 1, 256, "int", "baselines (and path points) to average",
                      page=(8, 128, 8), quick=16),
            ParamSpec("blur", 0.0, 0.0, 64.0, "float",
                      "0: random-noise baselines; above 0: the image blurred with this sigma "
                      "(pixels)", page=(0.0, 32.0, 1.0)),
            _SEED),
    help="Expected gradients (Lundberg & Lee 2017; Erion et al. 2021): for random baselines "
         "(noise, or the image blurred) and a random point on the straight path from each to "
         "the image, the gradient there times (image - baseline), averaged; summed over the "
         "colour channels.",
    answers="how much each pixel adds to the score compared with random baselines",
    weakness="one gradient per sample; depends on the baselines; grainy with few samples"))
