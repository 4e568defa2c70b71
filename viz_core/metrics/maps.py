"""Which methods' maps the metrics judge, one call shape for any method's map, and the call
the compare view makes for each (:func:`compared_call`: the Class heatmaps page's settings).

Every registered method (:mod:`viz_core.methods.registry`, LIME included) is judged the same
way: Compare, the Sanity check and the pointing game list their methods from here.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from viz_core.inputs.intake import ModelImage
from viz_core.methods import registry
from viz_core.methods.heatmap import class_heatmap, page_params
from viz_core.models.catalog import LoadedModel
from viz_core.models.targets import Target

Progress = Callable[[float, str], None]
StopFn = Callable[[], bool]


def map_methods() -> tuple[str, ...]:
    """Every method :func:`explanation_map` knows: the registry's, in its order (read now)."""
    return registry.names()


def compare_methods() -> tuple[str, ...]:
    """The methods the Compare page and the ``compare`` command run unless told: the
    registry's fast ones (a pass or two each)."""
    return registry.default_names()


#: :func:`compare_methods` of the built-in registry (read the function to see methods
#: registered later).
COMPARE_METHODS = compare_methods()


def method_title(method: str) -> str:
    """What users read for a method name (``"gradcam"`` -> ``"Grad-CAM"``)."""
    return registry.title(method)


def check_methods(methods: Sequence[str],
                  allowed: Sequence[str] | None = None) -> tuple[str, ...]:
    """``methods`` checked (known, at least one), duplicates removed, order kept.

    ``allowed`` defaults to :func:`map_methods` (read now, so registered methods count).
    """
    # the check itself is TensorFlow-free (the command line runs it while parsing)
    return registry.check_names(methods, map_methods() if allowed is None else allowed)


def explanation_map(
    model: LoadedModel,
    image: ModelImage,
    target: Target,
    method: str,
    *,
    progress: Progress | None = None,
    should_stop: StopFn | None = None,
    **params,
) -> np.ndarray:
    """The map of one registered method, whatever its family.

    Parameters
    ----------
    model, image, target
        As for :func:`viz_core.methods.heatmap.class_heatmap`.
    method : str
        One of :func:`map_methods`.
    **params
        ``layer`` and the method's parameters, as for ``class_heatmap``.

    Returns
    -------
    np.ndarray
        (H, W) float32 in [0, 1] at the model's input resolution.
    """
    return class_heatmap(model, image, target, method, progress=progress,
                         should_stop=should_stop, **params).heatmap


def compared_call(model: LoadedModel, image: ModelImage, target: Target, method: str):
    """``(function, args, kwargs)`` of ``method``'s map as the compare view runs it.

    The arguments are exactly those the Class heatmaps page uses with its defaults, so a
    workbench answers both from one entry.
    """
    spec = registry.get(method)
    info = model.info
    layer = info.last_conv_layer if spec.uses_layer else None
    # only parameters that count channels (Score-CAM's) depend on it
    channels = max(2, int(info.layer(info.last_conv_layer).output_shape[-1] or 2))
    kwargs = {"method": method, "layer": layer, **page_params(method, channels)}
    return class_heatmap, (model, image, target), kwargs
