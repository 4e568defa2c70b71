"""Model catalogue: which models exist, how each is loaded, preprocessed and labelled.

Three sources:

* ``demo``: the bundled shapes model in ``assets/demo`` (works offline).
* Keras Applications (``vgg16``, ``resnet50``...), with ImageNet weights found in the Keras
  cache (or downloaded where there is a network) or seeded random weights (``none``).
* Uploaded ``.keras`` / ``.h5`` files, loaded with Keras ``safe_mode`` on.
"""
from __future__ import annotations

import gc
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from viz_core.runtime.cache import BoundedCache
from viz_core.models.downloads import DownloadProgress, fetch
from viz_core.errors import ModelError, ParameterError, UnsafeModelError, WeightsUnavailableError
from viz_core.models.graph import side_model
from viz_core.models.inspect import MAX_INPUT_SIDE, ModelInfo, inspect_model, make_names_scope_safe
from viz_core.inputs.intake import LoadedImage, ModelImage, model_view
from viz_core.paths import ASSETS
from viz_core.models.preprocess import PREPROCESSING_NAMES, preprocess

DEMO_MODEL_FILE = ASSETS / "demo" / "shapes_cnn.keras"
DEMO_CARD_FILE = ASSETS / "demo" / "shapes_cnn.json"
IMAGENET_CLASSES_FILE = ASSETS / "imagenet_classes.json"
WEIGHT_CHOICES = ("imagenet", "none")
MAX_MODEL_BYTES = 600 * 1024 * 1024
MAX_UNZIPPED_BYTES = 2 * 1024**3  # all members of a .keras archive, or all datasets of an .h5
MAX_PARAMS = 160_000_000  # 640 MB of float32 weights; VGG19, the largest built-in, has 144 M
# Weight memory an upload may declare. Keras stores weights uncompressed, so a real file holds
# at least this many bytes: the bound is the upload limit itself (VGG19's 549 MB fits). Loads
# run one at a time and a load peaks at about 3 times its weights, so N sessions each keeping
# one such model cost about (N + 3) x 600 MB at worst: 6 GB for seven classroom sessions.
MAX_UPLOAD_WEIGHT_BYTES = MAX_MODEL_BYTES
# The weights an upload declares must be in the file: the weight datasets' bytes must cover
# them, and a packed weights member may be at most this much smaller than what it declares
# (float weights barely compress; a file of zeros that unpacks to gigabytes does).
_WEIGHTS_PACK_RATIO = 10
MAX_CONFIG_BYTES = 16 * 2**20
MAX_LAYERS = 5_000  # DenseNet201 has about 700
MAX_ARCHIVE_MEMBERS = 1_000
MAX_INPUT_VALUES = MAX_INPUT_SIDE * MAX_INPUT_SIDE * 4  # per example, any input of any sub-model
RANDOM_WEIGHTS_SEED = 1234
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # how every .h5 file begins (Keras' weights files are)
# A member or dataset this large that also expands more than _BOMB_RATIO times is a bomb:
# Keras stores weights uncompressed, and below the floor a high ratio does no harm.
_BOMB_FLOOR_BYTES = 16 * 2**20
_BOMB_RATIO = 100
# Layers whose config carries code or reaches the server's disk.
_CODE_CLASSES = {"Lambda": "a Python Lambda layer", "__lambda__": "a Python Lambda layer",
                 "TFSMLayer": "a TFSMLayer (it loads a TensorFlow SavedModel from the server's disk)"}

# Building a Keras Application with random weights draws from Keras' global seed; the lock
# keeps two sessions from interleaving their draws (so "none" weights are reproducible).
_BUILD_LOCK = threading.Lock()
# Sessions are threads of one process and memory is the process's: one upload is checked
# and loaded at a time, so several users' uploads never peak together. Locks are the only
# module-level mutable state here; they hold no data, only who is loading now.
_UPLOAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class BuiltinModel:
    """A model the dashboard knows by name.

    Attributes
    ----------
    name : str
        Short name used in the UI, the URL and the command line, e.g. ``"vgg16"``.
    title : str
        What users read, e.g. ``"VGG16 (ImageNet)"``.
    input_size : (H, W)
    preprocessing : str
        One of :data:`viz_core.models.preprocess.PREPROCESSING_NAMES`.
    constructor : str
        Name of the ``keras.applications`` function; empty for the bundled models.
    weights_file : str
        File Keras stores ImageNet weights under, in ``$KERAS_HOME/models``.
    weights_url, weights_hash : str
        Where Keras downloads that file from and its MD5 or SHA-256, exactly as the Keras
        Application passes them to ``keras.utils.get_file`` (``tests/test_downloads.py``
        checks them against the installed Keras); the hash is empty where Keras has none.
    weights_mb : int
        The file's size in MB as keras.io lists it, to say what a download costs before it
        starts.
    """

    name: str
    title: str
    input_size: tuple[int, int]
    preprocessing: str
    constructor: str = ""
    weights_file: str = ""
    weights_url: str = ""
    weights_hash: str = ""
    weights_mb: int = 0

    @property
    def bundled(self) -> bool:
        """Whether the model ships with the project (no Keras Application, no weights choice)."""
        return not self.constructor


_KERAS_WEIGHTS = "https://storage.googleapis.com/tensorflow/keras-applications/"
BUILTIN_MODELS: tuple[BuiltinModel, ...] = (
    BuiltinModel("demo", "Demo: shapes CNN", (150, 150), "unit"),
    # viz_core.demo.shortcut: the Dataset page's "shortcut scenes" are explained by this model
    BuiltinModel("shortcut_demo", "Shortcut demo: CNN that cheats", (64, 64), "unit"),
    BuiltinModel("vgg16", "VGG16", (224, 224), "caffe", "VGG16",
                 "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
                 _KERAS_WEIGHTS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5",
                 "64373286793e3c8b2b4e3219cbf3544b", 528),
    BuiltinModel("vgg19", "VGG19", (224, 224), "caffe", "VGG19",
                 "vgg19_weights_tf_dim_ordering_tf_kernels.h5",
                 _KERAS_WEIGHTS + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels.h5",
                 "cbe5617147190e668d6c5d5026f83318", 549),
    BuiltinModel("resnet50", "ResNet50", (224, 224), "caffe", "ResNet50",
                 "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
                 _KERAS_WEIGHTS + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5",
                 "2cb95161c43110f7111970584f804107", 98),
    BuiltinModel("mobilenet_v2", "MobileNetV2", (224, 224), "symmetric", "MobileNetV2",
                 "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
                 _KERAS_WEIGHTS
                 + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
                 "", 14),
    BuiltinModel("efficientnet_b0", "EfficientNetB0", (224, 224), "none", "EfficientNetB0",
                 "efficientnetb0.h5",
                 "https://storage.googleapis.com/keras-applications/efficientnetb0.h5",
                 "902e53a9f72be733fc0bcb005b3ebbac", 29),
    BuiltinModel("inception_v3", "InceptionV3", (299, 299), "symmetric", "InceptionV3",
                 "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
                 _KERAS_WEIGHTS
                 + "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
                 "9a0d58056eeedaa3f26cb7ebd46da564", 92),
    BuiltinModel("densenet121", "DenseNet121", (224, 224), "torch", "DenseNet121",
                 "densenet121_weights_tf_dim_ordering_tf_kernels.h5",
                 _KERAS_WEIGHTS + "densenet/densenet121_weights_tf_dim_ordering_tf_kernels.h5",
                 "9d60b8095a5708f2dcce2bca79d332c7", 33),
    BuiltinModel("xception", "Xception", (299, 299), "symmetric", "Xception",
                 "xception_weights_tf_dim_ordering_tf_kernels.h5",
                 _KERAS_WEIGHTS + "xception/xception_weights_tf_dim_ordering_tf_kernels.h5",
                 "0a58e3b7378bc2990ea3b43d5981f1f6", 88),
    BuiltinModel("convnext_tiny", "ConvNeXtTiny", (224, 224), "none", "ConvNeXtTiny",
                 "convnext_tiny.h5", _KERAS_WEIGHTS + "convnext/convnext_tiny.h5",
                 "8ae6e78ce2933352b1ef4008e6dd2f17bc40771563877d156bc6426c7cf503ff", 110),
)
BUILTIN_NAMES = tuple(m.name for m in BUILTIN_MODELS)


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model ready for the dashboard: the Keras model plus what is needed to use it.

    Attributes
    ----------
    model : keras.Model
        Never modified by this project; techniques build side models around it.
    name : str
        ``demo``, a built-in name, or ``upload``.
    title : str
        What users read.
    identity : str
        Content identity for caches (name + weights, or the uploaded file's SHA-256).
    weights : str
        ``bundled``, ``imagenet``, ``none`` or ``uploaded``.
    preprocessing : str
        Preprocessing name applied to pixels before the model.
    labels : tuple of str
        One name per class (2 for a single sigmoid unit: class 0, class 1).
    info : ModelInfo
    renamed_layers : tuple of (str, str)
        ``(name in the file, name here)`` for layers renamed on loading because TensorFlow
        cannot trace a layer called e.g. ``conv 1`` (see
        :func:`viz_core.models.inspect.make_names_scope_safe`); empty for most models.
    """

    model: keras.Model
    name: str
    title: str
    identity: str
    weights: str
    preprocessing: str
    labels: tuple[str, ...]
    info: ModelInfo
    renamed_layers: tuple[tuple[str, str], ...] = ()
    _derived: BoundedCache = field(
        default_factory=lambda: BoundedCache(max_entries=48, max_bytes=2**50), repr=False
    )

    @property
    def cache_key(self) -> str:
        return self.identity

    def derived(self, key, build):
        """Objects derived from this model (side models, compiled steps), built once.

        ``key`` must be hashable and name what is built; ``build()`` makes it on a miss.
        """
        return self._derived.get_or_compute(key, build)

    def side_model(self, taps=(), *, logits: bool = False, output: bool = False):
        """Cached :func:`viz_core.models.graph.side_model` of this model."""
        taps = tuple(taps)
        return self.derived(
            ("side_model", taps, logits, output),
            lambda: side_model(self.model, taps, logits=logits, output=output),
        )

    def view(self, image: LoadedImage) -> ModelImage:
        """The image resized for this model."""
        return model_view(image, self.info.input_shape)

    def batch(self, images: Sequence[ModelImage] | np.ndarray) -> np.ndarray:
        """Preprocessed model input, float32 (N, H, W, C), from images or pixels in [0, 255]."""
        if isinstance(images, np.ndarray):
            pixels = images if images.ndim == 4 else images[None]
        else:
            pixels = np.stack([img.pixels for img in images])
        return preprocess(self.preprocessing, pixels)

    def label(self, class_index: int) -> str:
        return self.labels[class_index]

    def class_index(self, name_or_index: str | int) -> int:
        """Resolve a class given by index (``3``, ``"3"``) or label (``"star"``)."""
        if isinstance(name_or_index, (int, np.integer)):
            index = int(name_or_index)
        elif str(name_or_index).strip().lstrip("-").isdigit():
            index = int(str(name_or_index).strip())
        else:
            wanted = str(name_or_index).strip().lower()
            matches = [i for i, lab in enumerate(self.labels) if lab.lower() == wanted]
            if not matches:
                raise ParameterError(
                    f"No class is called {name_or_index!r}; classes include "
                    f"{', '.join(self.labels[:8])}."
                )
            index = matches[0]
        if not 0 <= index < len(self.labels):
            raise ParameterError(
                f"Class index {index} is out of range; this model has classes 0 to "
                f"{len(self.labels) - 1}."
            )
        return index


def builtin(name: str) -> BuiltinModel:
    for spec in BUILTIN_MODELS:
        if spec.name == name:
            return spec
    raise ParameterError(f"Unknown model {name!r}; built-in models: {', '.join(BUILTIN_NAMES)}.")


def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet class names in Keras Applications order, from ``assets/``."""
    with open(IMAGENET_CLASSES_FILE, encoding="utf-8") as fh:
        rows = json.load(fh)["classes"]
    return tuple(label for _, label in rows)


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def _labels_for(info: ModelInfo, given: Sequence[str] | None) -> tuple[str, ...]:
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
        labels=_labels_for(info, labels),
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
    if spec.name == "shortcut_demo":  # bundled, trained by viz_core.demo.shortcut
        from viz_core.demo.shortcut import load_shortcut_model
        return load_shortcut_model()
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
            reason = _short_reason(str(exc))
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


def _sniff_model_format(data: bytes) -> str:
    if data[:4] == b"PK\x03\x04":
        return "keras"
    if data[:8] == HDF5_SIGNATURE:
        return "h5"
    return ""


def _bomb_message(what: str, declared: int, stored: int) -> str:
    return (
        f"{what} would unpack to {declared / 2**20:,.0f} MB from {stored / 2**20:,.1f} MB stored; "
        "it looks like a decompression bomb and was refused."
    )


@dataclass(frozen=True)
class _StoredWeights:
    """The weights an uploaded file holds, counted before Keras sees it.

    Attributes
    ----------
    unpacked : int
        Bytes of all arrays in its weight datasets, as declared by their shapes and dtypes.
    packed : int
        Bytes those arrays take in the uploaded file (after HDF5 or ZIP compression).
    """

    unpacked: int = 0
    packed: int = 0


def _check_h5_contents(h5, what: str) -> _StoredWeights:
    """Refuse HDF5 content that would make Keras read far more than the file holds, or read
    other files of the server (external storage, external links, virtual datasets).

    Returns the bytes of the datasets (the weights), declared and stored.
    """
    import h5py

    # h5py's visitors stop when a callback returns a value; raising inside them is not safe.
    def check_link(name, link):
        if isinstance(link, h5py.ExternalLink):
            return (f"{what} links to another file ({link.filename!r}); models must be one "
                    "self-contained file.")
        return None

    declared_total = 0
    stored_total = 0

    def check_object(name, obj):
        nonlocal declared_total, stored_total
        if not isinstance(obj, h5py.Dataset):
            return None
        if obj.external or obj.is_virtual:
            return (f"{what} stores '{name}' outside the file (external or virtual dataset); "
                    "models must be one self-contained file.")
        declared = int(obj.size or 0) * int(obj.dtype.itemsize)
        stored = int(obj.id.get_storage_size())
        if declared > _BOMB_FLOOR_BYTES and declared > _BOMB_RATIO * max(stored, 1):
            return _bomb_message(f"{what} (dataset '{name}')", declared, stored)
        declared_total += declared
        stored_total += min(stored, declared)
        if declared_total > MAX_UNZIPPED_BYTES:
            return (f"{what} declares more than {MAX_UNZIPPED_BYTES / 2**30:.0f} GB of "
                    "weights; it was refused.")
        return None

    problem = h5.visititems_links(check_link) or h5.visititems(check_object)
    if problem:
        raise ModelError(problem)
    return _StoredWeights(unpacked=declared_total, packed=stored_total)


def _read_h5_config(path: Path) -> tuple[str, _StoredWeights]:
    """The model configuration (JSON text) of a legacy ``.h5`` model, after checking it, and
    the weights the file holds."""
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            stored = _check_h5_contents(h5, "The .h5 file")
            config = h5.attrs.get("model_config")
            weights_only = config is None and ("layer_names" in h5.attrs or len(h5) > 0)
    except ModelError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise ModelError(
            f"The .h5 file could not be read: it is damaged or incomplete (HDF5 says: "
            f"{str(exc)[:120]})."
        ) from None
    if config is None:
        if weights_only:
            raise ModelError(
                "The .h5 file holds only weights, not a whole model. Save the whole model "
                "with model.save('name.keras') (or 'name.h5')."
            )
        raise ModelError("The .h5 file holds no model (no model configuration inside).")
    if isinstance(config, bytes):
        config = config.decode("utf-8", errors="replace")
    return str(config), stored


def _read_keras_config(path: Path) -> tuple[str, _StoredWeights]:
    """The ``config.json`` text of a ``.keras`` archive, after checking the archive, and the
    weights the archive holds (none when it has no weights file)."""
    import h5py

    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ARCHIVE_MEMBERS:
                raise ModelError(
                    f"The .keras archive holds {len(entries):,} files; a Keras model has a few. "
                    "It was refused."
                )
            for entry in entries:
                parts = entry.filename.replace("\\", "/").split("/")
                if (entry.filename.startswith(("/", "\\")) or ".." in parts
                        or ":" in entry.filename or "\x00" in entry.filename):
                    raise ModelError(
                        f"The .keras archive contains a file named {entry.filename[:80]!r}, "
                        "which points outside the archive; it was refused."
                    )
            names = {e.filename for e in entries}
            if "config.json" not in names:
                raise ModelError(
                    "The .keras file is a ZIP archive but not a Keras model (no config.json "
                    "inside). Save the model with model.save('name.keras')."
                )
            total = sum(e.file_size for e in entries)
            packed = sum(e.compress_size for e in entries)
            if total > MAX_UNZIPPED_BYTES:
                raise ModelError(_bomb_message("The .keras archive", total, packed))
            for entry in entries:
                if (entry.file_size > _BOMB_FLOOR_BYTES
                        and entry.file_size > _BOMB_RATIO * max(entry.compress_size, 1)):
                    raise ModelError(_bomb_message(
                        f"The .keras archive (file '{entry.filename[:80]}')",
                        entry.file_size, entry.compress_size))
            if archive.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
                raise ModelError(
                    f"The model's config.json is larger than {MAX_CONFIG_BYTES // 2**20} MB; "
                    "it was refused."
                )
            text = archive.read("config.json").decode("utf-8")
            stored = _StoredWeights()
            if "model.weights.h5" in names:
                with archive.open("model.weights.h5") as stream, h5py.File(stream, "r") as h5:
                    in_h5 = _check_h5_contents(h5, "The model's weights file")
                packed = archive.getinfo("model.weights.h5").compress_size
                stored = _StoredWeights(in_h5.unpacked, min(in_h5.packed, packed))
            elif "model.weights.npz" in names:
                stored = _npz_weights(archive, "model.weights.npz")
    except ModelError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, UnicodeDecodeError,
            NotImplementedError, RuntimeError, OSError, ValueError, KeyError) as exc:
        raise ModelError(
            f"The .keras file is damaged (not a valid Keras archive: {str(exc)[:120]})."
        ) from None
    return text, stored


def _npz_weights(archive: zipfile.ZipFile, member: str) -> _StoredWeights:
    """The arrays of an ``.npz`` weights member (itself a ZIP archive), counted unread."""
    with archive.open(member) as stream, zipfile.ZipFile(stream) as inner:
        entries = inner.infolist()
        if len(entries) > MAX_ARCHIVE_MEMBERS:
            raise ModelError(f"The model's weights file holds {len(entries):,} arrays; it was "
                             "refused.")
        unpacked = sum(e.file_size for e in entries)
        packed = min(sum(e.compress_size for e in entries),
                     archive.getinfo(member).compress_size)
    return _StoredWeights(unpacked, packed)


def _check_config(config) -> None:
    """Refuse a model configuration that names code, too many layers or huge inputs.

    Walks the JSON without recursion (its depth is the uploader's choice).
    """
    if not isinstance(config, dict):
        raise ModelError("The model file's configuration is not a Keras model configuration.")
    stack = [config]
    layers = 0
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        name = item.get("class_name")
        module = item.get("module")
        if isinstance(name, str) and name in _CODE_CLASSES:
            raise UnsafeModelError(
                f"The model contains {_CODE_CLASSES[name]}, which could run code on the "
                "server; it was refused (Keras safe mode). Replace it with built-in layers and "
                "save the model again."
            )
        if isinstance(module, str) and module != "builtins" and not (
                module == "keras" or module.startswith("keras.")):
            raise ModelError(
                f"The model uses a custom layer or function this app does not know "
                f"({name!r} from module {module[:80]!r}). Only models built from standard "
                "Keras layers can be uploaded."
            )
        if name == "function" and not _is_keras_activation(item.get("config")):
            raise UnsafeModelError(
                f"The model's configuration calls the Python function "
                f"{str(item.get('config'))[:60]!r}, which is not a Keras activation; it was "
                "refused so that nothing in the file runs on the server."
            )
        if name == "InputLayer" and isinstance(item.get("config"), dict):
            inner = item["config"]
            shape = inner.get("batch_shape") or inner.get("batch_input_shape") or ()
            dims = [d for d in list(shape)[1:] if isinstance(d, int)]
            if math.prod(dims) > MAX_INPUT_VALUES or any(d < 0 for d in dims):
                raise ModelError(
                    f"The model declares an input of shape {tuple(list(shape)[1:])}, far larger "
                    f"than the {MAX_INPUT_SIDE}x{MAX_INPUT_SIDE} images this app supports; it "
                    "was refused before loading."
                )
        for key, value in item.items():
            if key == "layers" and isinstance(value, list):
                layers += len(value)
                if layers > MAX_LAYERS:
                    raise ModelError(
                        f"The model has more than {MAX_LAYERS:,} layers; it was refused."
                    )
            if key != "compile_config":  # not compiled here (compile=False)
                stack.append(value)


def _is_keras_activation(name) -> bool:
    if not isinstance(name, str):
        return False
    try:
        return callable(keras.activations.get(name))
    except (ValueError, TypeError):
        return False


@dataclass(frozen=True)
class _DeclaredWeights:
    """The weights a model configuration would create: ``count`` values, ``nbytes`` bytes."""

    count: int
    nbytes: int


def _itemsize(dtype) -> int:
    """Bytes per value of a Keras dtype name (``float32``, ``bfloat16``, ``int8``...)."""
    digits = "".join(c for c in str(dtype) if c.isdigit())
    return max(1, int(digits) // 8) if digits else 4


def _declared_params(config_text: str, kind: str) -> _DeclaredWeights | None:
    """Number and bytes of the weights the model would create, counted without allocating any.

    Keras builds the model from its configuration exactly as ``load_model`` would, but in a
    stateless scope whose variables are never initialised; so a file that declares billions
    of weights is refused before a byte of them exists. Returns None if this Keras version
    lacks the (private) functions used.
    """
    try:
        from keras.src.backend.common import global_state
        if kind == "keras":
            from keras.src.saving.saving_lib import _model_from_config

            def build():
                return _model_from_config(config_text, None, False, True)
        else:
            from keras.src.legacy.saving import json_utils, saving_options, saving_utils
            from keras.src.saving import serialization_lib

            def build():
                config = json_utils.decode(config_text)
                with saving_options.keras_option_scope(use_legacy_config=True), \
                        serialization_lib.SafeModeScope(True):
                    return saving_utils.model_from_config(config)
    except ImportError:
        return None
    # Variables created in the scope wait in a (thread-local) list to be initialised later;
    # put the list back as it was so that nobody ever initialises them.
    pending = list(global_state.get_global_attribute("uninitialized_variables") or [])
    try:
        with keras.StatelessScope(initialize_variables=False):
            model = build()
        sizes = [(math.prod(int(d) for d in v.shape), _itemsize(v.dtype)) for v in model.weights]
        return _DeclaredWeights(count=int(sum(n for n, _ in sizes)),
                                nbytes=int(sum(n * size for n, size in sizes)))
    finally:
        global_state.set_global_attribute("uninitialized_variables", pending)


def _format_count(count: int) -> str:
    return f"{count / 1e6:,.0f} million" if count >= 10**6 else f"{count:,}"


def _check_weights_present(declared: _DeclaredWeights, stored: _StoredWeights) -> None:
    """Refuse a model whose declared weights exceed the upload bound or are not in its file.

    Both are known before Keras builds anything, so a refused file allocates no weight.
    """
    amount = f"{_format_count(declared.count)} weights ({declared.nbytes / 2**20:,.1f} MB)"
    if declared.nbytes > MAX_UPLOAD_WEIGHT_BYTES:
        raise ModelError(
            f"The model declares {amount}; up to {MAX_UPLOAD_WEIGHT_BYTES / 2**20:,.0f} MB of weights are accepted. "
            "It was refused before loading."
        )
    if declared.nbytes > stored.unpacked or declared.nbytes > _WEIGHTS_PACK_RATIO * stored.packed:
        held = ("no weights" if stored.unpacked == 0 else
                f"{stored.unpacked / 2**20:,.1f} MB of weights ({stored.packed / 2**20:,.1f} MB "
                "stored)")
        raise ModelError(
            f"The model file could not be read: its layers declare {amount} but the file "
            f"holds {held}. It was "
            "refused before loading; save the whole model again with model.save('name.keras')."
        )


def _short_reason(text: str, limit: int = 300) -> str:
    """The first sentence-bearing line of a Keras error, without colour codes; a line ending
    in ':' (Keras' "Example error message for object <Dense...>:") is joined with the next."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    reason = lines[0]
    for line in lines[1:]:
        if not reason.endswith(":"):
            break
        reason = f"{reason} {line}"
    return reason if len(reason) <= limit else reason[: limit - 1].rstrip() + "…"


def _explain_load_error(exc: Exception) -> Exception:
    text = str(exc)
    first = _short_reason(text) or type(exc).__name__
    if isinstance(exc, MemoryError) or "OOM when allocating" in text:
        return ModelError("The model is too large for this server's memory; it was refused.")
    if "Lambda" in text or "safe_mode" in text:
        return UnsafeModelError(
            "The model contains a Python Lambda layer, which could run code on the server; it "
            "was refused (Keras safe mode). Replace the Lambda with a built-in layer and save "
            "it again."
        )
    if "Could not locate" in text or "Unknown layer" in text or "custom" in text.lower():
        return ModelError(
            f"The model uses a custom layer or function this app does not know ({first[:200]}). "
            "Only models built from standard Keras layers can be uploaded."
        )
    if "could not be loaded" in text:
        return ModelError(
            f"The model file could not be read: its weights do not match its layers ({first})."
        )
    return ModelError(f"The model file could not be read: {first}")


def _load_checked(data: bytes, kind: str):
    """Check the file (archive, config, declared weights against stored ones), then let
    Keras load it. Runs under :data:`_UPLOAD_LOCK`."""
    workdir = Path(tempfile.mkdtemp(prefix="viz_upload_"))
    try:
        path = workdir / f"uploaded.{kind}"
        path.write_bytes(data)
        text, stored = _read_keras_config(path) if kind == "keras" else _read_h5_config(path)
        try:
            config = json.loads(text)
        except (ValueError, RecursionError):
            raise ModelError("The model's configuration is not valid JSON.") from None
        if isinstance(config, dict) and kind == "keras":
            config["compile_config"] = None
        _check_config(config)
        try:
            declared = _declared_params(json.dumps(config), kind)
            if declared is not None:
                _check_weights_present(declared, stored)
            return keras.models.load_model(path, compile=False, safe_mode=True)
        except ModelError:
            raise
        except Exception as exc:  # Keras raises many types for bad files; all become a message
            error = _explain_load_error(exc)
        # Outside the handler, so the traceback (and the half-built model in it) is gone.
        gc.collect()  # give the weights of a half-loaded model back now, not at some later time
        raise error
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def load_uploaded_model(
    data: bytes,
    filename: str = "model",
    *,
    preprocessing: str = "unit",
    labels: Sequence[str] | None = None,
) -> LoadedModel:
    """Load an uploaded ``.keras`` or ``.h5`` model with Keras ``safe_mode`` on.

    The bytes are written to a private temporary folder under a fixed name (never the user's
    file name) and the folder is removed as soon as the model is loaded. Before Keras sees the
    file it is checked: archive and HDF5 sizes (bombs), file names inside the archive, links to
    other files, layers that carry code (``Lambda``, ``TFSMLayer``) or come from modules
    outside Keras, declared input shapes, and the weights the model would create (counted
    from its configuration without creating them): they must fit in
    :data:`MAX_UPLOAD_WEIGHT_BYTES` and be present in the file, so loading costs memory in
    proportion to the file, not to what its configuration claims. Uploads are checked and
    loaded one at a time (:data:`_UPLOAD_LOCK`); a refused file leaves no weights behind.

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
    if not data:
        raise ModelError("The model file is empty (0 bytes).")
    if len(data) > MAX_MODEL_BYTES:
        raise ModelError(
            f"The model file is {len(data) / 2**20:.0f} MB; up to {MAX_MODEL_BYTES // 2**20} MB "
            "is accepted."
        )
    kind = _sniff_model_format(data)
    if not kind:
        raise ModelError(
            "The file is not a Keras model: expected a .keras file (a ZIP archive) or a .h5 "
            "file (HDF5)."
        )
    with _UPLOAD_LOCK:
        model = _load_checked(data, kind)
    if not isinstance(model, keras.Model):
        raise ModelError("The file holds a single layer, not a model.")
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
