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
from viz_core.runtime.plan import Step

Progress = Callable[[float, str], None]
StopFn = Callable[[], bool]


def compared_step(model: LoadedModel, image: ModelImage, target: Target, method: str,
                  title: str = "") -> Step:
    """The plan step of ``method``'s map as the compare view runs it (its result's
    ``.heatmap`` is the map): the one call behind :func:`compared_map`, the Compare page's
    plan and the warm-up."""
    function, args, kwargs = compared_call(model, image, target, method)
    return Step(function, args, kwargs, title=title)


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
    step = compared_step(model, image, target, method)
    return bench.run(step.function, *step.args, progress=progress, should_stop=should_stop,
                     **step.kwargs).heatmap


def compared_map_ready(bench, model: LoadedModel, image: ModelImage, target: Target,
                       method: str) -> bool:
    """Whether :func:`compared_map` would be answered from ``bench``'s cache."""
    return compared_step(model, image, target, method).ready(bench)
