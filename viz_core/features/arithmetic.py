"""The arithmetic of one output number of a layer, on the user's model and image (lesson mode).

For a convolution: the input patch the unit reads (from the image for a first layer, from the
layer before otherwise; padding cells marked), the kernel, the element-wise products, their
sum, the bias, the activation function and the result, next to the model's own value at that
position. The same for depthwise and separable convolutions, pooling (the window and its
maximum or mean), BatchNormalization (its four numbers folded into a scale and a shift),
activation layers, Dense (every input's contribution) and the final softmax or sigmoid.

The layer's input and output come from one forward pass of a side model (the whole model
rebuilt as one flat graph, :func:`viz_core.models.graph.flat_graph`, so layers inside nested
sub-models work: ``"mobilenetv2_1.00_224/block_1_depthwise"``); the numbers are then computed
in NumPy (:mod:`viz_core.features.arithmetic_math`) from the layer's weights. The results are
:mod:`viz_core.features.arithmetic_results`.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from viz_core.errors import ParameterError
from viz_core.features.arithmetic_math import (
    activate, check_channel, check_position, formula, gather, padding_before, relu_layer,
    softmax, window_indices)
from viz_core.features.arithmetic_results import (
    ConvArithmetic, DenseArithmetic, ElementArithmetic, NormArithmetic, OutputArithmetic,
    PoolArithmetic)
from viz_core.inputs.intake import LoadedImage, ModelImage
from viz_core.models.graph import flat_graph
from viz_core.models.inspect import activation_name, find_layer, iter_layers
from viz_core.models.loaded import LoadedModel

IMAGE = "image"
# Layer kinds by what is shown; checked in this order (SeparableConv2D before Conv2D...)
_CONV = ("SeparableConv2D", "DepthwiseConv2D", "Conv2D")
_POOL = ("MaxPooling2D", "AveragePooling2D", "GlobalMaxPooling2D", "GlobalAveragePooling2D")
_ELEMENT = ("ReLU", "Activation", "Softmax")
SHOWN_KINDS = _CONV + _POOL + ("BatchNormalization", "Dense") + _ELEMENT


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


def _kind(layer) -> str | None:
    for name in SHOWN_KINDS:
        if isinstance(layer, getattr(keras.layers, name)):
            return name
    return None


def why_not_shown(layer, path: str) -> str | None:
    """Why the arithmetic of ``layer`` cannot be shown, in a sentence, or None when it can."""
    name = type(layer).__name__
    if isinstance(layer, keras.Model):
        return f"{path!r} is a sub-model; choose a layer inside it ({path}/...)."
    if isinstance(layer, keras.layers.Conv2DTranspose):
        return f"{path!r} is a transposed convolution (Conv2DTranspose), which is not shown."
    kind = _kind(layer)
    if kind is None:
        return (f"{path!r} is a {name} layer; the arithmetic is shown for "
                f"{', '.join(SHOWN_KINDS)}.")
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return f"{path!r} puts channels first; only channels-last layers are shown."
    if kind == "BatchNormalization" and layer.axis not in (-1, [-1]) and \
            list(np.atleast_1d(layer.axis)) != [len(layer.input.shape) - 1]:
        return f"{path!r} normalises axis {layer.axis}, not the channels; it is not shown."
    act = activation_name(layer) if kind not in ("ReLU", "Softmax") else "linear"
    if kind in _CONV + ("Activation",) and act in ("softmax", "log_softmax"):
        return f"{path!r} ends in a {act} over its channels, which is not shown per position."
    return None


def shown_layers(model: LoadedModel) -> tuple[str, ...]:
    """Paths of the layers whose arithmetic can be shown, in model order."""
    return tuple(entry.path for entry in model.info.layers
                 if _shown(model, entry.path))


def _shown(model: LoadedModel, path: str) -> bool:
    try:
        _checked_layer(model, path)
    except ParameterError:
        return False
    return True


def _layer_table(model: LoadedModel) -> dict:
    """``{path: (layer, why it is not shown or None)}`` of every layer, made once per model."""
    return model.derived(("arithmetic.layers",), lambda: {
        p: (layer, why_not_shown(layer, p)) for p, layer in iter_layers(model.model)})


def _checked_layer(model: LoadedModel, path: str):
    """The layer at ``path``; the model's layers are looked up once (a page asks per click)."""
    table = _layer_table(model)
    if path not in table:
        find_layer(model.model, path)  # ModelError naming the path and some that exist
    layer, reason = table[path]
    if reason:
        raise ParameterError(f"Cannot show the arithmetic of layer {path!r}: {reason}")
    return layer


def _taps(model: LoadedModel, path: str):
    """(side model returning [input, output] or output alone, source path) for ``path``."""
    def build():
        flat = model.derived(("arithmetic.flat",), lambda: flat_graph(model.model))
        if path not in flat.tensors:
            raise ParameterError(f"The layer {path!r} cannot be reached in the model's graph.")
        out = flat.tensors[path]
        # Keras has no public graph walk; each KerasTensor names its producer in _keras_history
        producer, node_index, _ = out._keras_history
        inputs = keras.tree.flatten(producer._inbound_nodes[node_index].input_tensors)
        if len(inputs) != 1:
            raise ParameterError(f"Cannot show layer {path!r}: it reads {len(inputs)} tensors.")
        tensor = inputs[0]
        if tensor is flat.inputs:
            return keras.Model(flat.inputs, out), IMAGE
        source = next((p for p, t in flat.tensors.items() if t is tensor), "the layer before")
        return keras.Model(flat.inputs, [tensor, out]), source
    return model.derived(("arithmetic.taps", path), build)


def layer_io(model: LoadedModel, image: ModelImage | LoadedImage, layer: str) -> LayerIO:
    """The input and output of ``layer`` for ``image``, from one forward pass.

    Raises
    ------
    ParameterError
        A layer whose arithmetic is not shown (the reason is in the message).
    ModelError
        No layer has this path.
    """
    obj = _checked_layer(model, layer)
    view = model.view(image) if isinstance(image, LoadedImage) else image
    side, source = _taps(model, layer)
    batch = model.batch([view])
    outs = side(batch, training=False)
    weights = {w.name: np.asarray(keras.ops.convert_to_numpy(w), dtype="float64")
               for w in obj.weights}
    if source == IMAGE:
        pixels = view.pixels
        if model.preprocessing == "caffe" and pixels.shape[-1] == 3:
            pixels = pixels[:, :, ::-1]  # caffe feeds BGR: channel k of the pixels is the input's
        return LayerIO(layer, source, batch[0], np.asarray(outs)[0].astype("float32"),
                       weights, pixels)
    return LayerIO(layer, source, np.asarray(outs[0])[0].astype("float32"),
                   np.asarray(outs[1])[0].astype("float32"), weights)


def unit_arithmetic(model: LoadedModel, image: ModelImage | LoadedImage, layer: str,
                    channel: int = 0, position=None, *, io: LayerIO | None = None):
    """The arithmetic of one output number of ``layer``.

    Parameters
    ----------
    model : LoadedModel
        Not modified.
    image : ModelImage or LoadedImage
        Resized and preprocessed as the model expects (its ``preprocessing``).
    layer : str
        Layer path; nested layers as ``outer/inner``.
    channel : int
        Output channel (unit of a Dense layer, class of the output).
    position : (y, x) or None
        In the layer's output map; None for layers with a vector output (Dense, global
        pooling, softmax).
    io : LayerIO, optional
        :func:`layer_io` of this model, image and layer, when the caller already has it.

    Returns
    -------
    ConvArithmetic, PoolArithmetic, NormArithmetic, ElementArithmetic or DenseArithmetic
        Each with ``activation`` (computed from its numbers) and ``model_activation``.

    Raises
    ------
    ParameterError
        A layer that is not shown, a channel or position outside the output.
    """
    obj = _checked_layer(model, layer)
    io = layer_io(model, image, layer) if io is None else io
    out = io.outputs
    c = check_channel(channel, out.shape[-1], "unit" if out.ndim == 1 else "channel")
    at = None
    if out.ndim == 3:
        if position is None:
            raise ParameterError(f"Layer {layer!r} has a {out.shape[0]}x{out.shape[1]} map; "
                                 "give a position y, x.")
        at = check_position(position, out.shape)
    kind = _kind(obj)
    if kind in _CONV:
        return _conv(obj, kind, io, c, at, model.preprocessing)
    if kind in _POOL:
        return _pool(obj, kind, io, c, at)
    if kind == "BatchNormalization":
        return _norm(obj, io, c, at)
    if kind == "Dense":
        return _dense(obj, io, c, model)
    return _element(obj, kind, io, c, at, model)


def _model_value(io: LayerIO, c: int, at) -> float:
    return float(io.outputs[c] if at is None else io.outputs[at[0], at[1], c])


def _conv(layer, kind: str, io: LayerIO, c: int, at, preprocessing: str) -> ConvArithmetic:
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


def _pool(layer, kind: str, io: LayerIO, c: int, at) -> PoolArithmetic:
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


def _norm(layer, io: LayerIO, c: int, at) -> NormArithmetic:
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


def _labels(model: LoadedModel, units: int) -> tuple[str, ...]:
    return tuple(model.labels) if len(model.labels) == units else ()


def _dense(layer, io: LayerIO, c: int, model: LoadedModel) -> DenseArithmetic:
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
        probabilities=probabilities, labels=_labels(model, kernel.shape[1]),
        flattened=_flattened(model, io.source))


def _flattened(model: LoadedModel, source: str) -> tuple[int, ...] | None:
    """The (h, w, c) map a Flatten layer ``source`` made the vector from, else None."""
    if source == IMAGE:
        return None
    layer, _ = _layer_table(model).get(source, (None, None))
    if not isinstance(layer, keras.layers.Flatten):
        return None
    shape = tuple(layer.input.shape[1:])
    return tuple(int(d) for d in shape) if len(shape) == 3 and None not in shape else None


def _element(layer, kind: str, io: LayerIO, c: int, at, model: LoadedModel):
    if kind == "Softmax" or activation_name(layer) == "softmax":
        if io.inputs.ndim != 1:
            raise ParameterError(f"Cannot show layer {io.layer!r}: a softmax over a "
                                 f"{io.inputs.shape} map is not shown.")
        return _probabilities(io.layer, "softmax", io.inputs, io.outputs, c, model)
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


def _probabilities(layer: str, kind: str, logits, outputs, c: int,
                   model: LoadedModel) -> OutputArithmetic:
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
        labels=_labels(model, len(z)), activation=float(probabilities[c]),
        model_activation=float(np.asarray(outputs)[c]), exponentials=exps)


def output_arithmetic(model: LoadedModel, image: ModelImage | LoadedImage,
                      channel: int | None = None) -> OutputArithmetic:
    """The model's last step for ``image``: its logits, the probabilities computed from them
    (softmax, or one sigmoid per unit) and the model's own probabilities.

    Parameters
    ----------
    channel : int or None
        The output unit looked at; None: the most probable.

    Raises
    ------
    ParameterError
        The model's output is not a softmax or sigmoid (its logits cannot be read).
    """
    kind = {"softmax": "softmax", "binary": "sigmoid", "multilabel": "sigmoid"}.get(
        model.info.output_kind)
    if kind is None:
        raise ParameterError(f"The model {model.title!r} has a {model.info.output_kind} output, "
                             "not a softmax or sigmoid: there are no probabilities to show.")
    view = model.view(image) if isinstance(image, LoadedImage) else image
    logits, output = model.side_model((), logits=True, output=True)(model.batch([view]),
                                                                     training=False)
    logits, output = np.asarray(logits)[0], np.asarray(output)[0]
    c = int(np.argmax(output)) if channel is None else check_channel(channel, len(output), "unit")
    final = model.info.layers[-1].path
    return _probabilities(final, kind, logits, output, c, model)
