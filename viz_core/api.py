"""The public API for notebooks and scripts: load a model, explain images, look inside.

    import viz_core as vc

    model = vc.load_model("demo")                  # or a .keras/.h5 path, or a keras.Model
    maps = vc.explain(model, ["a.png", "b.png"])   # LayerCAM of each image's top class
    maps[0].map, maps[0].label                     # (H, W) float32 in [0, 1], "star"
    maps                                           # Jupyter draws a grid of overlays

Images may be file paths, PIL images, (H, W, 3) / (H, W) arrays (uint8, or float in [0, 1]),
image file bytes, or a list of those; an (N, H, W, 3) array is N images. A call given one image
returns one result; a call given a list or a stack returns a list. Every result draws itself in
Jupyter (``_repr_png_`` or ``_repr_html_``, through :mod:`viz_core.notebook`). The functions
are those the dashboard and the command line call; this module only turns what a script holds
into their arguments.
"""
from __future__ import annotations

import functools
import inspect as _inspect
import io
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np
from PIL import Image

from viz_core import notebook
from viz_core.dataset import atlas as _atlas
from viz_core.dataset import concepts as _concepts
from viz_core.dataset import tcav_run as _tcav_run
from viz_core.errors import ImageError, ModelError, ParameterError
from viz_core.features import activations as _activations
from viz_core.features import filters as _filters
from viz_core.inputs.intake import LoadedImage, image_from_array, load_image as _decode
from viz_core.methods import craft as _craft
from viz_core.methods import lime as _lime
from viz_core.methods import registry as _methods
from viz_core.methods import tcav_options as _tcav_options
from viz_core.methods.heatmap import class_heatmaps, top_classes
from viz_core.models.catalog import (
    BUILTIN_NAMES,
    LoadedModel,
    load_builtin_model,
    load_uploaded_model,
)
from viz_core.models.in_memory import class_names, from_keras
from viz_core.models.targets import Target
from viz_core.render import png_bytes

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
Progress = Callable[[float, str], None]


# --------------------------------------------------------------------------------------------
# Models and images
# --------------------------------------------------------------------------------------------
def load_model(model, labels=None, preprocess: str | None = None, *,
               weights: str | None = None, allow_download: bool = True) -> LoadedModel:
    """A model ready for every function here, from what a script holds.

    Parameters
    ----------
    model : keras.Model, str, Path or LoadedModel
        An in-memory Keras model (:func:`viz_core.models.in_memory.from_keras`, never
        modified); a built-in name (``"demo"``, ``"vgg16"``...,
        :data:`viz_core.models.catalog.BUILTIN_NAMES`); or a ``.keras`` / ``.h5`` / ``.hdf5``
        file, loaded with Keras safe mode on after the checks an upload gets. A
        ``LoadedModel`` is returned as it is.
    labels : sequence of str or path of a text file, optional
        Class names in output order (one per line in a file); not for built-in models.
    preprocess : str, optional
        How pixels in [0, 255] become the model's input (``unit`` = x / 255, the default;
        ``symmetric``, ``caffe``, ``torch``, ``none``); not for built-in models.
    weights : {"imagenet", "none"}, optional
        Built-in Keras Applications only: ImageNet weights (default; from Keras' cache or
        downloaded) or seeded random ones.
    allow_download : bool
        False: missing ImageNet weights are an error without trying the network.

    Raises
    ------
    ModelError
        Not a model, a file that is not a model, or a model these tools cannot use.
    ParameterError
        Options that do not apply to this kind of model, unknown preprocessing, bad labels.
    """
    if isinstance(model, LoadedModel):
        if labels is not None or preprocess is not None or weights is not None:
            raise ParameterError(f"The model {model.title!r} is already loaded; pass its "
                                 "keras.Model (model.model) to give other labels or "
                                 "preprocessing.")
        return model
    if isinstance(model, keras.Model):
        if weights is not None:
            raise ParameterError(f"weights={weights!r} applies to built-in models; the "
                                 "keras.Model's own weights are used.")
        return from_keras(model, labels=labels, preprocess=preprocess or "unit")
    if not isinstance(model, (str, Path)):
        raise ModelError(f"A model is a keras.Model, a built-in name or a model file's path; "
                         f"got {type(model).__name__} {_short(model)}.")
    if isinstance(model, str) and model in BUILTIN_NAMES:  # a name wins over a file of that name
        given = [f"{k}=" for k, v in (("labels", labels), ("preprocess", preprocess))
                 if v is not None]
        if given:
            raise ParameterError(f"{' and '.join(given)} apply only to model files and Keras "
                                 f"models; the built-in model {model!r} has its own.")
        return load_builtin_model(model, weights or "imagenet", allow_download=allow_download)
    path = Path(model)
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise ModelError(f"{str(model)!r} is neither a built-in model ({', '.join(BUILTIN_NAMES)})"
                         f" nor a model file ({', '.join(MODEL_SUFFIXES)}).")
    if not path.is_file():
        raise ModelError(f"The model file {str(model)!r} does not exist.")
    if weights is not None:
        raise ParameterError(f"weights={weights!r} applies to built-in models; the weights of "
                             f"{path.name!r} are in the file.")
    return load_uploaded_model(path.read_bytes(), path.name, preprocessing=preprocess or "unit",
                               labels=class_names(labels))


def load_image(image) -> LoadedImage:
    """One image as every function here takes it: (H, W, 3) uint8 RGB in ``.pixels``.

    Parameters
    ----------
    image : path, PIL image, array, image file bytes or LoadedImage
        Files and bytes are checked and decoded as an upload is
        (:func:`viz_core.inputs.intake.load_image`); PIL images the same way (transparency
        over white, 16-bit and float grey scaled). Arrays are (H, W), (H, W, 1), (H, W, 3) or
        (H, W, 4), uint8 in [0, 255] or float in [0, 1].

    Raises
    ------
    ImageError
        Not an image, a file that cannot be read, an array of another shape, type or range.
    """
    return _image(image, "image")


def _image(item, name: str) -> LoadedImage:
    if isinstance(item, LoadedImage):
        return item
    if isinstance(item, (str, Path)):
        path = Path(item)
        if not path.is_file():
            raise ImageError(f"There is no image file {str(item)!r}.")
        return _decode(path.read_bytes(), path.name)
    if isinstance(item, (bytes, bytearray)):
        return _decode(bytes(item), name)
    if isinstance(item, Image.Image):
        buffer = io.BytesIO()  # TIFF keeps every Pillow mode, so intake converts it as a file
        item.save(buffer, format="TIFF")
        return _decode(buffer.getvalue(), getattr(item, "filename", "") or name)
    if isinstance(item, np.ndarray):
        return image_from_array(_rgb(item), name)
    raise ImageError(f"An image is a file path, a PIL image or an (H, W, 3) array; got "
                     f"{type(item).__name__} {_short(item)}.")


def _rgb(array: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1|3|4) uint8 or float-in-[0, 1] pixels as (H, W, 3) uint8."""
    arr = array[..., None] if array.ndim == 2 else array
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ImageError(f"An image array is (H, W), (H, W, 3) or (H, W, 4); got shape "
                         f"{array.shape}.")
    if arr.dtype.kind == "f":
        low, high = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if not (np.isfinite(low) and np.isfinite(high) and 0.0 <= low and high <= 1.0):
            raise ImageError(f"A float image array holds values in [0, 1]; got values from "
                             f"{low:g} to {high:g} (pass uint8 for pixels in [0, 255]).")
        arr = np.round(arr * 255.0)
    elif arr.dtype != np.uint8:
        raise ImageError(f"An image array is uint8 (0-255) or float (0-1); got dtype {arr.dtype}.")
    elif arr.shape[-1] == 3:  # already what intake holds: no float round trip
        return np.ascontiguousarray(arr)
    arr = arr.astype("float32")
    if arr.shape[-1] == 4:  # transparency over white, as intake does for files
        alpha = arr[..., 3:] / 255.0
        arr = arr[..., :3] * alpha + 255.0 * (1.0 - alpha)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return np.clip(arr + 0.5, 0, 255).astype("uint8")


def _images(images) -> tuple[list[LoadedImage], bool]:
    """The images and whether a single one was given (a stack or a list is many)."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return [_image(item, f"image {i}") for i, item in enumerate(images)], False
    if isinstance(images, (list, tuple)):
        if not images:
            raise ImageError("The list of images is empty.")
        out = []
        for i, item in enumerate(images):
            if isinstance(item, (list, tuple)) or (isinstance(item, np.ndarray)
                                                   and item.ndim == 4):
                raise ImageError(f"Image {i} of the list is itself {type(item).__name__} of "
                                 "images; give one flat list.")
            out.append(_image(item, f"image {i}"))
        return out, False
    return [_image(images, "image")], True


def _single(images, what: str) -> LoadedImage:
    loaded, single = _images(images)
    if not single:
        raise ImageError(f"{what} takes one image; got {len(loaded)}.")
    return loaded[0]


def _loaded(model) -> LoadedModel:
    return model if isinstance(model, LoadedModel) else load_model(model)


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------
# Class heatmaps
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Explanation:
    """Where one image holds evidence for one class, by one method (what :func:`explain`
    returns per image). Jupyter draws it as the map over the image, at the image's size.

    Attributes
    ----------
    map : np.ndarray
        (H, W) float32 in [0, 1] at the model's input size (the positive evidence, divided by
        its maximum; all zeros when there is none).
    class_index : int
    label : str
    method : str
        A registered method (:func:`viz_core.methods.registry.names`).
    layer : str
        The layer whose activations were used, or ``"input"`` for pixel methods.
    probability : float
        The model's probability of the class on this image, in [0, 1].
    score : float
        The explained score on this image (``score_kind``: ``"logit"`` or ``"probability"``).
    score_kind : str
    params : dict
        The method's parameters, defaults filled in.
    raw : np.ndarray
        (h, w) float32, the signed map before rectifying, resizing and normalising.
    image : np.ndarray
        (H0, W0, 3) uint8 RGB, the image as given.
    name : str
        The image's name (file stem, or ``image N``).
    """

    map: np.ndarray = field(repr=False)
    class_index: int
    label: str
    method: str
    layer: str
    probability: float
    score: float
    score_kind: str
    params: dict
    raw: np.ndarray = field(repr=False)
    image: np.ndarray = field(repr=False)
    name: str

    def _repr_png_(self) -> bytes:
        return png_bytes(notebook.picture(self)[0])


class Explanations(list):
    """A list of :class:`Explanation`, one per image; Jupyter draws a grid of overlays at the
    model's input size."""

    def _repr_png_(self) -> bytes | None:
        return png_bytes(notebook.grid(self)) if self else None


def explain(model, images, method: str = "layercam", target=None, layer: str | None = None,
            *, score: str = "logit", progress: Progress | None = None, **params):
    """Class heatmaps of images: where each holds evidence for its class.

    Parameters
    ----------
    model : LoadedModel, or anything :func:`load_model` takes
        Load it once with :func:`load_model` to keep its cached steps between calls.
    images : an image or a list of images (see :func:`load_image`); an (N, H, W, C) array
        is N images.
    method : str
        A registered method (``layercam``, ``gradcam``, ``gradcam++``, ``scorecam``,
        ``saliency``, ``occlusion``, ``lime``...; :func:`viz_core.methods.registry.names`).
        Layer and pixel-gradient methods run the images in batches; the others one at a time.
    target : None, class name, class index, or a list of one per image
        None explains each image's most probable class.
    layer : str or None
        For the layer methods, a layer with feature maps (``"vgg16/block5_conv3"`` inside a
        nested model); None means the last convolutional layer.
    score : {"logit", "probability"}
        What is explained: the class logit (the Grad-CAM paper's choice) or its probability.
    progress : callable(fraction, message), optional
    **params
        The method's parameters, checked by the method registry (e.g. ``samples=`` for
        SmoothGrad, ``patch=`` for Occlusion).

    Returns
    -------
    Explanation, or Explanations (a list of them, one per image) when ``images`` is a list
    or an (N, H, W, C) array.

    Raises
    ------
    ParameterError
        Unknown method, parameter, layer or class; targets and images of different lengths.
    ImageError
        Something given as an image is not one.
    """
    loaded_model = _loaded(model)
    _methods.get(method).validate(params)  # before any image is read
    loaded, single = _images(images)
    views = [loaded_model.view(image) for image in loaded]
    if target is None and score == "logit":
        targets = None  # each image's top class, from the same forward pass
    else:
        targets = [Target(k, score) for k in _classes(loaded_model, views, target)]
    heatmaps = class_heatmaps(loaded_model, views, targets, method, layer=layer, params=params,
                              progress=progress)
    results = Explanations(
        Explanation(map=h.heatmap, class_index=h.class_index, label=h.label, method=h.method,
                    layer=h.layer, probability=h.probability, score=h.score,
                    score_kind=h.score_kind, params=dict(h.params), raw=h.raw,
                    image=image.pixels, name=image.name)
        for h, image in zip(heatmaps, loaded))
    return results[0] if single else results


def _classes(model: LoadedModel, views, target) -> list[int]:
    """One class index per image: each image's top class when ``target`` is None."""
    if target is None:
        return [top_classes(model, view, 1)[0][0] for view in views]
    if isinstance(target, (list, tuple, np.ndarray)) and np.ndim(target) == 1:
        if len(target) != len(views):
            raise ParameterError(f"Give one target per image: {len(target)} targets for "
                                 f"{len(views)} images.")
        return [_class(model, t) for t in target]
    return [_class(model, target)] * len(views)


def _class(model: LoadedModel, target) -> int:
    if isinstance(target, (bool, np.bool_)) or not isinstance(target, (str, int, np.integer)):
        raise ParameterError(f"A target is a class name or index; got {type(target).__name__} "
                             f"{_short(target)}.")
    return model.class_index(target)


# --------------------------------------------------------------------------------------------
# Inside the network, and LIME
# --------------------------------------------------------------------------------------------
def _drawable(cls, result):
    """``result`` (a frozen dataclass) as its subclass ``cls``, which Jupyter draws."""
    return cls(**{f.name: getattr(result, f.name) for f in fields(result) if f.init})


class FeatureMaps(_activations.FeatureMaps):
    """:class:`viz_core.features.activations.FeatureMaps` that Jupyter draws: one grid of
    channels per layer."""

    def _repr_html_(self) -> str:
        return notebook.html(self, captions=self.paths)


class FilterPatterns(_filters.FilterPatterns):
    """:class:`viz_core.features.filters.FilterPatterns` that Jupyter draws as a grid."""

    def _repr_png_(self) -> bytes:
        return png_bytes(notebook.picture(self)[0])


class LimeExplanation(_lime.LimeExplanation):
    """:class:`viz_core.methods.lime.LimeExplanation` that Jupyter draws: the strongest
    superpixels of each explained class, outlined."""

    def _repr_html_(self) -> str:
        return notebook.html(self, captions=self.labels)


def feature_maps(model, image, layer: str | Sequence[str] | None = None) -> FeatureMaps:
    """The activations of ``layer`` (a path, a list of paths, or None: every layer with
    feature maps) for one image, from one forward pass; each (h, w, c) float32 in
    ``.layers[i].values``.

    Raises
    ------
    ParameterError
        Unknown layer, or a layer without feature maps.
    """
    loaded_model = _loaded(model)
    view = loaded_model.view(_single(image, "feature_maps"))
    return _drawable(FeatureMaps, _activations.feature_maps(loaded_model, view, layer))


def filter_patterns(model, layer: str | None = None, filters: Sequence[int] | str | None = None,
                    *, method: str = "fast", steps: int | None = None,
                    size: int = _filters.DEFAULT_SIZE, seed: int = 0,
                    progress: Progress | None = None) -> FilterPatterns:
    """The picture each filter of ``layer`` responds to most, by gradient ascent.

    ``layer`` None is the default layer of the Filter patterns page; ``filters`` are indices
    or ``"0:16"`` text (None: the first 64); ``method`` is ``fast``, ``classic``, ``fourier``
    or ``maco``; see :func:`viz_core.features.filters.filter_patterns` for the rest. The
    pictures are ``.patterns``, (N, size, size, 3) uint8.
    """
    loaded_model = _loaded(model)
    layer = _filters.default_layer(loaded_model) if layer is None else layer
    result = _filters.filter_patterns(loaded_model, layer, filters, method=method, steps=steps,
                                      size=size, seed=seed, progress=progress)
    return _drawable(FilterPatterns, result)


_LIME_PARAMS = tuple(name for name, p in _inspect.signature(_lime.lime_explanation).parameters
                     .items() if p.kind is p.KEYWORD_ONLY and name not in ("progress",
                                                                           "should_stop"))


def lime(model, image, target=None, *, progress: Progress | None = None,
         **params) -> LimeExplanation:
    """LIME's superpixel weights for one image.

    ``target`` is a class (name or index), a list of classes, or None: the two most probable
    classes (as the LIME page). ``params`` are those of
    :func:`viz_core.methods.lime.lime_explanation`: ``samples``, ``n_superpixels``,
    ``compactness``, ``algorithm``, ``hide``, ``seed``, ``batch_size``.

    Raises
    ------
    ParameterError
        A parameter LIME does not take, or a value out of range; an unknown class.
    """
    unknown = [name for name in params if name not in _LIME_PARAMS]
    if unknown:
        raise ParameterError(f"LIME does not take a parameter {unknown[0]!r}; it takes "
                             f"{', '.join(_LIME_PARAMS)}.")
    loaded_model = _loaded(model)
    view = loaded_model.view(_single(image, "lime"))
    if target is None:
        classes = None
    elif isinstance(target, (list, tuple)):
        classes = [_class(loaded_model, t) for t in target]
    else:
        classes = [_class(loaded_model, target)]
    result = _lime.lime_explanation(loaded_model, view, classes, progress=progress, **params)
    return _drawable(LimeExplanation, result)


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Evaluation:
    """The metrics of one map (what :func:`evaluate` returns per image); Jupyter draws a table.

    Attributes
    ----------
    values : dict
        ``{metric name: float}`` in the metric registry's order (NaN where a metric has no
        answer); ``evaluation["sparseness"]`` reads one.
    extras : dict
        What some metrics report beside the number (random-logit: ``{"class": k}``).
    class_index : int
    label : str
    method : str or None
        The method that made the map, when the map was an :class:`Explanation`.
    name : str
        The image's name.
    """

    values: dict
    extras: dict
    class_index: int
    label: str
    method: str | None
    name: str

    def __getitem__(self, metric: str) -> float:
        if metric not in self.values:
            raise ParameterError(f"The metric {metric!r} was not computed; computed: "
                                 f"{', '.join(self.values)}.")
        return self.values[metric]

    def _repr_html_(self) -> str:
        return notebook.metrics_table([self])


class Evaluations(list):
    """A list of :class:`Evaluation`, one per image; Jupyter draws one table."""

    def _repr_html_(self) -> str:
        return notebook.metrics_table(self)


def evaluate(model, images, maps, metrics: Sequence[str] | None = None, *, target=None,
             seed: int = 0, progress: Progress | None = None, **settings):
    """Metrics of explanation maps, by their names in the metric registry.

    Parameters
    ----------
    model : LoadedModel, or anything :func:`load_model` takes
    images : an image or a list of images (see :func:`load_image`)
    maps : Explanation(s) from :func:`explain`, or (H, W) arrays at the model's input size
        (higher = more important), one per image; an (N, H, W) array is N maps.
    metrics : sequence of str or None
        Registry names (``deletion_auc``, ``insertion_auc``, ``road_morf``, ``sparseness``...;
        :func:`viz_core.metrics.registry.names`); None: every registered metric. Metrics that
        run the method again (``random_logit``, ``max_sensitivity``) need Explanations.
    target : None, class name or index, or one per image
        The class each map explains; an Explanation's own class when None, else the image's
        most probable class.
    seed : int
        For the metrics that draw random numbers.
    **settings
        Parameters of the chosen metrics, each given to every metric that takes it
        (``steps=``, ``baseline=`` for the deletion and insertion curves).

    Returns
    -------
    Evaluation, or Evaluations (a list, one per image) when ``images`` is a list or a stack.

    Raises
    ------
    ParameterError
        Unknown metric or setting, maps and images of different counts or sizes, a metric that
        needs the method given plain arrays.
    """
    from viz_core.metrics import registry as _metrics
    # call_cache: one cache for this call, so metrics sharing a computation (both deletion curves,
    # ROAD's two orders) run it once, as in map_metrics
    from viz_core.metrics.evaluation import MetricInput, call_cache, metric_params

    loaded_model = _loaded(model)
    specs = [_metrics.get(m) for m in _metrics.check_names(metrics)]
    unused = [k for k in settings if not any(k in {p.name for p in s.params} for s in specs)]
    if unused:
        raise ParameterError(f"No chosen metric takes a parameter {unused[0]!r}; chosen: "
                             f"{', '.join(s.name for s in specs)}.")
    loaded, single = _images(images)
    given = _maps(maps, len(loaded))
    views = [loaded_model.view(image) for image in loaded]
    height, width = loaded_model.info.input_shape[:2]
    for i, item in enumerate(given):
        shape = np.shape(getattr(item, "map", item))
        if shape != (height, width):
            raise ParameterError(f"Map {i} has shape {shape}; the model sees {height}x{width} "
                                 f"images, so maps are ({height}, {width}).")
    if target is not None:
        classes = _classes(loaded_model, views, target)
    else:
        classes = [item.class_index if isinstance(item, Explanation)
                   else top_classes(loaded_model, view, 1)[0][0]
                   for item, view in zip(given, views)]
    results, run = Evaluations(), call_cache()
    for i, (item, view, k) in enumerate(zip(given, views, classes)):
        made_by = item if isinstance(item, Explanation) else None
        for spec in specs:
            if spec.applies_to == "method" and made_by is None:
                raise ParameterError(f"The metric {spec.name!r} runs the method again, so it "
                                     "needs the results of explain(), not plain arrays.")
        inp = MetricInput(model=loaded_model, image=view, target=Target(k, _score_kind(made_by)),
                          method=made_by.method if made_by else "",
                          heatmap=np.asarray(getattr(item, "map", item), dtype="float32"),
                          explain=_remake(loaded_model, made_by), seed=int(seed), run=run)
        values, extras = {}, {}
        for j, spec in enumerate(specs):
            if progress is not None:
                progress((i * len(specs) + j) / (len(given) * len(specs)), spec.title)
            out = spec.function()(inp, **metric_params(spec, settings))
            value, extra = out if isinstance(out, tuple) else (out, None)
            values[spec.name] = float(value)
            if extra:
                extras[spec.name] = dict(extra)
        results.append(Evaluation(values=values, extras=extras, class_index=int(k),
                                  label=loaded_model.label(int(k)),
                                  method=made_by.method if made_by else None,
                                  name=loaded[i].name))
    if progress is not None:
        progress(1.0, "done")
    return results[0] if single else results


def _maps(maps, count: int) -> list:
    """One map (an Explanation or an (H, W) array) per image."""
    if isinstance(maps, np.ndarray) and maps.ndim == 3:
        items = list(maps)
    elif isinstance(maps, (list, tuple)):
        items = list(maps)
    else:
        items = [maps]
    for i, item in enumerate(items):
        if not isinstance(item, (Explanation, np.ndarray)):
            raise ParameterError(f"A map is an Explanation or an (H, W) array; map {i} is "
                                 f"{type(item).__name__} {_short(item)}.")
    if len(items) != count:
        raise ParameterError(f"Give one map per image: {len(items)} maps for {count} "
                             f"image{'s' if count != 1 else ''}.")
    return items


def _score_kind(made_by: Explanation | None) -> str:
    return made_by.score_kind if made_by is not None else "logit"


def _remake(model: LoadedModel, made_by: Explanation | None):
    """The method of ``made_by`` run again with its settings on another image or class."""
    def remake(view, target):
        if made_by is None:
            raise ParameterError("This metric runs the method again; pass explain() results.")
        layer = made_by.layer if _methods.get(made_by.method).uses_layer else None
        (heat,) = class_heatmaps(model, [view], [target], made_by.method, layer=layer,
                                 params=made_by.params)
        return heat.heatmap

    return remake


# --------------------------------------------------------------------------------------------
# The neuron atlas
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Atlas(_atlas.Atlas):
    """:class:`viz_core.dataset.atlas.Atlas` that Jupyter draws: one card per unit, its top
    exemplars cropped to the receptive field in a row, with its selectivity.

    ``images_of(entries)`` gives ``{entry: (H, W, 3) uint8}``, the dataset's images as the
    model sees them (read when drawn, so the result holds no pictures).
    """

    images_of: Callable | None = field(default=None, repr=False)

    def _repr_html_(self) -> str:
        shown = self.channels[:notebook.ATLAS_CARDS]
        wanted = [e["entry"] for c in shown for e in self.exemplars(int(c), "top")]
        return notebook.atlas_html(self, self.images_of(wanted) if self.images_of else {})


def _dataset(model: LoadedModel, data, labels):
    """A Dataset from what a script holds: a folder, a ZIP, ``sample:NAME``, a Dataset, or
    images (a list, or an (N, H, W, C) array)."""
    from viz_core.dataset.in_memory import images_dataset
    from viz_core.dataset.readers import Dataset, open_dataset

    if isinstance(data, (str, Path, Dataset)) and labels is not None:
        raise ParameterError("labels= goes with a list of images; a folder or a ZIP has its "
                             "own (class folders or a labels CSV).")
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (str, Path)):
        return open_dataset(data, model.labels)
    loaded, _ = _images(data)
    return images_dataset(loaded, model.labels, labels=labels)


def atlas(model, data, layer: str | None = None, *, k: int = _atlas.DEFAULT_K,
          channels: Sequence[int] | str | None = None, score: str = "max",
          labels: Sequence[str | None] | None = None,
          progress: Progress | None = None) -> Atlas:
    """The neuron atlas: what each unit (channel) of ``layer`` responds to in ``data``.

    Parameters
    ----------
    model : LoadedModel, or anything :func:`load_model` takes
    data : str, Path, list of images or (N, H, W, C) array
        A dataset folder (class folders, or images with a labels CSV), a ``.zip`` of one,
        ``"sample:shapes"``, or images (see :func:`load_image`).
    layer : str or None
        A layer with feature maps; None is the last convolutional layer.
    k : int
        Top and bottom images kept per unit, 1 to 64.
    channels : sequence of int, ``"0:64"`` text, or None (every channel)
    score : {"max", "mean"}
        Rank images by the channel's spatial maximum or its mean.
    labels : sequence of str or None, optional
        One class name per image of a list; without labels, images are grouped by predicted
        class for selectivity.
    progress : callable(fraction, message), optional

    Returns
    -------
    Atlas
        Per unit: ``exemplars(channel)`` (image, activation, position, box), ``histogram``,
        ``class_means``, ``selective_for`` and ``selectivity``.

    Raises
    ------
    ParameterError
        Bad layer, k, score or channels; nothing usable in ``data``.
    ImageError
        Something given as an image is not one.
    """
    from functools import partial

    loaded_model = _loaded(model)
    dataset = _dataset(loaded_model, data, labels)
    result = _atlas.neuron_atlas(loaded_model, dataset, layer, k=k, score=score,
                                 channels=channels, progress=progress)
    return Atlas(**{f.name: getattr(result, f.name) for f in fields(result) if f.init},
                 images_of=partial(_atlas.exemplar_pixels, loaded_model, dataset))


# --------------------------------------------------------------------------------------------
# Lesson mode: how one number is computed
# --------------------------------------------------------------------------------------------
class _DrawnArithmetic:
    """Draws a lesson result in Jupyter: its grids, and the arithmetic in one line."""

    def _repr_html_(self) -> str:
        return notebook.html(self, captions=[self.equation_text()])


@functools.lru_cache(maxsize=None)  # one drawable class per result class, made once
def _arithmetic_kinds() -> dict:
    from viz_core.features import arithmetic_results as _results

    kinds = (_results.ConvArithmetic, _results.PoolArithmetic, _results.NormArithmetic,
             _results.ElementArithmetic, _results.DenseArithmetic, _results.OutputArithmetic)
    return {cls: type(cls.__name__, (cls, _DrawnArithmetic), {"__doc__": cls.__doc__,
                                                             "__module__": __name__})
            for cls in kinds}


def unit(model, image, layer: str | None = None, channel: int = 0, at=None):
    """How one output number of ``layer`` is computed: what the lesson page shows.

    Parameters
    ----------
    model : LoadedModel, or anything :func:`load_model` takes
    image : one image (see :func:`load_image`)
    layer : str or None
        A Conv2D, DepthwiseConv2D, SeparableConv2D, pooling, BatchNormalization, ReLU,
        Activation, Dense or Softmax layer (``"outer/inner"`` inside a sub-model); None is the
        first convolution.
    channel : int
        Output channel, or unit of a Dense layer.
    at : (y, x) or None
        Position in the layer's output map; None for a vector output (Dense, softmax).

    Returns
    -------
    A result of :mod:`viz_core.features.arithmetic_results` (``ConvArithmetic`` for a
    convolution: ``.patch``, ``.kernel``, ``.products``, ``.products_sum``, ``.bias``,
    ``.activation`` and the model's own ``.model_activation``); ``.contract()`` is the
    command line's JSON. Jupyter draws its grids.

    Raises
    ------
    ParameterError
        A layer that is not shown (the message says why), a channel or position outside it.
    """
    from viz_core.features.arithmetic import unit_arithmetic

    loaded_model = _loaded(model)
    view = loaded_model.view(_single(image, "unit"))
    result = unit_arithmetic(loaded_model, view, layer or loaded_model.info.conv_layers[0],
                             channel, at)
    return _drawable(_arithmetic_kinds()[type(result)], result)


# --------------------------------------------------------------------------------------------
# Concepts: CRAFT and TCAV
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Concepts(_concepts.ClassConcepts):
    """:class:`viz_core.dataset.concepts.ClassConcepts` that Jupyter draws: one row per concept,
    most important first: its importance, its best crops and its mean map.

    ``.craft`` holds the numbers (``importance``, ``maps(i)``, ``bank``...); ``.names`` the
    images used, in the order of ``craft.maps``; ``.to_index()`` the command line's JSON.
    """

    @property
    def importance(self) -> np.ndarray:
        """(K,) Sobol total indices normalised to sum to 1, most important first."""
        return self.craft.importance

    def __len__(self) -> int:
        return len(self.craft)

    def _repr_html_(self) -> str:
        return notebook.concepts_html(self)


@dataclass(frozen=True, eq=False)
class Tcav(_tcav_run.TcavRun):
    """:class:`viz_core.dataset.tcav_run.TcavRun` that Jupyter draws as a summary. The result's
    numbers are read here too (``score``, ``p_value``, ``significant``, ``random_scores``,
    ``concept_scores``); ``.to_dict()`` is the command line's JSON.
    """

    score = property(lambda self: self.result.score)
    p_value = property(lambda self: self.result.p_value)
    significant = property(lambda self: self.result.significant)
    random_scores = property(lambda self: self.result.random_scores)
    concept_scores = property(lambda self: self.result.concept_scores)

    def _repr_html_(self) -> str:
        return notebook.tcav_html(self.result)


def _image_set(model: LoadedModel, data, name: str):
    """A Dataset of concept or random images: a folder, a ZIP, ``sample:NAME``, a Dataset or
    images (named ``name``); labels, if any, are not used."""
    if isinstance(data, (str, Path)) or hasattr(data, "entries"):
        return _dataset(model, data, None)
    from viz_core.dataset.in_memory import images_dataset

    loaded, _ = _images(data)
    return images_dataset(loaded, model.labels, name=name)


def concepts(model, data, class_, layer: str | None = None, *,
             concepts: int = _craft.DEFAULT_CONCEPTS, designs: int = _craft.DEFAULT_DESIGNS,
             top: int = _craft.DEFAULT_TOP_CROPS, crop: int | None = None, seed: int = 0,
             limit: int = _concepts.DEFAULT_LIMIT, labels: Sequence[str | None] | None = None,
             progress: Progress | None = None):
    """CRAFT: the concepts a model finds in a class's images, how much the class's score
    depends on each, and where each sits (:mod:`viz_core.methods.craft`).

    Parameters
    ----------
    model : LoadedModel, or anything :func:`load_model` takes
    data : str, Path, list of images or (N, H, W, C) array
        A dataset folder (class folders, or images with a labels CSV), a ``.zip`` of one,
        ``"sample:shortcut"``, or images (see :func:`load_image`). The images labelled with
        the class are used, or all of them when there are no labels.
    class_ : str or int
        The class explained, by name or index.
    layer : str or None
        A layer after a ReLU; None is the last convolutional layer.
    concepts : int
        Number of concepts, 2 to 32.
    designs : int
        Sobol points per matrix; each image costs ``designs * (concepts + 2)`` passes through
        the layers after ``layer``.
    top : int
        Crops kept per concept.
    crop : int or None
        Crop side in pixels; None: the paper's 64 / 224 of the input.
    seed : int
        Seeds the factorisation and the Sobol points: the same call gives the same numbers.
    limit : int
        At most this many of the class's images, spread over them (1 to 1000).
    labels : sequence of str or None, optional
        One class name per image of a list.
    progress : callable(fraction, message), optional

    Returns
    -------
    Concepts
        ``.importance`` (K,) summing to 1, ``.craft`` (``maps(i)``: (K, H, W) per image,
        ``top_crop_pixels``, ``bank``, ``relative_error``...), ``.names`` the images used.
        Jupyter draws one row per concept.

    Raises
    ------
    ParameterError
        Unknown class or layer, bad counts, no image of the class, a layer with negative
        activations.
    ImageError
        Something given as an image is not one.
    """
    loaded_model = _loaded(model)
    dataset = _dataset(loaded_model, data, labels)
    run = _concepts.class_concepts(loaded_model, dataset, class_, layer, concepts=concepts,
                         designs=designs, top=top, crop=crop, seed=seed, limit=limit,
                         progress=progress)
    return Concepts(**{f.name: getattr(run, f.name) for f in fields(run) if f.init})


def tcav(model, data, concept, random, class_, layer: str | None = None, *,
         random_runs: int = _tcav_options.DEFAULT_RUNS,
         images: int = _tcav_options.DEFAULT_CLASS_IMAGES,
         concept_images: int = _tcav_options.DEFAULT_CONCEPT_IMAGES,
         random_images: int = _tcav_options.DEFAULT_RANDOM_IMAGES, seed: int = 0, progress: Progress | None = None):
    """TCAV: does the class's score rise along a concept's direction at a layer?
    (:mod:`viz_core.methods.tcav`)

    Parameters
    ----------
    model : LoadedModel, or anything :func:`load_model` takes
    data : str, Path, list of images or (N, H, W, C) array
        The class's images: a dataset (its images labelled ``class_``, or all of them when it
        has no labels) or images.
    concept : str, Path, list of images or array
        Images that show the concept: a folder, a ZIP, or images.
    random : str, Path, list of images, array or None
        Random images to compare with; None draws them from ``data``.
    class_ : str or int
    layer : str or None
        None is the last convolutional layer.
    random_runs : int
        Runs against different random sets, 2 to 50.
    images, concept_images, random_images : int
        At most this many class, concept and random images are read.
    seed : int
    progress : callable(fraction, message), optional

    Returns
    -------
    Tcav
        ``.score`` in [0, 1], ``.p_value``, ``.significant`` (p < 0.05), ``.random_scores``
        (one per run), ``.result`` (a :class:`viz_core.methods.tcav.TcavResult` with the
        derivatives and CAV accuracies). Jupyter draws a summary.

    Raises
    ------
    ParameterError
        Unknown class or layer, a count out of range, too few readable images.
    ImageError
        Something given as an image is not one.
    """
    loaded_model = _loaded(model)
    dataset = _dataset(loaded_model, data, None)
    ideas = _image_set(loaded_model, concept, "concept")
    pool = None if random is None else _image_set(loaded_model, random, "random")
    run = _tcav_run.tcav_run(loaded_model, dataset, class_, ideas, pool, layer, runs=random_runs,
                   class_images=images, concept_images=concept_images,
                   random_images=random_images, seed=seed, progress=progress)
    return Tcav(**{f.name: getattr(run, f.name) for f in fields(run) if f.init})
