"""Whether an uploaded model file may be loaded: the checks before Keras reads it, then the load.

Why a module of its own: an upload is a file from anyone, read by a server that a whole class
shares. Keras ``safe_mode`` refuses Python ``Lambda`` layers, but a file can still hurt the
server in ways safe mode does not look at: a ZIP or HDF5 "bomb" that unpacks to gigabytes,
archive members named outside the archive, HDF5 links to other files of the server, layers
from modules outside Keras, a configuration declaring billions of weights or a giant input.
Every such file is refused here with a message naming what was found, before Keras allocates
anything; what passes is loaded with ``safe_mode`` on, from a private temporary folder under a
fixed name (never the user's file name) removed right after, one upload at a time.

Entry point: :func:`load_checked_upload` (bytes in, ``keras.Model`` out, or a
:class:`~viz_core.errors.ModelError` saying why not); :mod:`viz_core.models.catalog` wraps the
model for the dashboard.
"""
from __future__ import annotations

import gc
import json
import math
import re
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras

from viz_core.errors import ModelError, UnsafeModelError
from viz_core.models.inspect import MAX_INPUT_SIDE

MAX_MODEL_BYTES = 600 * 1024 * 1024
MAX_UNZIPPED_BYTES = 2 * 1024**3  # all members of a .keras archive, or all datasets of an .h5
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
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # how every .h5 file begins (Keras' weights files are)
# A member or dataset this large that also expands more than _BOMB_RATIO times is a bomb:
# Keras stores weights uncompressed, and below the floor a high ratio does no harm.
_BOMB_FLOOR_BYTES = 16 * 2**20
_BOMB_RATIO = 100
# Layers whose config carries code or reaches the server's disk.
_CODE_CLASSES = {"Lambda": "a Python Lambda layer", "__lambda__": "a Python Lambda layer",
                 "TFSMLayer": "a TFSMLayer (it loads a TensorFlow SavedModel from the server's disk)"}


# Sessions are threads of one process and memory is the process's: one upload is checked
# and loaded at a time, so several users' uploads never peak together. The lock is the only
# module-level mutable state here; it holds no data, only who is loading now.
_UPLOAD_LOCK = threading.Lock()


def load_checked_upload(data: bytes) -> keras.Model:
    """The Keras model in an uploaded ``.keras`` or ``.h5`` file, once the file passed every
    check (see the module's docstring); loaded with ``safe_mode`` on.

    Raises
    ------
    UnsafeModelError
        The file holds code (Python ``Lambda`` layers, Python functions, ``TFSMLayer``).
    ModelError
        Empty, too large, damaged, not a model, a ZIP or HDF5 bomb, links outside the file,
        custom layers, huge declared shapes or weights, or weights missing from the file.
    """
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
    return model


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


def short_reason(text: str, limit: int = 300) -> str:
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
    first = short_reason(text) or type(exc).__name__
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
