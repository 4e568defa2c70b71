"""The Compare view's maps through a workbench: one cache entry shared by the Class heatmaps
page, Compare, the presenter warm-up, the metrics and the ``compare`` command.

Each method runs as :func:`viz_core.metrics.maps.compared_call` says: with the Class heatmaps
page's settings, so a map made on one of them is found by the others.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from viz_core.inputs.intake import ModelImage
from viz_core.metrics.maps import compared_call
from viz_core.models.catalog import LoadedModel
from viz_core.models.targets import Target

Progress = Callable[[float, str], None]
StopFn = Callable[[], bool]


def compared_map(bench, model: LoadedModel, image: ModelImage, target: Target, method: str, *,
                 progress: Progress | None = None,
                 should_stop: StopFn | None = None) -> np.ndarray:
    """The map the compare view shows for ``method``, computed through ``bench`` (a
    :class:`~viz_core.runtime.workbench.Workbench`).

    Returns
    -------
    np.ndarray
        (H, W) float32 in [0, 1] at the model's input resolution.
    """
    function, args, kwargs = compared_call(model, image, target, method)
    return bench.run(function, *args, progress=progress, should_stop=should_stop,
                     **kwargs).heatmap


def compared_map_ready(bench, model: LoadedModel, image: ModelImage, target: Target,
                       method: str) -> bool:
    """Whether :func:`compared_map` would be answered from ``bench``'s cache."""
    function, args, kwargs = compared_call(model, image, target, method)
    return bench.is_cached(function, *args, **kwargs)
