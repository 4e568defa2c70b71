"""Which preprocessing an uploaded model most likely expects, read from its saved config.

A model file does not say how its pixels were scaled in training, but its config often shows
it: a Keras Applications base nested inside (``mobilenetv2_1.00_96``, ``vgg16``...) was trained
with a known preprocessing; a ``Rescaling`` or ``Normalization`` layer right after the input
means the model scales pixels itself (``none``). Without either, ``unit`` (x / 255, the
tutorial's way) stays the guess, and the reason says so.

Reads the config only (``config.json`` of a ``.keras`` archive, ``model_config`` of an
``.h5``): no layer is built and no weight is read, so it is safe and quick on any upload.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass

MAX_CONFIG_BYTES = 16 * 2**20  # as upload_safety.MAX_CONFIG_BYTES (that module loads Keras)

# Keras Applications model names (the ``name`` of the nested base) -> their preprocessing.
_APPLICATIONS = (
    (r"vgg1[69]|resnet(50|101|152)", "caffe"),
    (r"resnet(50|101|152)v2|inception_v3|inception_resnet_v2|xception|mobilenet(v2)?_[\d.]+_\d+"
     r"|nasnet(_?mobile|_?large)?", "symmetric"),
    (r"densenet(121|169|201)", "torch"),
    (r"efficientnet(v2)?-?b\d|efficientnetv2-[sml]|convnext_\w+|mobilenetv3\w*|regnet\w*",
     "none"),
)


@dataclass(frozen=True)
class PreprocessingGuess:
    """A suggested preprocessing name (one of :data:`viz_core.models.preprocess.PREPROCESSING_NAMES`)
    and why, in the user's words."""

    name: str
    reason: str


def model_config(data: bytes) -> dict | None:
    """The saved model config of a ``.keras`` or ``.h5`` file's bytes, or None when it cannot be
    read (the loader then says why)."""
    try:
        if data[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                if archive.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
                    return None
                return json.loads(archive.read("config.json"))
        if data[:8] == b"\x89HDF\r\n\x1a\n":
            import h5py

            with h5py.File(io.BytesIO(data), "r") as h5:
                text = h5.attrs.get("model_config")
                if text is None or len(text) > MAX_CONFIG_BYTES:
                    return None
                return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return None


def _layers(config: dict) -> list[dict]:
    inner = config.get("config", {})
    layers = inner.get("layers", []) if isinstance(inner, dict) else []
    return [layer for layer in layers if isinstance(layer, dict)]


def _first_layers(config: dict) -> list[dict]:
    """The layers right after the input: the first of a Sequential (or nested) model."""
    layers = [layer for layer in _layers(config) if layer.get("class_name") != "InputLayer"]
    if not layers:
        return []
    first = layers[0]
    if first.get("class_name") in ("Sequential", "Functional", "Model"):
        return [first] + _first_layers(first)
    return [first]


def _applications_base(config: dict) -> tuple[str, str] | None:
    """(base name, preprocessing) of a Keras Applications model in ``config`` or nested in it."""
    name = str(config.get("config", {}).get("name", "")).lower()
    for pattern, preprocessing in _APPLICATIONS:
        if re.fullmatch(pattern, name):
            return name, preprocessing
    for layer in _layers(config):
        if layer.get("class_name") in ("Sequential", "Functional", "Model"):
            found = _applications_base(layer)
            if found is not None:
                return found
    return None


def guess_preprocessing(config: dict | None) -> PreprocessingGuess:
    """The preprocessing the model in ``config`` most likely expects, and why."""
    if not isinstance(config, dict):
        return PreprocessingGuess("unit", "the model's config could not be read, so x / 255 "
                                  "(the tutorial's way) is the guess")
    for layer in _first_layers(config):
        kind = layer.get("class_name")
        if kind in ("Rescaling", "Normalization"):
            name = layer.get("config", {}).get("name", kind)
            return PreprocessingGuess("none", f"its first layer, {name!r}, is a {kind} layer: "
                                      "the model scales the pixels itself")
    base = _applications_base(config)
    if base is not None:
        name, preprocessing = base
        return PreprocessingGuess(preprocessing, f"it contains the Keras Applications model "
                                  f"{name!r}, trained with this preprocessing")
    return PreprocessingGuess("unit", "nothing in the model says how it scales pixels; x / 255 "
                              "(the tutorial's way) is the usual choice")
