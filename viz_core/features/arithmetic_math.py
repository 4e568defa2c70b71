"""The arithmetic of one output number, in NumPy: windows, padding, activation functions.

Plain functions of arrays and layer settings, with no Keras model: :mod:`viz_core.features.
arithmetic` feeds them a layer's weights and input, the sandbox feeds them a toy grid. Sums are
taken in float64, so a printed result differs from the model's float32 one only by the model's
own rounding.
"""
from __future__ import annotations

import math

import numpy as np

from viz_core.errors import ParameterError

# SELU's constants, as Keras defines them
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _sigmoid(z: float) -> float:
    return 0.5 * (1.0 + math.tanh(0.5 * z))  # no overflow for large |z|


def _softplus(z: float) -> float:
    return float(np.logaddexp(0.0, z))


def _hard_sigmoid(z: float) -> float:
    return min(1.0, max(0.0, z / 6.0 + 0.5))


# name -> (function of one number, the formula a student reads)
ACTIVATIONS = {
    "linear": (lambda z: z, "f(z) = z (no activation)"),
    "relu": (lambda z: max(0.0, z), "relu(z) = max(0, z)"),
    "relu6": (lambda z: min(6.0, max(0.0, z)), "relu6(z) = min(6, max(0, z))"),
    "sigmoid": (_sigmoid, "sigmoid(z) = 1 / (1 + e^-z)"),
    "tanh": (math.tanh, "tanh(z)"),
    "elu": (lambda z: z if z > 0 else math.expm1(z), "elu(z) = z if z > 0 else e^z - 1"),
    "selu": (lambda z: _SELU_SCALE * (z if z > 0 else _SELU_ALPHA * math.expm1(z)),
             "selu(z) = 1.0507 · (z if z > 0 else 1.6733 · (e^z - 1))"),
    "softplus": (_softplus, "softplus(z) = log(1 + e^z)"),
    "softsign": (lambda z: z / (1.0 + abs(z)), "softsign(z) = z / (1 + |z|)"),
    "silu": (lambda z: z * _sigmoid(z), "silu(z) = z · sigmoid(z) (swish)"),
    "swish": (lambda z: z * _sigmoid(z), "swish(z) = z · sigmoid(z)"),
    "gelu": (lambda z: 0.5 * z * (1.0 + math.erf(z / math.sqrt(2.0))),
             "gelu(z) = z · Φ(z) = 0.5 · z · (1 + erf(z / √2))"),
    "hard_sigmoid": (_hard_sigmoid, "hard_sigmoid(z) = clip(z / 6 + 0.5, 0, 1)"),
    "hard_silu": (lambda z: z * _hard_sigmoid(z), "hard_silu(z) = z · clip(z / 6 + 0.5, 0, 1)"),
    "hard_swish": (lambda z: z * _hard_sigmoid(z), "hard_swish(z) = z · clip(z / 6 + 0.5, 0, 1)"),
    "leaky_relu": (lambda z: z if z > 0 else 0.2 * z, "leaky_relu(z) = z if z > 0 else 0.2 · z"),
    "mish": (lambda z: z * math.tanh(_softplus(z)), "mish(z) = z · tanh(log(1 + e^z))"),
    "exponential": (math.exp, "exp(z) = e^z"),
}


def activate(name: str, z: float) -> float:
    """``name``'s activation of one preactivation ``z``, in float64.

    Raises
    ------
    ParameterError
        An activation this module cannot compute by hand (softmax of a conv layer, a custom one).
    """
    if name not in ACTIVATIONS:
        raise ParameterError(f"The activation {name!r} cannot be computed by hand here; known: "
                             f"{', '.join(ACTIVATIONS)}.")
    return float(ACTIVATIONS[name][0](float(z)))


def formula(name: str) -> str:
    """The activation's formula in words (``relu(z) = max(0, z)``)."""
    return ACTIVATIONS[name][1] if name in ACTIVATIONS else name


def relu_layer(z: float, max_value: float | None, negative_slope: float,
               threshold: float) -> float:
    """Keras' ``ReLU`` layer: ``z`` above ``threshold``, ``negative_slope · (z - threshold)``
    below it, capped at ``max_value``."""
    out = z if z >= threshold else negative_slope * (z - threshold)
    return float(min(out, max_value) if max_value is not None else out)


def softmax(logits: np.ndarray) -> np.ndarray:
    """(n,) float64 probabilities from (n,) logits (shifted by the largest for stability)."""
    z = np.asarray(logits, dtype="float64")
    e = np.exp(z - z.max())
    return e / e.sum()


# ---- windows ---------------------------------------------------------------------------------
def output_size(size: int, kernel: int, stride: int = 1, padding: int | str = 0,
                dilation: int = 1) -> int:
    """Output length of a convolution or pooling along one axis.

    Parameters
    ----------
    size, kernel, stride, dilation : int
        Input length, kernel length, step and spacing between the kernel's taps (all >= 1).
    padding : int or {"valid", "same"}
        Zeros added on *each* side, or Keras' names: ``valid`` (none) and ``same``
        (``ceil(size / stride)`` outputs, zeros split as evenly as possible, the extra one
        after).

    Returns
    -------
    int
        ``floor((size + 2·padding - dilation·(kernel - 1) - 1) / stride) + 1`` (0 when the
        kernel does not fit); ``ceil(size / stride)`` for ``same``.
    """
    for what, value in (("size", size), ("kernel", kernel), ("stride", stride),
                        ("dilation", dilation)):
        if int(value) < 1:
            raise ParameterError(f"The {what} must be at least 1; got {value}.")
    if padding == "same":
        return -(-int(size) // int(stride))
    pad = 0 if padding == "valid" else int(padding)
    if pad < 0:
        raise ParameterError(f"The padding must be 0 or more; got {padding}.")
    span = int(dilation) * (int(kernel) - 1) + 1
    return max(0, (int(size) + 2 * pad - span) // int(stride) + 1)


def padding_before(size: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    """Zeros Keras (TensorFlow) adds *before* the first row or column: 0 for ``valid``; for
    ``same``, half of what is needed, rounded down (the odd one goes after)."""
    if padding == "valid":
        return 0
    if padding != "same":
        raise ParameterError(f"Unknown padding {padding!r}; Keras uses 'valid' or 'same'.")
    out = output_size(size, kernel, stride, "same")
    needed = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return needed // 2


def window_indices(index: int, kernel: int, stride: int, dilation: int, before: int
                   ) -> np.ndarray:
    """(kernel,) int: the input rows (or columns) output ``index`` reads; negative or past
    the end where it reads padding."""
    return index * stride - before + dilation * np.arange(kernel)


def gather(inputs: np.ndarray, rows: np.ndarray, cols: np.ndarray,
           fill: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The window of ``inputs`` (H, W, C) at ``rows`` x ``cols``.

    Returns
    -------
    patch : np.ndarray
        (len(rows), len(cols), C) float64, ``fill`` where the window is outside the input.
    padded : np.ndarray
        (len(rows), len(cols)) bool, True on padding cells.
    """
    height, width = inputs.shape[:2]
    inside_r = (rows >= 0) & (rows < height)
    inside_c = (cols >= 0) & (cols < width)
    padded = ~(inside_r[:, None] & inside_c[None, :])
    patch = np.full((len(rows), len(cols), inputs.shape[2]), fill, dtype="float64")
    patch[np.ix_(inside_r, inside_c)] = inputs[np.ix_(rows[inside_r], cols[inside_c])]
    return patch, padded


def check_position(position, shape: tuple) -> tuple[int, int]:
    """``position`` as ``(y, x)`` inside an output of ``shape`` (h, w, ...).

    Raises
    ------
    ParameterError
        Not two whole numbers, or outside the map; the message gives the map's size.
    """
    height, width = int(shape[0]), int(shape[1])
    try:
        y, x = (int(v) for v in position)
    except (TypeError, ValueError):
        raise ParameterError(f"A position is two whole numbers y, x; got {position!r}.") from None
    if not (0 <= y < height and 0 <= x < width):
        raise ParameterError(f"The position ({y}, {x}) is outside the {height}x{width} map; y "
                             f"runs from 0 to {height - 1} and x from 0 to {width - 1}.")
    return y, x


def check_channel(channel, count: int, what: str = "channel") -> int:
    """``channel`` as an index below ``count``, or a :class:`ParameterError` naming it."""
    try:
        c = int(channel)
    except (TypeError, ValueError):
        raise ParameterError(f"A {what} is a whole number; got {channel!r}.") from None
    if not 0 <= c < count:
        raise ParameterError(f"The {what} {c} does not exist; this layer has {count} "
                             f"{what}s, 0 to {count - 1}.")
    return c
