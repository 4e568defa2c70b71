"""Rendering: numbers in, uint8 RGB pictures and PNG bytes out. numpy, Pillow and
scikit-image only; no plotting library and no Streamlit.

Modules: :mod:`.colormaps` (lookup tables), :mod:`.images` (PNG bytes, overlays, colour bars).
"""
from viz_core.render.colormaps import COLORMAPS, apply_colormap, normalize
from viz_core.render.images import colorbar, overlay_heatmap, png_bytes

__all__ = [
    "COLORMAPS",
    "apply_colormap",
    "colorbar",
    "normalize",
    "overlay_heatmap",
    "png_bytes",
]
