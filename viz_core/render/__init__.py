"""Pictures: numbers in, uint8 RGB pictures and PNG bytes out. NumPy, Pillow and scikit-image
only; no plotting library, no Streamlit, and no technique: render draws arrays it is given.

Modules:
    choices         names of the picture options (no NumPy: the command line lists them)
    colormaps       256-entry lookup tables, normalising, colouring a map
    images          PNG bytes, heatmap overlays, colour bars
    montage         grids of feature maps
    filter_grid     galleries of filter patterns
    lime_view       LIME's pictures: superpixel boundaries, evidence masks

The names below are loaded when first used, so importing one light module of the package
(``choices``) does not load NumPy.
"""
import importlib

_EXPORTS = {
    "COLORMAPS": "viz_core.render.choices",
    "apply_colormap": "viz_core.render.colormaps",
    "normalize": "viz_core.render.colormaps",
    "colorbar": "viz_core.render.images",
    "overlay_heatmap": "viz_core.render.images",
    "png_bytes": "viz_core.render.images",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
