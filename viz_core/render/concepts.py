"""Pictures of CRAFT's concepts: a concept's map over an image in the concept's colour, a strip of
its best crops, its mean map, and every concept of one image side by side."""
from __future__ import annotations

import numpy as np
from PIL import Image

from viz_core.maps import resize_map
from viz_core.render.colormaps import apply_colormap, normalize

# One colour per concept (cycled past ten): distinct on photos and on the demo's shapes.
PALETTE = ((54, 197, 240), (210, 40, 95), (236, 178, 46), (15, 157, 88), (130, 60, 200),
           (255, 120, 30), (30, 90, 220), (160, 160, 40), (230, 80, 200), (90, 200, 170))
MAX_COVER = 0.85  # a concept's strongest point still lets the picture show through


def concept_colour(concept: int) -> tuple[int, int, int]:
    """The RGB colour of concept ``concept`` (0 = most important)."""
    return PALETTE[int(concept) % len(PALETTE)]


def _rgb(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image, dtype=np.uint8)
    if img.ndim == 2:
        img = img[..., None]
    return np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img[..., :3]


def concept_overlay(image: np.ndarray, values: np.ndarray, concept: int,
                    scale: float | None = None) -> np.ndarray:
    """A concept's map laid over an image in the concept's colour.

    Parameters
    ----------
    image : (H, W, 3) or (H, W, 1) uint8
    values : (h, w) float >= 0
        The concept's map (resized bilinearly to the image).
    concept : int
        Picks the colour.
    scale : float or None
        The value drawn at full strength; None: the map's own maximum (a map of zeros leaves
        the image as it is).

    Returns
    -------
    np.ndarray
        (H, W, 3) uint8: the image where the map is 0, the colour at ``MAX_COVER`` opacity at
        ``scale`` and above.
    """
    img = _rgb(image)
    height, width = img.shape[:2]
    heat = np.maximum(resize_map(values, height, width), 0.0)
    top = float(heat.max()) if scale is None else float(scale)
    strength = normalize(heat, 0.0, top) if top > 0 else np.zeros_like(heat)
    alpha = (MAX_COVER * strength)[..., None]
    colour = np.asarray(concept_colour(concept), np.float32)
    out = img.astype(np.float32) * (1 - alpha) + colour * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def crops_strip(crops: np.ndarray, height: int = 64, gap: int = 2,
                background: int = 255) -> np.ndarray:
    """Crops side by side, each enlarged to ``height`` px (nearest: pixels stay sharp).

    Parameters
    ----------
    crops : (t, s, s, c) uint8, c = 1 or 3

    Returns
    -------
    np.ndarray
        (height, t * height + (t - 1) * gap, 3) uint8; ``gap`` px of ``background`` between.
    """
    tiles = [np.asarray(Image.fromarray(_rgb(c)).resize((height, height),
                                                        Image.Resampling.NEAREST))
             for c in np.asarray(crops, np.uint8)]
    if not tiles:
        return np.full((height, 0, 3), background, np.uint8)
    width = len(tiles) * height + (len(tiles) - 1) * gap
    out = np.full((height, width, 3), background, np.uint8)
    for i, tile in enumerate(tiles):
        out[:, i * (height + gap):i * (height + gap) + height] = tile
    return out


def crop_tile(crop: np.ndarray, smallest: int = 64) -> np.ndarray:
    """(s * f, s * f, 3) uint8: one crop (s, s, c) in RGB, enlarged by a whole factor f
    (nearest neighbour) until its side is at least ``smallest``."""
    img = _rgb(crop)
    factor = max(1, -(-int(smallest) // max(1, min(img.shape[:2]))))
    if factor == 1:
        return img
    return np.repeat(np.repeat(img, factor, axis=0), factor, axis=1)


def mean_map_picture(values: np.ndarray, colormap: str = "magma") -> np.ndarray:
    """(H, W, 3) uint8: a concept's mean map coloured from 0 to its maximum."""
    v = np.maximum(np.asarray(values, np.float32), 0.0)
    return apply_colormap(normalize(v, 0.0, float(v.max())), colormap)


def all_concepts(image: np.ndarray, maps: np.ndarray, columns: int = 5,
                 gap: int = 2) -> np.ndarray:
    """Every concept's map over one image, in a grid, concept 0 first.

    Parameters
    ----------
    image : (H, W, c) uint8
    maps : (K, h, w) float >= 0
        One map per concept; each is drawn at its own maximum.

    Returns
    -------
    np.ndarray
        (rows * H + (rows - 1) * gap, min(K, columns) * W + ..., 3) uint8, white gaps.
    """
    pictures = [concept_overlay(image, m, k) for k, m in enumerate(maps)]
    height, width = pictures[0].shape[:2]
    cols = min(len(pictures), int(columns))
    rows = -(-len(pictures) // cols)
    out = np.full((rows * height + (rows - 1) * gap, cols * width + (cols - 1) * gap, 3), 255,
                  np.uint8)
    for k, picture in enumerate(pictures):
        r, c = divmod(k, cols)
        out[r * (height + gap):r * (height + gap) + height,
            c * (width + gap):c * (width + gap) + width] = picture
    return out
