"""Pictures from arrays: PNG bytes, heatmap overlays at the original resolution, colour bars."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from viz_core.errors import ParameterError
from viz_core.maps import resize_map
from viz_core.runtime.limits import HEAT_THRESHOLD, OPACITY
from viz_core.render.choices import BLENDS
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
    opacity: float | None = None,
    colormap: str = "viridis",
    threshold: float = 0.0,
    blend: str = "heat",
) -> np.ndarray:
    """Blend a heatmap over an image at the image's resolution.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB
        Usually the original upload, at its own resolution.
    heatmap : (h, w) float in [0, 1]
        Any resolution; resized bilinearly to (H, W).
    opacity : float in [0, 1] or None
        With ``blend="heat"``: the colour's opacity at the hottest point (1 when None), so a
        pixel of heat h is covered by ``opacity * h``. With ``blend="uniform"``: the colour's
        opacity everywhere it is shown (0.5 when None).
    colormap : str
    threshold : float in [0, 1]
        Heat values below it are not coloured (the image shows through).
    blend : {"heat", "uniform"}
        ``"heat"`` (default): the photo is untouched where the map is 0 and fully coloured
        at the top, so "no evidence" does not tint the photo. ``"uniform"``: the same blend
        everywhere, as the tutorial and pytorch-grad-cam draw it.

    Returns
    -------
    np.ndarray
        (H, W, 3) uint8 RGB.
    """
    if blend not in BLENDS:
        raise ParameterError(f"Unknown overlay blend {blend!r}; choose one of {', '.join(BLENDS)}.")
    if opacity is None:
        opacity = 1.0 if blend == "heat" else 0.5
    opacity = OPACITY.check(opacity)
    threshold = HEAT_THRESHOLD.check(threshold)
    img = np.asarray(image, dtype="uint8")
    height, width = img.shape[:2]
    heat = np.clip(resize_map(heatmap, height, width), 0.0, 1.0)
    colours = apply_colormap(heat, colormap).astype("float32")
    cover = opacity * heat if blend == "heat" else np.full_like(heat, opacity)
    alpha = np.where(heat >= threshold, cover, 0.0).astype("float32")[:, :, None]
    out = img.astype("float32") * (1.0 - alpha) + colours * alpha
    return np.clip(out + 0.5, 0, 255).astype("uint8")


def colorbar(colormap: str = "viridis", length: int = 256, thickness: int = 16,
             vertical: bool = True, blend: str = "uniform") -> np.ndarray:
    """A colour bar: low values at the bottom (vertical) or left; (L, T, 3) or (T, L, 3) uint8.

    With ``blend="heat"`` the bar shows what the overlay does: each colour laid over a light
    grey with the opacity of its heat, so the low end is the grey itself (the photo untouched).
    """
    if blend not in BLENDS:
        raise ParameterError(f"Unknown overlay blend {blend!r}; choose one of {', '.join(BLENDS)}.")
    ramp = np.linspace(0.0, 1.0, length, dtype="float32")
    colours = apply_colormap(ramp, colormap).astype("float32")
    if blend == "heat":
        grey = np.float32(_BAR_GROUND)
        colours = grey * (1.0 - ramp[:, None]) + colours * ramp[:, None]
    colours = np.clip(colours + 0.5, 0, 255).astype("uint8")
    if vertical:
        return np.repeat(colours[::-1][:, None, :], thickness, axis=1)
    return np.repeat(colours[None, :, :], thickness, axis=0)


_BAR_GROUND = 224  # the light grey a heat-blend colour bar fades into (stands for the photo)
