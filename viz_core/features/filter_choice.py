"""What filter patterns can be asked for: layers with feature maps, filters, method and size,
each checked with a message that names the bad value and what is allowed.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from viz_core.errors import ModelError, ParameterError
from viz_core.features.filter_options import DEFAULT_COUNT, METHODS, SIZE_RANGE
from viz_core.models.loaded import LoadedModel
from viz_core.runtime.limits import filter_indices


def parse_filters(text: str) -> tuple[int, ...]:
    """Filter indices from ``"0:64"`` (Python slice, end excluded), ``"5"`` or ``"1,4,9"``.

    Raises
    ------
    ParameterError
        The text is not of these forms.
    """
    return tuple(filter_indices(text))


def filter_count(model: LoadedModel, layer: str) -> int:
    """Number of filters (channels) of ``layer``."""
    return int(check_layer(model, layer).output_shape[-1])


def default_layer(model: LoadedModel) -> str:
    """A conv layer a third of the way in (``block3_conv1`` for VGG16, as in the tutorial)."""
    convs = pattern_layers(model, conv_only=True)
    return convs[len(convs) // 3]


def pattern_layers(model: LoadedModel, *, conv_only: bool = True) -> tuple[str, ...]:
    """Layers whose filters can be drawn: conv layers (or every layer with feature maps)."""
    return tuple(
        info.path for info in model.info.layers
        if info.spatial and not info.nested and (info.conv or not conv_only)
        and info.output_shape[-1]
    )


def check_layer(model: LoadedModel, layer: str):
    """The layer's :class:`~viz_core.models.inspect.LayerInfo`, if its filters can be drawn."""
    try:
        info = model.info.layer(layer)
    except ModelError:
        some = ", ".join(pattern_layers(model)[:6])
        raise ParameterError(
            f"The model has no layer called {layer!r}; conv layers include {some}."
        ) from None
    if not info.spatial or info.nested or not info.output_shape[-1]:
        raise ParameterError(
            f"The layer {layer!r} has output shape {info.output_shape}, not feature maps "
            "(height, width, filters); choose a convolutional layer."
        )
    return info


def check_filters(filters, count: int, layer: str) -> tuple[int, ...]:
    """The chosen filter indices (None: the first :data:`DEFAULT_COUNT`) of a layer with
    ``count`` filters, each once."""
    if filters is None:
        return tuple(range(min(DEFAULT_COUNT, count)))
    if isinstance(filters, str):
        filters = parse_filters(filters)
    try:
        chosen = tuple(int(f) for f in filters)
    except (TypeError, ValueError):
        raise ParameterError(f"Filters must be whole numbers; got {filters!r}.") from None
    if not chosen:
        raise ParameterError(f"No filters chosen; {layer!r} has filters 0 to {count - 1}.")
    bad = [f for f in chosen if not 0 <= f < count]
    if bad:
        raise ParameterError(
            f"Filter {bad[0]} does not exist: {layer!r} has {count} filters, 0 to {count - 1}."
        )
    if len(set(chosen)) != len(chosen):
        raise ParameterError(f"The filters {range_text(chosen)} list a filter twice.")
    return chosen


def range_text(indices: Sequence[int]) -> str:
    """Filter indices as a user writes them: ``"3:7"`` for a run, else ``"1,5,9..."``."""
    idx = list(indices)
    if idx and idx == list(range(idx[0], idx[0] + len(idx))):
        return f"{idx[0]}:{idx[-1] + 1}"
    return ",".join(str(i) for i in idx[:12]) + ("..." if len(idx) > 12 else "")


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ParameterError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")


def check_size(size) -> None:
    if not isinstance(size, (int, np.integer)) or not SIZE_RANGE[0] <= size <= SIZE_RANGE[1]:
        raise ParameterError(
            f"Size must be a whole number of pixels from {SIZE_RANGE[0]} to {SIZE_RANGE[1]}; "
            f"got {size!r}."
        )
