"""Pictures from arrays: PNG bytes, heatmap overlays at the original resolution, colour bars."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from viz_core.errors import ParameterError
from viz_core.maps import resize_map
from viz_core.runtime.limits import HEAT_THRESHOLD, OPACITY
from viz_core.render.colormaps import apply_colormap


def png_bytes(image: np.ndarray) -> bytes:
    """Encode (H, W, 3) or (H, W) uint8 as PNG bytes."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ParameterError(f"PNG export needs uint8 pixels; got {arr.dtype}.")
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def overlay_heatmap(
    image: np.ndarray,
    heatmap: np.ndarray,
    *,
    opacity: float = 0.5,
    colormap: str = "viridis",
    threshold: float = 0.0,
) -> np.ndarray:
    """Blend a heatmap over an image at the image's resolution.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB
        Usually the original upload, at its own resolution.
    heatmap : (h, w) float in [0, 1]
        Any resolution; resized bilinearly to (H, W).
    opacity : float in [0, 1]
        Weight of the heatmap colour where it is shown.
    colormap : str
    threshold : float in [0, 1]
        Heat values below it are not coloured (the image shows through).

    Returns
    -------
    np.ndarray
        (H, W, 3) uint8 RGB.
    """
    opacity = OPACITY.check(opacity)
    threshold = HEAT_THRESHOLD.check(threshold)
    img = np.asarray(image, dtype="uint8")
    height, width = img.shape[:2]
    heat = np.clip(resize_map(heatmap, height, width), 0.0, 1.0)
    colours = apply_colormap(heat, colormap).astype("float32")
    alpha = np.where(heat >= threshold, opacity, 0.0).astype("float32")[:, :, None]
    out = img.astype("float32") * (1.0 - alpha) + colours * alpha
    return np.clip(out + 0.5, 0, 255).astype("uint8")


def colorbar(colormap: str = "viridis", length: int = 256, thickness: int = 16,
             vertical: bool = True) -> np.ndarray:
    """A colour bar: low values at the bottom (vertical) or left; (L, T, 3) or (T, L, 3) uint8."""
    ramp = np.linspace(0.0, 1.0, length, dtype="float32")
    if vertical:
        return np.repeat(apply_colormap(ramp[::-1], colormap)[:, None, :], thickness, axis=1)
    return np.repeat(apply_colormap(ramp, colormap)[None, :, :], thickness, axis=0)
