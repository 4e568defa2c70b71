"""Which classes a page explains before the user picks any."""
from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence

from viz_core.inputs.samples import list_samples, sample_bytes


@functools.cache  # the sample scenes are files shipped with the app: read them once
def _scene_shapes() -> dict[str, frozenset[str]]:
    """``{sha256 of a sample scene's bytes: labels of the shapes drawn in it}``."""
    return {hashlib.sha256(sample_bytes(s.name)).hexdigest(): frozenset(b[0] for b in s.boxes)
            for s in list_samples() if s.kind == "shapes"}


def shapes_present(image) -> frozenset[str]:
    """Labels of the shapes in ``image`` (a LoadedImage) when it is one of the sample scenes,
    recognised by its bytes whatever it is called; empty for any other image."""
    return _scene_shapes().get(image.digest, frozenset())


def second_class(model, image, ranked: Sequence[int], first: int, none: int) -> int:
    """The class shown beside ``first`` until the user picks one.

    On a sample scene whose shapes are classes of the model, when ``first`` is one of its
    shapes, the most probable *other shape in the picture*: on "Circle and star" the demo model
    ranks star first, then square a hair above circle (9.3% and 9.1%), and the picture to show
    next to the star's is the circle's, not that of a shape that is not there. Otherwise
    (single shapes, photos, uploads, models with other classes) the runner-up, as the
    tutorial's two most probable classes. ``none`` when ``ranked`` holds no other class.
    """
    others = [k for k in ranked if k != first]
    present = shapes_present(image)
    if model.label(first) in present:  # the model found one shape of the scene: the other next
        for k in others:
            if model.label(k) in present:
                return k
    return others[0] if others else none


def top_title(count: int) -> str:
    """``top-5 predictions``, or as many as the model has (a two-class model has two)."""
    return f"top-{count} prediction{'s' if count != 1 else ''}"
