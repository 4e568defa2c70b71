"""Results as pictures in a Jupyter notebook: ``show(result)``.

    from viz_core.notebook import open_model, open_image, show
    from viz_core.methods.cam import class_heatmap
    from viz_core.models.targets import Target

    model = open_model("demo")                      # or a .keras/.h5 path
    image = open_image("assets/samples/circle_and_star.png")
    show(class_heatmap(model, model.view(image), Target(model.class_index("star"))), image)

``show`` returns a Pillow image, which Jupyter draws (Pillow images have ``_repr_png_``); for
feature maps it returns one picture per layer and displays them in order when IPython is
there. Drawing uses :mod:`viz_core.render`, so a notebook shows what the dashboard shows.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from viz_core.errors import ParameterError


def open_model(name_or_path: str = "demo", *, weights: str = "imagenet",
               preprocessing: str = "unit", labels=None):
    """A built-in model by name, or a model file (``preprocessing`` and ``labels`` apply to
    files only), loaded as the dashboard loads it."""
    from viz_core.models.catalog import BUILTIN_NAMES, load_builtin_model, load_uploaded_model

    if name_or_path in BUILTIN_NAMES:
        return load_builtin_model(name_or_path, weights)
    path = Path(name_or_path)
    return load_uploaded_model(path.read_bytes(), path.name, preprocessing=preprocessing,
                               labels=labels)


def open_image(path: str | Path):
    """An image file, checked and decoded as an upload is (:func:`viz_core.inputs.intake.load_image`)."""
    from viz_core.inputs.intake import load_image

    path = Path(path)
    return load_image(path.read_bytes(), path.name)


def picture(result, image=None, *, colormap: str = "viridis", opacity: float = 0.5):
    """``result`` drawn as (H, W, 3) uint8 RGB arrays, one per picture (a list).

    ``result`` is a ``ClassHeatmap`` (over ``image``, a ``LoadedImage``, when given), a
    ``FeatureMaps`` (one grid per layer), a ``FilterPatterns`` (one grid), a
    ``LimeExplanation`` (one picture per explained class) or an image array.
    """
    from viz_core.render import apply_colormap, overlay_heatmap

    if hasattr(result, "heatmap"):
        if image is None:
            return [apply_colormap(np.asarray(result.heatmap), colormap)]
        return [overlay_heatmap(image.pixels, result.heatmap, opacity=opacity,
                                colormap=colormap)]
    if hasattr(result, "layers") and hasattr(result, "paths"):
        from viz_core.render.montage import montage

        return [montage(act.values, colormap=colormap).image for act in result.layers]
    if hasattr(result, "patterns"):
        from viz_core.render.filter_grid import pattern_grid

        alpha = getattr(result, "alpha", None)  # transparency of the methods that have it
        extra = {} if alpha is None else {"alpha": alpha}
        return [pattern_grid(result.patterns, dead=result.dead, **extra).image]
    if hasattr(result, "class_indices") and hasattr(result, "segments"):
        from viz_core.methods.lime import explanation_plane
        from viz_core.render.lime_view import explanation_picture

        return [explanation_picture(result.image, explanation_plane(result, k))
                for k in result.class_indices]
    if isinstance(result, np.ndarray) and result.ndim in (2, 3):
        return [result if result.dtype == np.uint8 else apply_colormap(result, colormap)]
    raise ParameterError(f"show() draws heatmaps, feature maps, filter patterns and LIME "
                         f"explanations; got {type(result).__name__}.")


def show(result, image=None, **options):
    """``result`` as a Pillow image (Jupyter draws it); several pictures are displayed one
    after the other when IPython is there, and returned as a list."""
    pictures = [Image.fromarray(p) for p in picture(result, image, **options)]
    if len(pictures) == 1:
        return pictures[0]
    try:
        from IPython.display import display
    except ImportError:  # outside IPython: hand the pictures back
        return pictures
    for p in pictures:
        display(p)
    return pictures
