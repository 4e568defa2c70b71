"""Sample images that work offline: the generated shapes gallery and scikit-image's bundled photos.

The shapes gallery lives in ``assets/samples/`` (written by ``python -m viz_core.demo.gallery``,
described by ``samples.json``); the photos come from ``skimage.data`` at run time, which ships
them inside the package, so no sample ever needs the network.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np
from PIL import Image

from viz_core.paths import ASSETS

ASSETS_DIR = ASSETS
SAMPLES_DIR = ASSETS_DIR / "samples"
INDEX_FILE = SAMPLES_DIR / "samples.json"

# name -> user-facing title; each name is a loader function in ``skimage.data``.
PHOTOS: dict[str, str] = {
    "chelsea": "Cat (chelsea)",
    "coffee": "Coffee cup (coffee)",
    "astronaut": "Astronaut (astronaut)",
    "rocket": "Rocket (rocket)",
}


@dataclass(frozen=True)
class Sample:
    """One sample image the user can pick.

    Attributes
    ----------
    name : str
        Stable identifier, e.g. ``"circle"``, ``"circle_and_star"``, ``"chelsea"``.
    title : str
        What the user sees, e.g. ``"Circle"``, ``"Cat (chelsea)"``.
    kind : str
        ``"shapes"`` (a generated scene with known shape boxes) or ``"photo"``.
    boxes : tuple
        For shapes, one ``(label, class_index, (x0, y0, x1, y1))`` per shape, pixel box with
        x1/y1 exclusive, in the 150x150 image; empty for photos.
    """

    name: str
    title: str
    kind: str
    boxes: tuple[tuple[str, int, tuple[int, int, int, int]], ...] = ()


def list_samples() -> tuple[Sample, ...]:
    """All samples: the shapes gallery (in ``samples.json`` order) then the four photos."""
    records = json.loads(INDEX_FILE.read_text())
    shapes = tuple(
        Sample(
            name=record["name"],
            title=record["title"],
            kind="shapes",
            boxes=tuple(
                (shape["label"], int(shape["class_index"]), tuple(int(v) for v in shape["box"]))
                for shape in record["shapes"]
            ),
        )
        for record in records
    )
    photos = tuple(Sample(name=name, title=title, kind="photo") for name, title in PHOTOS.items())
    return shapes + photos


def sample_bytes(name: str) -> bytes:
    """PNG-encoded bytes of the sample called ``name``.

    Raises
    ------
    ValueError
        If ``name`` is not a sample; the message lists the known names.
    """
    samples = {sample.name: sample for sample in list_samples()}
    if name not in samples:
        raise ValueError(f"Unknown sample {name!r}; known samples are {', '.join(samples)}.")
    if samples[name].kind == "shapes":
        return (SAMPLES_DIR / f"{name}.png").read_bytes()
    return _png_bytes(_photo(name))


def _photo(name: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB photo from scikit-image's bundled data."""
    from skimage import data  # imported here: scikit-image is only needed for the photos

    return np.asarray(getattr(data, name)(), dtype=np.uint8)


def _png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()
