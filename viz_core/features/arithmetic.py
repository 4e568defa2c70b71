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
in NumPy from the layer's weights (:mod:`viz_core.features.arithmetic_layers`, one function per
kind of layer, on :mod:`viz_core.features.arithmetic_math`). The results are
:mod:`viz_core.features.arithmetic_results`.
"""
from __future__ import annotations

import keras
import numpy as np

from viz_core.errors import ParameterError
from viz_core.features.arithmetic_layers import (  # noqa: F401 (LayerIO: the type, here too)
    LayerIO, conv, dense, element, norm, pool, probabilities)
from viz_core.features.arithmetic_math import check_channel, check_position
from viz_core.features.arithmetic_results import OutputArithmetic
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
        return conv(obj, kind, io, c, at, model.preprocessing)
    if kind in _POOL:
        return pool(obj, kind, io, c, at)
    if kind == "BatchNormalization":
        return norm(obj, io, c, at)
    if kind == "Dense":
        return dense(obj, io, c, tuple(model.labels), _flattened(model, io.source))
    return element(obj, kind, io, c, at, tuple(model.labels))


def _flattened(model: LoadedModel, source: str) -> tuple[int, ...] | None:
    """The (h, w, c) map a Flatten layer ``source`` made the vector from, else None."""
    if source == IMAGE:
        return None
    layer, _ = _layer_table(model).get(source, (None, None))
    if not isinstance(layer, keras.layers.Flatten):
        return None
    shape = tuple(layer.input.shape[1:])
    return tuple(int(d) for d in shape) if len(shape) == 3 and None not in shape else None


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
    return probabilities(final, kind, logits, output, c, tuple(model.labels))
