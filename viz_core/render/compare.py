"""Pictures of the Compare and Sanity check pages: maps coloured, or blended over the image.

Numbers in (maps in [0, 1], uint8 images), uint8 RGB out; the maps come from
:mod:`viz_core.metrics` and :mod:`viz_core.runtime.compared`, which draw nothing.
"""
from __future__ import annotations

import numpy as np

from viz_core.errors import ParameterError
from viz_core.maps import resize_map
from viz_core.render.colormaps import apply_colormap
from viz_core.render.choices import SHOW
from viz_core.render.images import overlay_heatmap


def compare_picture(pixels: np.ndarray, heatmap: np.ndarray, *, show: str = "overlay",
                    opacity: float | None = None, colormap: str = "viridis",
                    blend: str = "heat") -> np.ndarray:
    """One map as the compare view draws it, at the image's own resolution.

    Parameters
    ----------
    pixels : (H0, W0, 3) uint8
        The original image.
    heatmap : (H, W) float in [0, 1]
    show : {"overlay", "heatmap"}
        Blended over the image (:func:`overlay_heatmap`) or the map alone, coloured.
    opacity : float in [0, 1] or None
    colormap : str
    blend : {"heat", "uniform"}
        How the colour covers the image (:func:`overlay_heatmap`); ``opacity`` as there.

    Returns
    -------
    np.ndarray
        (H0, W0, 3) uint8 RGB.
    """
    if show not in SHOW:
        raise ParameterError(f"Unknown display {show!r}; choose 'overlay' or 'heatmap'.")
    if show == "overlay":
        return overlay_heatmap(pixels, heatmap, opacity=opacity, colormap=colormap,
                              blend=blend)
    h0, w0 = pixels.shape[:2]
    return apply_colormap(resize_map(heatmap, h0, w0), colormap)


def sanity_picture(report, method: str, step: int, colormap: str = "viridis") -> np.ndarray:
    """One cell of the Sanity check's grid: ``method``'s map at ``step``, coloured.

    Parameters
    ----------
    report : SanityReport
        :func:`viz_core.metrics.sanity.cascading_randomisation`'s result.

    Returns
    -------
    np.ndarray
        (H, W, 3) uint8 RGB at the model's input resolution.
    """
    if not 0 <= int(step) <= report.steps:
        raise ParameterError(f"Step {step} is out of range; the check has steps 0 to "
                             f"{report.steps}.")
    return apply_colormap(report.maps[int(step), report._index(method)], colormap)
