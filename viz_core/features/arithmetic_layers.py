"""The arithmetic of each kind of layer, from its input, output and weights (a :class:`LayerIO`):
a convolution's patch and products, a pooling window, BatchNorm's scale and shift, an activation,
a dense unit, a softmax or sigmoid. NumPy only; :mod:`viz_core.features.arithmetic` finds the
layer and runs the model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from viz_core.errors import ParameterError
from viz_core.features.arithmetic_math import (
    activate, formula, gather, padding_before, relu_layer, softmax, window_indices)
from viz_core.features.arithmetic_results import (
    ConvArithmetic, DenseArithmetic, ElementArithmetic, NormArithmetic, OutputArithmetic,
    PoolArithmetic)
from viz_core.models.inspect import activation_name


@dataclass(frozen=True, eq=False)
class LayerIO:
    """A layer's input and output for one image (no batch axis).

    Attributes
    ----------
    layer : str
    source : str
        ``"image"`` or the path of the layer whose output is the input.
    inputs, outputs : np.ndarray
        float32, e.g. (H, W, Cin) and (h, w, Cout), or (n,) and (units,).
    weights : dict of str to np.ndarray
        The layer's variables by name (``kernel``, ``bias``, ``gamma``, ``moving_mean``...),
        float64, read once (reading a variable costs more than the arithmetic).
    pixels : np.ndarray or None
        (H, W, C) float32 in [0, 255], the image before preprocessing, when the source is it,
        in the input's channel order (BGR for ``caffe`` preprocessing).
    """

    layer: str
    source: str
    inputs: np.ndarray
    outputs: np.ndarray
    weights: dict
    pixels: np.ndarray | None = None


def _model_value(io: LayerIO, c: int, at) -> float:
    return float(io.outputs[c] if at is None else io.outputs[at[0], at[1], c])


def conv(layer, kind: str, io: LayerIO, c: int, at, preprocessing: str) -> ConvArithmetic:
    inputs = io.inputs
    height, width, cin = inputs.shape
    kh, kw = layer.kernel_size
    sh, sw = layer.strides
    dh, dw = layer.dilation_rate
    rows = window_indices(at[0], kh, sh, dh, padding_before(height, kh, sh, layer.padding, dh))
    cols = window_indices(at[1], kw, sw, dw, padding_before(width, kw, sw, layer.padding, dw))
    patch, padded = gather(inputs, rows, cols)
    groups, depthwise, pointwise = 1, None, None
    if kind == "DepthwiseConv2D":
        multiplier = layer.depth_multiplier
        channels = (c // multiplier,)
        kernel = io.weights["kernel"][:, :, channels[0], c % multiplier][:, :, None]
    elif kind == "SeparableConv2D":
        channels = tuple(range(cin))
        multiplier = layer.depth_multiplier
        dk = io.weights["depthwise_kernel"].reshape(kh, kw, cin * multiplier)
        pointwise = io.weights["pointwise_kernel"][0, 0, :, c]
        # the depthwise step's value for each of its channels j, read from input channel j // m
        source = np.repeat(patch, multiplier, axis=2)
        depthwise = (source * dk).sum(axis=(0, 1))
        # one kernel over the patch: depthwise weights times pointwise, summed per input channel
        kernel = (dk * pointwise).reshape(kh, kw, cin, multiplier).sum(axis=3)
    else:
        groups = int(getattr(layer, "groups", 1) or 1)
        per_group = cin // groups
        g = c // (layer.filters // groups)
        channels = tuple(range(g * per_group, (g + 1) * per_group))
        kernel = io.weights["kernel"][:, :, :, c]
    patch = patch[:, :, list(channels)]
    products = patch * kernel
    total = float(products.sum())
    bias = float(io.weights["bias"][c]) if "bias" in io.weights else 0.0
    act = activation_name(layer)
    pre = total + bias
    pixels = None
    if io.pixels is not None:
        pixels, _ = gather(io.pixels, rows, cols)
        pixels = pixels[:, :, list(channels)] if pixels.shape[2] == cin else pixels
    return ConvArithmetic(
        layer=io.layer, kind=kind, channel=c, position=at, source=io.source, rows=rows,
        cols=cols, padded=padded, input_channels=channels, patch=patch, kernel=kernel,
        products=products, products_sum=total, bias=bias, preactivation=pre,
        activation=activate(act, pre), model_activation=_model_value(io, c, at),
        activation_name=act, activation_formula=formula(act), strides=(sh, sw),
        padding=layer.padding, dilation=(dh, dw), groups=groups,
        input_shape=tuple(inputs.shape), output_shape=tuple(io.outputs.shape), pixels=pixels,
        preprocessing=preprocessing if pixels is not None else None,
        depthwise=depthwise, pointwise=pointwise)


def pool(layer, kind: str, io: LayerIO, c: int, at) -> PoolArithmetic:
    inputs = io.inputs
    height, width = inputs.shape[:2]
    if kind.startswith("Global"):
        rows, cols = np.arange(height), np.arange(width)
    else:
        (ph, pw), (sh, sw) = layer.pool_size, layer.strides
        rows = window_indices(at[0], ph, sh, 1, padding_before(height, ph, sh, layer.padding))
        cols = window_indices(at[1], pw, sw, 1, padding_before(width, pw, sw, layer.padding))
    window, padded = gather(inputs[:, :, c:c + 1], rows, cols, fill=np.nan)
    window = window[:, :, 0]
    operation = "max" if "Max" in kind else "mean"
    picked = None
    if operation == "max":
        picked = tuple(int(v) for v in np.unravel_index(np.nanargmax(window), window.shape))
        value = float(window[picked])
    else:
        value = float(np.nanmean(window))
    return PoolArithmetic(
        layer=io.layer, kind=kind, channel=c, position=at, source=io.source,
        operation=operation, rows=rows, cols=cols, window=window, padded=padded, picked=picked,
        count=int((~padded).sum()), activation=value, model_activation=_model_value(io, c, at))


def norm(layer, io: LayerIO, c: int, at) -> NormArithmetic:
    x = float(io.inputs[c] if at is None else io.inputs[at[0], at[1], c])
    w = io.weights
    gamma = float(w["gamma"][c]) if "gamma" in w else 1.0
    beta = float(w["beta"][c]) if "beta" in w else 0.0
    mean, variance = float(w["moving_mean"][c]), float(w["moving_variance"][c])
    eps = float(layer.epsilon)
    scale = gamma / np.sqrt(variance + eps)
    shift = beta - mean * scale
    return NormArithmetic(
        layer=io.layer, kind="BatchNormalization", channel=c, position=at, source=io.source,
        value=x, gamma=gamma, beta=beta, moving_mean=mean, moving_variance=variance,
        epsilon=eps, scale=float(scale), shift=float(shift), activation=float(scale * x + shift),
        model_activation=_model_value(io, c, at))


def dense(layer, io: LayerIO, c: int, labels: tuple[str, ...],
          flattened: tuple[int, ...] | None) -> DenseArithmetic:
    if io.inputs.ndim != 1:
        raise ParameterError(f"Cannot show layer {io.layer!r}: its input has shape "
                             f"{io.inputs.shape}, not a vector.")
    x = io.inputs.astype("float64")
    kernel = io.weights["kernel"]
    bias = io.weights.get("bias", np.zeros(kernel.shape[1]))
    act = activation_name(layer)
    products = x * kernel[:, c]
    total = float(products.sum())
    pre = total + float(bias[c])
    logits = probabilities = None
    if act == "softmax":
        logits = x @ kernel + bias
        probabilities = softmax(logits)
        value = float(probabilities[c])
    else:
        value = activate(act, pre)
        if act == "sigmoid":
            logits = x @ kernel + bias
            probabilities = np.array([activate("sigmoid", z) for z in logits])
    return DenseArithmetic(
        layer=io.layer, kind="Dense", channel=c, position=None, source=io.source, inputs=x,
        weights=kernel[:, c], products=products, products_sum=total, bias=float(bias[c]),
        preactivation=pre, activation_name=act,
        activation_formula=("softmax(z)_k = e^z_k / Σ e^z_j" if act == "softmax"
                            else formula(act)),
        activation=value, model_activation=float(io.outputs[c]), logits=logits,
        probabilities=probabilities, labels=labels if len(labels) == kernel.shape[1] else (),
        flattened=flattened)


def element(layer, kind: str, io: LayerIO, c: int, at, labels: tuple[str, ...]):
    if kind == "Softmax" or activation_name(layer) == "softmax":
        if io.inputs.ndim != 1:
            raise ParameterError(f"Cannot show layer {io.layer!r}: a softmax over a "
                                 f"{io.inputs.shape} map is not shown.")
        return probabilities(io.layer, "softmax", io.inputs, io.outputs, c, labels)
    z = float(io.inputs[c] if at is None else io.inputs[at[0], at[1], c])
    if kind == "ReLU":
        cap = None if layer.max_value is None else float(layer.max_value)
        slope, threshold = float(layer.negative_slope), float(layer.threshold)
        name = "relu" if cap is None else f"relu capped at {cap:g}"
        text = (f"f(z) = min({cap:g}, max(0, z))" if cap is not None else "relu(z) = max(0, z)")
        if slope or threshold:
            text = (f"f(z) = z if z >= {threshold:g} else {slope:g} · (z - {threshold:g})"
                    + (f", at most {cap:g}" if cap is not None else ""))
        value = relu_layer(z, cap, slope, threshold)
    else:
        name = activation_name(layer)
        text, value = formula(name), activate(name, z)
    return ElementArithmetic(
        layer=io.layer, kind=kind, channel=c, position=at, source=io.source, value=z,
        activation_name=name, activation_formula=text, activation=value,
        model_activation=_model_value(io, c, at))


def probabilities(layer: str, kind: str, logits, outputs, c: int,
                  labels: tuple[str, ...]) -> OutputArithmetic:
    z = np.asarray(logits, dtype="float64")
    if kind == "softmax":
        probabilities = softmax(z)
        exps = np.exp(z - z.max())
    else:
        probabilities = np.array([activate("sigmoid", v) for v in z])
        exps = np.exp(z)
    return OutputArithmetic(
        layer=layer, kind=kind, channel=c, position=None, logits=z,
        probabilities=probabilities, model_probabilities=np.asarray(outputs, dtype="float64"),
        labels=labels if len(labels) == len(z) else (), activation=float(probabilities[c]),
        model_activation=float(np.asarray(outputs)[c]), exponentials=exps)
