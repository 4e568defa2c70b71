"""Checks at the methods' boundary: the layer to explain, a method's parameters, an image's
size, each refused with a message that names the bad value."""
from __future__ import annotations

from viz_core.errors import ParameterError
from viz_core.inputs.intake import ModelImage
from viz_core.methods import registry as methods
from viz_core.models.catalog import LoadedModel


def resolve_layer(model: LoadedModel, layer: str | None) -> str:
    """The layer path to explain: ``layer`` checked, or the last conv layer when None.

    Raises
    ------
    ParameterError
        The layer does not exist or has no feature maps (its output is not 4-D).
    """
    info = model.info
    if layer is None or str(layer).strip() == "":
        return info.last_conv_layer
    path = str(layer).strip()
    known = {entry.path: entry for entry in info.layers}
    if path not in known:
        hint = ", ".join(info.conv_layers[-4:])
        raise ParameterError(
            f"The model has no layer called {path!r}. Its last convolutional layers are: {hint}."
        )
    if not known[path].spatial:
        raise ParameterError(
            f"The layer {path!r} has output shape {known[path].output_shape}, not feature maps "
            "(height x width x channels); class heatmaps need a convolutional-stage layer such "
            f"as {info.last_conv_layer!r}."
        )
    return path


def method_params(method: str, params: dict) -> dict:
    """``params`` checked against what ``method`` takes, defaults filled in (by the registry,
    :meth:`viz_core.methods.registry.MethodSpec.validate`).

    Raises
    ------
    ParameterError
        Unknown method, a parameter the method does not take, or a value out of range.
    """
    return methods.get(method).validate(params)


def check_image(model: LoadedModel, image: ModelImage) -> None:
    """Raise :class:`ParameterError` unless ``image`` was prepared at the model's input size."""
    expected = tuple(model.info.input_shape)
    if tuple(image.pixels.shape) != expected:
        raise ParameterError(
            f"The image was prepared at {image.pixels.shape} but the model takes {expected}; "
            "use model.view(image)."
        )
