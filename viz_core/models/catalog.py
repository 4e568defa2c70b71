"""Model catalogue: how each model is loaded, preprocessed and labelled, as a :class:`LoadedModel`
(:mod:`viz_core.models.loaded`, re-exported here).

Three sources:

* the bundled models: ``demo``, the shapes model in ``assets/demo`` (works offline), and those
  trained and loaded by a module of their own, named in the built-in table as
  ``"module:function"`` (``shortcut_demo``: :mod:`viz_core.demo.shortcut`), so the catalogue
  imports no demo module;
* Keras Applications (``vgg16``, ``resnet50``...), with ImageNet weights found in the Keras
  cache (or downloaded where there is a network) or seeded random weights (``none``);
* uploaded ``.keras`` / ``.h5`` files, checked by :mod:`viz_core.models.upload_safety` and
  loaded with Keras ``safe_mode`` on.

Which built-in models exist is the table in :mod:`viz_core.models.builtin_models` (plain data,
re-exported here).
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import threading
from pathlib import Path
from typing import Sequence

import keras

from viz_core.models.builtin_models import (  # noqa: F401 (the catalogue's names, here too)
    BUILTIN_MODELS, BUILTIN_NAMES, WEIGHT_CHOICES, BuiltinModel, builtin)
from viz_core.models.downloads import DownloadProgress, fetch
from viz_core.errors import ParameterError, WeightsUnavailableError
from viz_core.models.inspect import ModelInfo, inspect_model, make_names_scope_safe
from viz_core.paths import ASSETS
from viz_core.models.loaded import LoadedModel
from viz_core.models.preprocess_names import PREPROCESSING_NAMES
from viz_core.models.upload_safety import (  # noqa: F401 (the upload limit, here too)
    HDF5_SIGNATURE, MAX_MODEL_BYTES, load_checked_upload, short_reason)

DEMO_MODEL_FILE = ASSETS / "demo" / "shapes_cnn.keras"
DEMO_CARD_FILE = ASSETS / "demo" / "shapes_cnn.json"
IMAGENET_CLASSES_FILE = ASSETS / "imagenet_classes.json"
RANDOM_WEIGHTS_SEED = 1234
# Building a Keras Application with random weights draws from Keras' global seed; the lock
# keeps two sessions from interleaving their draws (so "none" weights are reproducible).
_BUILD_LOCK = threading.Lock()


def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet class names in Keras Applications order, from ``assets/``."""
    with open(IMAGENET_CLASSES_FILE, encoding="utf-8") as fh:
        rows = json.load(fh)["classes"]
    return tuple(label for _, label in rows)


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def class_labels(info: ModelInfo, given: Sequence[str] | None) -> tuple[str, ...]:
    """The class names for a model: ``given`` (one per class, blanks dropped, the count
    checked), else ``class 0``, ``class 1``...

    Raises
    ------
    ParameterError
        When ``given`` names a different number of classes than the model has.
    """
    if given:
        names = tuple(str(n).strip() for n in given if str(n).strip())
        if len(names) != info.num_classes:
            raise ParameterError(
                f"You gave {len(names)} class names but the model has {info.num_classes} "
                "classes; give one name per line, in output order."
            )
        return names
    return tuple(f"class {i}" for i in range(info.num_classes))


def _finish(model, *, name, title, identity, weights, preprocessing, labels) -> LoadedModel:
    renamed = make_names_scope_safe(model)  # the model was just loaded: nobody else holds it
    info = inspect_model(model)
    return LoadedModel(
        model=model,
        name=name,
        title=title,
        identity=identity,
        weights=weights,
        preprocessing=preprocessing,
        labels=class_labels(info, labels),
        info=info,
        renamed_layers=renamed,
    )


def load_demo_model() -> LoadedModel:
    """The bundled shapes model from ``assets/demo``."""
    if not DEMO_MODEL_FILE.exists():
        raise WeightsUnavailableError(
            f"The demo model file is missing: {DEMO_MODEL_FILE}. Re-create it with "
            "`python -m viz_core.demo.train`."
        )
    card = json.loads(DEMO_CARD_FILE.read_text(encoding="utf-8"))
    data = DEMO_MODEL_FILE.read_bytes()
    model = keras.models.load_model(DEMO_MODEL_FILE, compile=False, safe_mode=True)
    return _finish(
        model,
        name="demo",
        title=builtin("demo").title,
        identity=f"demo@{hashlib.sha256(data).hexdigest()[:16]}",
        weights="bundled",
        preprocessing=card.get("preprocessing", "unit"),
        labels=card["classes"],
    )


def load_builtin_model(
    name: str,
    weights: str = "imagenet",
    *,
    allow_download: bool = True,
    seed: int = RANDOM_WEIGHTS_SEED,
    progress: DownloadProgress | None = None,
) -> LoadedModel:
    """Load a built-in model by name.

    Parameters
    ----------
    name : str
        A name from :data:`BUILTIN_NAMES`: a bundled model (``demo``, ``shortcut_demo``) or a
        Keras Application.
    weights : {"imagenet", "none"}
        ImageNet weights from the Keras cache (or downloaded), or seeded random weights.
        Ignored for the bundled models, whose weights are in their files.
    allow_download : bool
        If False, weights missing from the Keras cache are an error without trying the network.
    seed : int
        Seed for random weights.
    progress : callable, optional
        ``progress(done_bytes, total_bytes, seconds)`` while ImageNet weights download (see
        :func:`viz_core.models.downloads.fetch`); not called when they are already cached.

    Raises
    ------
    WeightsUnavailableError
        ImageNet weights are not in the cache and cannot be downloaded; the message names the
        file and the folder to put it in (a :class:`viz_core.models.downloads.DownloadError` says why
        the download failed).
    """
    spec = builtin(name)
    if spec.loader:  # a bundled model its own module trains and loads
        module, _, function = spec.loader.partition(":")
        return getattr(importlib.import_module(module), function)()
    if spec.name == "demo":
        return load_demo_model()
    if weights not in WEIGHT_CHOICES:
        raise ParameterError(f"Unknown weights {weights!r}; choose 'imagenet' or 'none'.")
    constructor = getattr(keras.applications, spec.constructor)
    height, width = spec.input_size
    kwargs = dict(include_top=True, input_shape=(height, width, 3), classes=1000)
    if weights == "none":
        with _BUILD_LOCK:
            keras.utils.set_random_seed(seed)
            model = constructor(weights=None, **kwargs)
        identity = f"{name}@none:{seed}"
    else:
        path = keras_cache_dir() / spec.weights_file
        downloaded = not path.exists()
        if downloaded:
            if not allow_download:
                raise WeightsUnavailableError(_missing_weights_message(spec, path))
            # Our download, not Keras' get_file: progress, plain errors, no partial file
            # (viz_core.models.downloads says why). Keras then reads the file from its cache.
            fetch(spec.weights_url, path, file_hash=spec.weights_hash, starts_with=HDF5_SIGNATURE,
                  what=f"{spec.title}'s ImageNet weights", progress=progress)
        try:
            model = constructor(weights=str(path), **kwargs)
        except Exception as exc:  # h5py and Keras raise many types for a damaged file
            reason = short_reason(str(exc))
            if downloaded:  # useless to keep, and a student on a class server cannot delete it
                path.unlink(missing_ok=True)
                raise WeightsUnavailableError(
                    f"The weights just downloaded for {spec.title} could not be read "
                    f"({reason}); the file was removed. Try again, or choose weights 'none'."
                ) from None
            raise WeightsUnavailableError(
                f"The weights file {path} could not be read ({reason}). "
                "Delete it and try again, or choose weights 'none'."
            ) from None
        identity = f"{name}@imagenet"
    return _finish(
        model,
        name=name,
        title=f"{spec.title} ({'ImageNet' if weights == 'imagenet' else 'random weights'})",
        identity=identity,
        weights=weights,
        preprocessing=spec.preprocessing,
        labels=imagenet_labels(),
    )


def _missing_weights_message(spec: BuiltinModel, path: Path) -> str:
    return (
        f"ImageNet weights for {spec.title} are not on this machine and could not be "
        f"downloaded. Put the file {spec.weights_file} in {path.parent}/ (Keras' cache), or "
        "choose weights 'none' to explore the untrained network."
    )


def load_uploaded_model(
    data: bytes,
    filename: str = "model",
    *,
    preprocessing: str = "unit",
    labels: Sequence[str] | None = None,
) -> LoadedModel:
    """Load an uploaded ``.keras`` or ``.h5`` model with Keras ``safe_mode`` on.

    The file is checked before Keras sees it and loaded from a private temporary folder
    (:func:`viz_core.models.upload_safety.load_checked_upload` says what is checked and why):
    the declared weights must fit in
    :data:`~viz_core.models.upload_safety.MAX_UPLOAD_WEIGHT_BYTES` and be present in the file,
    so loading costs memory in proportion to the file, not to what its configuration claims.
    Uploads are checked and loaded one at a time; a refused file leaves no weights behind.

    Raises
    ------
    UnsafeModelError
        The file holds code (Python ``Lambda`` layers).
    ModelError
        Empty, damaged, not a model, a ZIP or HDF5 bomb, custom layers, huge declared shapes
        or weights, or a model the dashboard cannot use (see
        :func:`viz_core.models.inspect.inspect_model`).
    """
    if preprocessing not in PREPROCESSING_NAMES:
        raise ParameterError(
            f"Unknown preprocessing {preprocessing!r}; choose one of "
            f"{', '.join(PREPROCESSING_NAMES)}."
        )
    model = load_checked_upload(data)
    digest = hashlib.sha256(data).hexdigest()
    stem = "".join(c for c in str(filename).rsplit("/", 1)[-1] if c.isalnum() or c in "._- ")
    return _finish(
        model,
        name="upload",
        title=f"Uploaded: {stem[:60] or 'model'}",
        identity=f"upload@{digest}:{preprocessing}:{hashlib.sha256(repr(labels).encode()).hexdigest()[:8]}",
        weights="uploaded",
        preprocessing=preprocessing,
        labels=labels,
    )
