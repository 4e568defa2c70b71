"""A Keras model already in memory (built or trained in a notebook) as a :class:`LoadedModel`.

The catalogue loads models from names and files; this module wraps one the caller holds, with
the same checks an upload gets once it is loaded (:func:`viz_core.models.inspect.inspect_model`:
one image input of 1 or 3 channels, one vector of class scores, convolutional layers). The
caller's model is never changed: a layer name TensorFlow cannot trace is reported, not renamed.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import keras

from viz_core.errors import ModelError, ParameterError
from viz_core.models.catalog import LoadedModel, class_labels
from viz_core.models.class_names import read_class_names
from viz_core.models.inspect import inspect_model, iter_layers, scope_safe_name
from viz_core.models.preprocess import PREPROCESSING_NAMES



def from_keras(
    model,
    *,
    labels: Sequence[str] | str | Path | None = None,
    preprocess: str = "unit",
    name: str | None = None,
) -> LoadedModel:
    """``model`` ready for every technique, as the catalogue would return it.

    Parameters
    ----------
    model : keras.Model
        Built (it has an input), never modified. Wrap it again after changing its weights:
        results computed on the wrapper are cached with it.
    labels : sequence of str, path of a text file (one name per line), or None
        One name per class, in output order (2 for a single sigmoid unit: class 0, class 1);
        None names them ``class 0``, ``class 1``...
    preprocess : str
        How pixels in [0, 255] become the model's input, one of
        :data:`viz_core.models.preprocess.PREPROCESSING_NAMES` (``unit`` = x / 255).
    name : str or None
        Shown in titles; the Keras model's name when None.

    Returns
    -------
    LoadedModel
        ``name`` ``"keras"``, ``weights`` ``"in memory"``; its identity is a hash of the
        architecture, the weights, the preprocessing and the labels, so two wrappers of the
        same model share cached results.

    Raises
    ------
    ModelError
        Not a Keras model, not built, several inputs or outputs, input not an image, no
        convolutional layer, or a layer name TensorFlow cannot trace.
    ParameterError
        Unknown preprocessing; labels that are not one per class or cannot be read.
    """
    if not isinstance(model, keras.Model):
        raise ModelError(f"Expected a keras.Model; got {type(model).__name__} {_short(model)}.")
    if preprocess not in PREPROCESSING_NAMES:
        raise ParameterError(f"Unknown preprocessing {preprocess!r}; choose one of "
                             f"{', '.join(PREPROCESSING_NAMES)}.")
    if not getattr(model, "inputs", None):
        raise ModelError(f"The model {model.name!r} is not built: it has no input yet. Start it "
                         "with keras.Input((height, width, channels)), or call it once on a "
                         "batch of images.")
    _check_names(model)
    info = inspect_model(model)
    names = class_labels(info, class_names(labels))
    title = str(name or model.name)
    return LoadedModel(
        model=model,
        name="keras",
        title=title,
        identity=f"keras:{title}@{_weights_digest(model, preprocess, names)}",
        weights="in memory",
        preprocessing=preprocess,
        labels=names,
        info=info,
    )


def class_names(labels: Sequence[str] | str | Path | None) -> tuple[str, ...] | None:
    """Class names from a sequence or a UTF-8 text file (one per non-blank line), or None.

    Raises
    ------
    ParameterError
        A file that is missing, larger than 1 MB or not UTF-8 text; names that are not text.
    """
    if labels is None:
        return None
    if isinstance(labels, (str, Path)):
        return read_class_names(labels)
    if not isinstance(labels, Sequence) or not all(isinstance(n, str) for n in labels):
        raise ParameterError(f"Labels are a list of class names or a text file's path; got "
                             f"{type(labels).__name__} {_short(labels)}.")
    return tuple(labels)


def _check_names(model) -> None:
    """Refuse names TensorFlow cannot use as a name scope (a file's would be renamed; the
    caller's model is not ours to rename)."""
    for path, layer in [(model.name, model), *iter_layers(model)]:
        if scope_safe_name(layer.name) != layer.name:
            raise ModelError(
                f"The layer {path!r} has a name TensorFlow cannot trace (spaces, punctuation or "
                f"non-ASCII letters); name it e.g. {scope_safe_name(layer.name)!r} when you "
                "build the model.")


def _weights_digest(model, preprocess: str, labels: tuple[str, ...]) -> str:
    try:
        architecture = model.to_json()
    except (NotImplementedError, TypeError, ValueError):  # a subclassed model has no config
        architecture = f"{type(model).__qualname__}@{id(model)}"
    digest = hashlib.sha256()
    digest.update(repr((architecture, preprocess, labels)).encode())
    for weight in model.weights:
        digest.update(keras.ops.convert_to_numpy(weight).tobytes())
    return digest.hexdigest()[:16]


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
