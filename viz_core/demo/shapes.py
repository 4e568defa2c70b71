"""Synthetic "shapes" scenes: one or more solid shapes on a cluttered background.

Every scene is a pure function of its integer seed, so any image can be re-drawn from its seed
and the exact pixels of each shape are known. Shapes are drawn with Pillow ``ImageDraw`` without
anti-aliasing onto a boolean mask and then painted in one solid colour, so a shape's mask is
exactly the set of pixels that carry its colour. Clutter (gradients, noise, thin lines, soft
elongated blobs) is drawn first and never on top of a shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

CLASS_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "star")
IMAGE_SIDE = 150

_MIN_EXTENT = 0.20  # shape diameter as a fraction of the image side, one shape
_MAX_EXTENT = 0.60
_MAX_EXTENT_SEVERAL = 0.42  # smaller shapes when several must fit side by side
_GAP = 4  # pixels kept free between shapes in a scene with several
_MIN_SHAPE_CONTRAST = 110.0  # RGB distance from the mean background under the shape
_MIN_LINE_CONTRAST = 60.0  # RGB distance from every clutter colour
_STAR_INNER_RATIO = 0.42


@dataclass(frozen=True)
class PlacedShape:
    """One shape drawn in a scene.

    Attributes
    ----------
    label : str
        Class name, one of ``CLASS_NAMES``.
    class_index : int
        Position of ``label`` in ``CLASS_NAMES``.
    mask : np.ndarray
        (H, W) bool, True exactly where the shape's colour was painted.
    box : tuple of int
        ``(x0, y0, x1, y1)``: bounding box of ``mask``, x0/y0 inclusive, x1/y1 exclusive.
    colour : tuple of int
        The shape's RGB colour, each in [0, 255].
    """

    label: str
    class_index: int
    mask: np.ndarray
    box: tuple[int, int, int, int]
    colour: tuple[int, int, int]


@dataclass(frozen=True)
class Scene:
    """A generated image and the shapes in it.

    Attributes
    ----------
    image : np.ndarray
        (size, size, 3) uint8 RGB.
    shapes : tuple of PlacedShape
        The shapes, in drawing order; they never overlap.
    seed : int
        The seed that reproduces this scene with the same ``classes`` and ``clutter``.
    """

    image: np.ndarray
    shapes: tuple[PlacedShape, ...]
    seed: int


def class_index(label: str) -> int:
    """Index of a class name in ``CLASS_NAMES``; ValueError naming the bad label otherwise."""
    if label not in CLASS_NAMES:
        raise ValueError(
            f"Unknown shape class {label!r}; known classes are {', '.join(CLASS_NAMES)}."
        )
    return CLASS_NAMES.index(label)


def shape_outline(
    label: str, centre: tuple[float, float], extent: float, angle: float
) -> list[tuple[float, float]]:
    """Polygon vertices of a shape (a circle is returned as its bounding square's two corners).

    Parameters
    ----------
    label : str
        One of ``CLASS_NAMES``.
    centre : (float, float)
        ``(x, y)`` in pixels.
    extent : float
        Diameter of the circle the shape is inscribed in, in pixels.
    angle : float
        Rotation in degrees (ignored for a circle).

    Returns
    -------
    list of (x, y)
        For polygons, the vertices in order; for ``"circle"`` the corners
        ``[(x0, y0), (x1, y1)]`` of its bounding box, as ``ImageDraw.ellipse`` wants.
    """
    class_index(label)
    cx, cy = centre
    r = extent / 2.0
    if label == "circle":
        return [(cx - r, cy - r), (cx + r, cy + r)]
    start = math.radians(angle)
    if label == "square":
        radii, turns = [r] * 4, 4
    elif label == "triangle":
        radii, turns = [r] * 3, 3
    else:
        radii, turns = [r, r * _STAR_INNER_RATIO] * 5, 10
    step = 2.0 * math.pi / turns
    return [
        (cx + rad * math.cos(start + k * step), cy + rad * math.sin(start + k * step))
        for k, rad in enumerate(radii)
    ]


def shape_mask(
    label: str, centre: tuple[float, float], extent: float, angle: float, size: int = IMAGE_SIDE
) -> np.ndarray:
    """Aliased (hard-edged) mask of one shape.

    Parameters are those of ``shape_outline``; ``size`` is the image side in pixels.

    Returns
    -------
    np.ndarray
        (size, size) bool, True on the pixels Pillow fills for this shape.
    """
    canvas = Image.new("1", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    outline = shape_outline(label, centre, extent, angle)
    if label == "circle":
        draw.ellipse(outline, fill=1)
    else:
        draw.polygon(outline, fill=1)
    return np.array(canvas, dtype=bool)


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box ``(x0, y0, x1, y1)`` of a non-empty (H, W) bool mask; x1/y1 exclusive."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("The shape mask is empty: the shape lies outside the image.")
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def draw_scene(
    seed: int, classes: Sequence[str] | None = None, clutter: float = 1.0, size: int = IMAGE_SIDE
) -> Scene:
    """Draw one scene, fully determined by its arguments.

    Parameters
    ----------
    seed : int
        Non-negative seed; the same arguments always give the same pixels.
    classes : sequence of str, optional
        Which shapes appear, one entry per shape (1 to 4 entries, repeats allowed). None draws
        one shape of a random class.
    clutter : float
        Amount of background clutter: 0 gives a plain gradient, 1 the training amount, 2-3 heavy.
    size : int
        Image side in pixels.

    Returns
    -------
    Scene
        ``image`` (size, size, 3) uint8 and one ``PlacedShape`` per entry of ``classes``.
    """
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    if clutter < 0:
        raise ValueError(f"clutter must be >= 0, got {clutter!r}.")
    rng = np.random.default_rng(seed)
    if classes is None:
        labels = (CLASS_NAMES[int(rng.integers(len(CLASS_NAMES)))],)
    else:
        labels = tuple(classes)
        if not 1 <= len(labels) <= 4:
            raise ValueError(f"A scene holds 1 to 4 shapes, got {len(labels)}: {labels!r}.")
        for label in labels:
            class_index(label)

    layout = _layout(rng, len(labels), size)
    image, clutter_colours = _background(rng, clutter, size)
    shapes = []
    for label, (centre, extent) in zip(labels, layout, strict=True):
        angle = float(rng.uniform(0.0, 360.0))
        mask = shape_mask(label, centre, extent, angle, size)
        colour = _shape_colour(rng, image[mask].mean(axis=0), clutter_colours)
        image[mask] = colour
        shapes.append(PlacedShape(label, class_index(label), mask, mask_box(mask), colour))
    return Scene(image=image, shapes=tuple(shapes), seed=int(seed))


def class_pairs() -> tuple[tuple[str, str], ...]:
    """The 6 pairs of different classes, in ``CLASS_NAMES`` order: (circle, square), ..."""
    return tuple((a, b) for i, a in enumerate(CLASS_NAMES) for b in CLASS_NAMES[i + 1 :])


def dataset_scene(scene_seed: int, clutter: float = 1.0) -> Scene:
    """The training-style scene for ``scene_seed``: one shape of class ``scene_seed % 4``.

    ``make_dataset(n, seed)`` holds exactly ``dataset_scene(seed + i)`` for i in 0..n-1, so any
    image of a dataset can be re-drawn alone and classes are balanced in every run of 4 seeds.
    """
    return draw_scene(scene_seed, (CLASS_NAMES[scene_seed % len(CLASS_NAMES)],), clutter)


def make_dataset(
    n: int, seed: int = 0, clutter: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labelled one-shape images drawn from the scene seeds ``seed, seed + 1, ..., seed + n - 1``.

    Parameters
    ----------
    n : int
        Number of images.
    seed : int
        First scene seed; datasets with disjoint seed ranges share no image.
    clutter : float
        As in ``draw_scene``.

    Returns
    -------
    images : np.ndarray
        (n, 150, 150, 3) uint8 RGB.
    labels : np.ndarray
        (n,) int64 class indices into ``CLASS_NAMES``.
    boxes : np.ndarray
        (n, 4) int64 ``(x0, y0, x1, y1)`` box of each shape, x1/y1 exclusive.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n!r}.")
    images = np.empty((n, IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8)
    labels = np.empty((n,), dtype=np.int64)
    boxes = np.empty((n, 4), dtype=np.int64)
    for i in range(n):
        scene = dataset_scene(seed + i, clutter)
        images[i] = scene.image
        labels[i] = scene.shapes[0].class_index
        boxes[i] = scene.shapes[0].box
    return images, labels, boxes


def _layout(
    rng: np.random.Generator, count: int, size: int
) -> list[tuple[tuple[float, float], float]]:
    """Centres and diameters of ``count`` shapes whose circumscribed circles keep ``_GAP`` apart."""
    top = _MAX_EXTENT if count == 1 else _MAX_EXTENT_SEVERAL
    for attempt in range(400):
        shrink = 0.85 ** (attempt // 100)  # crowded scenes: try smaller shapes
        placed: list[tuple[tuple[float, float], float]] = []
        for _ in range(count):
            extent = float(rng.uniform(_MIN_EXTENT, top)) * size * shrink
            r = extent / 2.0
            centre = (
                float(rng.uniform(r + 1, size - r - 1)),
                float(rng.uniform(r + 1, size - r - 1)),
            )
            placed.append((centre, extent))
        if all(
            math.dist(a[0], b[0]) >= (a[1] + b[1]) / 2.0 + _GAP
            for i, a in enumerate(placed)
            for b in placed[i + 1 :]
        ):
            return placed
    raise ValueError(f"Could not place {count} shapes without overlap in a {size}x{size} image.")


def _background(
    rng: np.random.Generator, clutter: float, size: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Gradient, soft blobs, thin lines and pixel noise.

    Returns the (size, size, 3) uint8 background and the RGB colours of its blobs and lines.
    """
    start, end = rng.uniform(0, 255, size=(2, 3))
    theta = rng.uniform(0, 2 * math.pi)
    ramp = np.linspace(-0.5, 0.5, size)
    t = np.cos(theta) * ramp[None, :] + np.sin(theta) * ramp[:, None]
    t = ((t - t.min()) / (np.ptp(t) + 1e-6)).astype(np.float32)
    image = (start + (end - start) * t[..., None]).astype(np.float32)

    colours: list[np.ndarray] = []
    for _ in range(_count(rng, clutter, 1, 4)):
        image, colour = _soft_blob(rng, image, size)
        colours.append(colour)

    canvas = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(_count(rng, clutter, 2, 7)):
        colour = rng.integers(0, 256, size=3)
        colours.append(colour.astype(np.float64))
        points = rng.uniform(-0.1 * size, 1.1 * size, size=(int(rng.integers(2, 4)), 2))
        draw.line(
            [tuple(p) for p in points],
            fill=tuple(int(c) for c in colour),
            width=int(rng.integers(1, 3)),
        )
    image = np.asarray(canvas, dtype=np.float32)

    if clutter > 0:
        sigma = clutter * float(rng.uniform(3.0, 12.0))
        image = image + sigma * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(image, 0, 255).astype(np.uint8), colours


def _count(rng: np.random.Generator, clutter: float, low: int, high: int) -> int:
    """How many clutter items of one kind: ``clutter`` times a uniform draw in [low, high]."""
    return int(round(clutter * rng.integers(low, high + 1)))


def _soft_blob(
    rng: np.random.Generator, image: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Blend one blurred, elongated (never round) ellipse into ``image``."""
    coarse = max(size // 4, 8)  # drawn small and scaled up: the blob's edge comes out soft
    length = rng.uniform(0.25, 0.7) * coarse
    width = length / rng.uniform(3.0, 6.0)
    cx, cy = rng.uniform(0, coarse, size=2)
    angle = rng.uniform(0, math.pi)
    ys, xs = np.mgrid[0:coarse, 0:coarse].astype(np.float64) + 0.5
    u = (xs - cx) * math.cos(angle) + (ys - cy) * math.sin(angle)
    v = -(xs - cx) * math.sin(angle) + (ys - cy) * math.cos(angle)
    inside = np.exp(-((u / (length / 2)) ** 2 + (v / (width / 2)) ** 2) * 2.0)
    alpha = np.asarray(
        Image.fromarray((inside * 255).astype(np.uint8)).resize(
            (size, size), Image.Resampling.BILINEAR
        ),
        dtype=np.float32,
    ) * np.float32(rng.uniform(0.35, 0.75) / 255.0)
    colour = rng.uniform(0, 255, size=3)
    rows = np.flatnonzero(alpha.any(axis=1))
    cols = np.flatnonzero(alpha.any(axis=0))
    if rows.size:  # blend only where the blob is, for speed
        region = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        a = alpha[region][..., None]
        image[region] = image[region] * (1 - a) + colour.astype(np.float32) * a
    return image, colour


def _shape_colour(
    rng: np.random.Generator, background_mean: np.ndarray, clutter_colours: list[np.ndarray]
) -> tuple[int, int, int]:
    """A random colour far from the background under the shape and from the clutter colours."""
    best, best_score = None, -1.0
    for _ in range(64):
        colour = rng.integers(0, 256, size=3)
        contrast = float(np.linalg.norm(colour - background_mean))
        nearest_clutter = min(
            (float(np.linalg.norm(colour - c)) for c in clutter_colours), default=1e9
        )
        if contrast >= _MIN_SHAPE_CONTRAST and nearest_clutter >= _MIN_LINE_CONTRAST:
            return int(colour[0]), int(colour[1]), int(colour[2])
        score = min(contrast / _MIN_SHAPE_CONTRAST, nearest_clutter / _MIN_LINE_CONTRAST)
        if score > best_score:
            best, best_score = colour, score
    return int(best[0]), int(best[1]), int(best[2])
