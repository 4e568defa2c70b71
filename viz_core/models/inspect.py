"""Model inspection: input spec, output kind, layers (nested sub-models too), conv layers.

Layers inside nested sub-models are named by path, e.g. ``vgg16/block5_conv3`` for the usual
transfer-learning model ``Sequential([VGG16(include_top=False), Flatten(), Dense(...)])``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import keras

from viz_core.errors import ModelError

OUTPUT_KINDS = ("softmax", "binary", "multilabel", "linear")
DEFAULT_FLEXIBLE_SIZE = 224  # used when a model accepts any height/width
MIN_INPUT_SIDE = 8
MAX_INPUT_SIDE = 1024
MAX_CLASSES = 50_000  # ImageNet-21k has 21,843; more would flood every class picker
# One layer's output for one image: 2**27 float32 values is 512 MB (VGG16's largest is 3.2 M
# values); beyond it a single prediction could exhaust the server's memory.
MAX_LAYER_VALUES = 2**27

_CONV_TYPES = (
    keras.layers.Conv2D,
    keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.Conv2DTranspose,
)


@dataclass(frozen=True)
class LayerInfo:
    """One layer, possibly inside a nested sub-model.

    Attributes
    ----------
    path : str
        ``name`` for top-level layers, ``outer/inner`` inside nested sub-models.
    type : str
        Keras class name, e.g. ``"Conv2D"``.
    output_shape : tuple
        Without the batch axis, e.g. ``(14, 14, 512)``; ``None`` for unknown sizes.
    conv : bool
        A 2-D convolution (Conv2D, SeparableConv2D, DepthwiseConv2D, Conv2DTranspose).
    spatial : bool
        Output is 4-D (batch, height, width, channels): it has feature maps.
    params : int
        Number of weights.
    nested : bool
        The layer is itself a model whose layers are listed after it.
    """

    path: str
    type: str
    output_shape: tuple
    conv: bool
    spatial: bool
    params: int
    nested: bool = False


@dataclass(frozen=True)
class ModelInfo:
    """What the dashboard needs to know about a model.

    Attributes
    ----------
    input_shape : (H, W, C)
        Height and width the model is fed at; C is 1 or 3.
    output_kind : str
        ``softmax``, ``binary`` (one sigmoid unit), ``multilabel`` (several sigmoid units)
        or ``linear``.
    num_classes : int
        2 for ``binary``; otherwise the number of output units.
    layers : tuple of LayerInfo
        In topological order, nested layers right after their sub-model.
    last_conv_layer : str
        Path of the last convolutional layer.
    params : int
        Total number of weights.
    """

    input_shape: tuple[int, int, int]
    output_kind: str
    num_classes: int
    layers: tuple[LayerInfo, ...]
    last_conv_layer: str
    params: int

    @property
    def conv_layers(self) -> tuple[str, ...]:
        return tuple(layer.path for layer in self.layers if layer.conv)

    @property
    def spatial_layers(self) -> tuple[str, ...]:
        """Paths of layers with 4-D output (feature maps), nested ones included."""
        return tuple(layer.path for layer in self.layers if layer.spatial and not layer.nested)

    def layer(self, path: str) -> LayerInfo:
        for layer in self.layers:
            if layer.path == path:
                return layer
        raise ModelError(f"The model has no layer called {path!r}.")


def is_conv(layer) -> bool:
    return isinstance(layer, _CONV_TYPES)


def _output_shape(layer) -> tuple:
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError, RuntimeError):
        return ()
    if isinstance(shape, list):  # multi-output layer: first output
        shape = shape[0]
    return tuple(None if d is None else int(d) for d in shape[1:])


def iter_layers(model, prefix: str = ""):
    """Yield ``(path, layer)`` for every layer, descending into nested models, in order."""
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        yield path, layer
        if isinstance(layer, keras.Model):
            yield from iter_layers(layer, prefix=f"{path}/")


# TensorFlow's rule for a name scope at the root of a graph (tf.function traces open one per
# layer, named after it); Keras accepts more (spaces, unicode, ':'), TensorFlow then fails.
_SCOPE_SAFE = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\\>-]*")


def scope_safe_name(name: str) -> str:
    """``name`` made usable as a TensorFlow name scope: spaces and ASCII punctuation become
    ``_``, other characters their code point (``猫`` -> ``u732b``); names that already work
    are returned unchanged.
    """
    if _SCOPE_SAFE.fullmatch(name):
        return name
    out = "".join(c if re.fullmatch(r"[A-Za-z0-9_.-]", c)
                  else "_" if c.isspace() or ord(c) < 128 else f"u{ord(c):04x}" for c in name)
    return out if _SCOPE_SAFE.fullmatch(out) else f"layer_{out}"


def make_names_scope_safe(model) -> tuple[tuple[str, str], ...]:
    """Rename, in place, the model and every layer (nested models too) whose name TensorFlow
    cannot use as a name scope; returns ``(old path, new path)`` pairs.

    Only for a model just loaded from a file, before anyone else holds it: every technique
    traces the model in ``tf.function``, where Keras opens a name scope per layer name, so a
    layer called ``conv 1`` would fail there. New names stay unique among their siblings.
    """
    renamed = []
    if not _SCOPE_SAFE.fullmatch(model.name):
        model.name = scope_safe_name(model.name)
    _rename_layers(model, "", "", renamed)
    return tuple(renamed)


def _rename_layers(model, old_prefix: str, new_prefix: str, renamed: list) -> None:
    used = {layer.name for layer in model.layers}
    for layer in model.layers:
        old = layer.name
        if not _SCOPE_SAFE.fullmatch(old):
            base = new = scope_safe_name(old)
            count = 1
            while new in used:
                count += 1
                new = f"{base}_{count}"
            used.add(new)
            layer.name = new
            renamed.append((f"{old_prefix}{old}", f"{new_prefix}{new}"))
        if isinstance(layer, keras.Model):
            _rename_layers(layer, f"{old_prefix}{old}/", f"{new_prefix}{layer.name}/", renamed)


def find_layer(model, path: str):
    """Return the layer at ``path`` (``outer/inner`` for nested models).

    Raises
    ------
    ModelError
        No layer has that path; the message lists a few that exist.
    """
    current = model
    for part in path.split("/"):
        try:
            current = current.get_layer(part)
        except (ValueError, AttributeError):
            known = [p for p, _ in iter_layers(model)]
            hint = ", ".join(known[-6:])
            raise ModelError(
                f"The model has no layer called {path!r}. Some of its layers: {hint}."
            ) from None
    return current


def _final_layer(model):
    layer = model.layers[-1]
    while isinstance(layer, keras.Model) and layer.layers:
        layer = layer.layers[-1]
    return layer


def activation_name(layer) -> str:
    """Name of the layer's output activation (``linear`` when it has none)."""
    if isinstance(layer, keras.layers.Softmax):  # a layer of its own, with no .activation
        return "softmax"
    act = getattr(layer, "activation", None)
    if act is None:
        return "linear"
    return getattr(act, "__name__", str(act)).lower()


def output_kind_of(model) -> str:
    """Classify the model output as ``softmax``, ``binary``, ``multilabel`` or ``linear``."""
    units = model.outputs[0].shape[-1]
    act = activation_name(_final_layer(model))
    if act == "softmax":
        return "softmax"
    if act == "sigmoid":
        return "binary" if units == 1 else "multilabel"
    return "linear"


def check_input_shape(shape: tuple) -> tuple[int, int, int]:
    """The (height, width, channels) an image model with input ``shape`` is fed at.

    Parameters
    ----------
    shape : tuple
        The input shape without the batch axis; ``None`` for a flexible size.

    Returns
    -------
    (int, int, int)
        Flexible heights and widths become :data:`DEFAULT_FLEXIBLE_SIZE`.

    Raises
    ------
    ModelError
        Not (height, width, channels), not 1 or 3 channels, or sides outside
        :data:`MIN_INPUT_SIDE` to :data:`MAX_INPUT_SIDE`.
    """
    shape = tuple(shape)
    if len(shape) != 3:
        raise ModelError(
            f"The model's input has shape {shape}; an image input (height, width, "
            "channels) is needed."
        )
    height, width, channels = shape
    if channels not in (1, 3):
        raise ModelError(
            f"The model's input has {channels} channels; images need 1 (grey) or 3 (colour)."
        )
    height = int(height or DEFAULT_FLEXIBLE_SIZE)
    width = int(width or DEFAULT_FLEXIBLE_SIZE)
    if not (MIN_INPUT_SIDE <= height <= MAX_INPUT_SIDE
            and MIN_INPUT_SIDE <= width <= MAX_INPUT_SIDE):
        raise ModelError(
            f"The model expects {height}x{width} images; sizes from {MIN_INPUT_SIDE} to "
            f"{MAX_INPUT_SIDE} pixels are supported."
        )
    return height, width, int(channels)


def inspect_model(model) -> ModelInfo:
    """Describe ``model``, or explain why the dashboard cannot use it.

    Raises
    ------
    ModelError
        Several inputs or outputs, input that is not an image (H, W, 1 or 3), output that is
        not a vector of class scores (or more than :data:`MAX_CLASSES`), a layer whose output
        for one image exceeds :data:`MAX_LAYER_VALUES`, or no convolutional layer.
    """
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1:
        raise ModelError(
            f"The model has {len(inputs)} inputs; only models with one image input are supported."
        )
    height, width, channels = check_input_shape(tuple(inputs[0].shape)[1:])
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1 or len(outputs[0].shape) != 2:
        shapes = [tuple(o.shape[1:]) for o in outputs]
        raise ModelError(
            f"The model's outputs have shapes {shapes}; one vector of class scores is needed."
        )
    units = outputs[0].shape[-1]
    if units is None or not 1 <= int(units) <= MAX_CLASSES:
        raise ModelError(
            f"The model's output has {units} units; between 1 and {MAX_CLASSES:,} classes are "
            "supported."
        )
    layers = []
    for path, layer in iter_layers(model):
        shape = _output_shape(layer)
        layers.append(
            LayerInfo(
                path=path,
                type=type(layer).__name__,
                output_shape=shape,
                conv=is_conv(layer),
                spatial=len(shape) == 3,
                params=int(layer.count_params()) if layer.built else 0,
                nested=isinstance(layer, keras.Model),
            )
        )
    for layer in layers:
        known = [d for d in layer.output_shape if d is not None]
        values = math.prod(known) if known else 0
        if values > MAX_LAYER_VALUES:
            shape = "×".join("?" if d is None else str(d) for d in layer.output_shape)
            raise ModelError(
                f"The layer {layer.path!r} outputs {shape} values per image "
                f"({values * 4 / 2**30:.1f} GB); layers up to {MAX_LAYER_VALUES * 4 // 2**20} MB "
                "per image are supported, so the model was refused."
            )
    conv = [layer.path for layer in layers if layer.conv and layer.spatial]
    if not conv:
        raise ModelError(
            "The model has no convolutional layers, so there are no feature maps, filters or "
            "class heatmaps to show. Choose a convolutional network (CNN)."
        )
    kind = output_kind_of(model)
    units = int(units)
    return ModelInfo(
        input_shape=(height, width, int(channels)),
        output_kind=kind,
        num_classes=2 if kind == "binary" else units,
        layers=tuple(layers),
        last_conv_layer=conv[-1],
        params=int(model.count_params()),
    )
