"""Named input preprocessing, written with ``keras.ops`` so gradients flow back to pixels.

Every function maps a batch of images in pixel units, float (N, H, W, C) in [0, 255], to what
the model expects. Because the maps are differentiable, saliency and filter patterns can be
computed with respect to the *pixels* the user sees, whatever the model's preprocessing.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from keras import ops

from viz_core.errors import ParameterError
from viz_core.models.preprocess_names import PREPROCESSING_HELP, PREPROCESSING_NAMES  # noqa: F401


_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype="float32")
_TORCH_MEAN = np.array([0.485, 0.456, 0.406], dtype="float32")
_TORCH_STD = np.array([0.229, 0.224, 0.225], dtype="float32")


def _none(x):
    return x


def _unit(x):
    return x / 255.0


def _symmetric(x):
    return x / 127.5 - 1.0


def _caffe(x):
    if x.shape[-1] != 3:
        return x - float(_CAFFE_MEAN_BGR.mean())
    return ops.flip(x, axis=-1) - _CAFFE_MEAN_BGR


def _torch(x):
    x = x / 255.0
    if x.shape[-1] != 3:
        return (x - float(_TORCH_MEAN.mean())) / float(_TORCH_STD.mean())
    return (x - _TORCH_MEAN) / _TORCH_STD


_FUNCTIONS: dict[str, Callable] = {
    "none": _none,
    "unit": _unit,
    "symmetric": _symmetric,
    "caffe": _caffe,
    "torch": _torch,
}


def preprocessing_function(name: str) -> Callable:
    """Return the preprocessing called ``name``.

    Parameters
    ----------
    name : one of :data:`PREPROCESSING_NAMES`.

    Returns
    -------
    callable
        Maps float (N, H, W, C) pixels in [0, 255] (numpy or tensor) to model input, same shape.
    """
    try:
        return _FUNCTIONS[name]
    except KeyError:
        raise ParameterError(
            f"Unknown preprocessing {name!r}; choose one of {', '.join(PREPROCESSING_NAMES)}."
        ) from None


def preprocess(name: str, pixels: np.ndarray) -> np.ndarray:
    """Apply preprocessing ``name`` to numpy pixels (N, H, W, C) in [0, 255]; float32 out."""
    x = np.asarray(pixels, dtype="float32")
    return np.asarray(ops.convert_to_numpy(preprocessing_function(name)(x)), dtype="float32")
