"""Filter-pattern grids: many small RGB pictures as one uint8 picture (the tutorial's 8x8 grid).

:mod:`viz_core.render.montage` colours scalar channels; filter patterns are already RGB, so
this is a plain numpy paste with a gap and an outline for dead filters. ``maco`` patterns carry
a transparency map: as a fourth (alpha) channel for single PNGs, or laid over a checkerboard
where several patterns share one opaque picture.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from viz_core.errors import ParameterError

DEAD_COLOR = (230, 40, 40)  # same red as dead channels in feature-map montages
CHECKER = (204, 153)  # grey levels of the transparency checkerboard (light, dark)
CHECKER_CELL = 8  # px


def with_alpha(patterns: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """RGBA pictures: the transparency map as the alpha channel.

    Parameters
    ----------
    patterns : np.ndarray
        (..., H, W, 3) uint8 RGB.
    alpha : np.ndarray
        (..., H, W) float in [0, 1], 1 = opaque.

    Returns
    -------
    np.ndarray
        (..., H, W, 4) uint8.
    """
    rgb, a = _checked(patterns, alpha)
    a8 = np.clip(np.rint(a * 255.0), 0, 255).astype("uint8")
    return np.concatenate([rgb, a8[..., None]], axis=-1)


def over_checkerboard(patterns: np.ndarray, alpha: np.ndarray,
                      cell: int = CHECKER_CELL) -> np.ndarray:
    """RGB pictures laid over a grey checkerboard by their transparency, as image editors show
    transparent areas.

    Parameters
    ----------
    patterns : np.ndarray
        (..., H, W, 3) uint8 RGB.
    alpha : np.ndarray
        (..., H, W) float in [0, 1].

    Returns
    -------
    np.ndarray
        (..., H, W, 3) uint8.
    """
    rgb, a = _checked(patterns, alpha)
    h, w = rgb.shape[-3:-1]
    yy, xx = np.mgrid[:h, :w]
    board = np.where((yy // cell + xx // cell) % 2 == 0, *CHECKER).astype("float32")
    blended = rgb.astype("float32") * a[..., None] + board[..., None] * (1.0 - a[..., None])
    return np.clip(np.rint(blended), 0, 255).astype("uint8")


def _checked(patterns, alpha) -> tuple[np.ndarray, np.ndarray]:
    rgb, a = np.asarray(patterns), np.asarray(alpha, "float32")
    if rgb.dtype != np.uint8 or rgb.shape[-1] != 3 or a.shape != rgb.shape[:-1]:
        raise ParameterError(
            f"Transparency needs (..., H, W, 3) uint8 patterns and (..., H, W) alpha; got "
            f"{rgb.shape} {rgb.dtype} and {a.shape}.")
    return rgb, np.clip(a, 0.0, 1.0)


@dataclass(frozen=True, eq=False)
class PatternGrid:
    """A grid of patterns and where each one sits.

    Attributes
    ----------
    image : np.ndarray
        (H, W, 3) uint8 RGB. Pattern ``p`` sits at
        ``y = gap + (p // columns) * (th + gap)``, ``x = gap + (p % columns) * (tw + gap)``.
    columns, rows, gap : int
    tile : (th, tw)
    """

    image: np.ndarray
    columns: int
    rows: int
    tile: tuple[int, int]
    gap: int

    def origin(self, position: int) -> tuple[int, int]:
        """Top-left pixel (y, x) of the pattern at row-major ``position``."""
        th, tw = self.tile
        return (self.gap + (position // self.columns) * (th + self.gap),
                self.gap + (position % self.columns) * (tw + self.gap))

    def position(self, pixel_y: int, pixel_x: int) -> int | None:
        """Which pattern (row-major position) the pixel falls on; None for gaps and margins."""
        th, tw = self.tile
        row, ry = divmod(int(pixel_y) - self.gap, th + self.gap)
        col, rx = divmod(int(pixel_x) - self.gap, tw + self.gap)
        if pixel_y < self.gap or pixel_x < self.gap or ry >= th or rx >= tw:
            return None
        if not (0 <= row < self.rows and 0 <= col < self.columns):
            return None
        return row * self.columns + col


def pattern_grid(
    patterns: np.ndarray,
    *,
    columns: int = 8,
    gap: int = 4,
    dead: np.ndarray | None = None,
    background: int = 255,
    alpha: np.ndarray | None = None,
) -> PatternGrid:
    """Paste patterns into a grid, row by row.

    Parameters
    ----------
    patterns : np.ndarray
        (N, th, tw, 3) uint8 RGB, tiles of one size.
    columns : int
        Patterns per row (8 gives the tutorial's 8x8 grid for 64 filters).
    gap : int
        Pixels between tiles and around the grid.
    dead : np.ndarray or None
        (N,) bool; dead filters get a red outline (2 px inside the tile).
    background : int
        Grey level of gaps, 0..255.
    alpha : np.ndarray or None
        (N, th, tw) float in [0, 1], transparency (``maco``): patterns laid over a checkerboard.

    Returns
    -------
    PatternGrid
        ``image`` is (gap + rows * (th + gap), gap + columns * (tw + gap), 3) uint8.
    """
    tiles = np.asarray(patterns)
    if tiles.ndim != 4 or tiles.shape[-1] != 3 or tiles.dtype != np.uint8:
        raise ParameterError(
            f"Patterns must be (N, H, W, 3) uint8; got {tiles.shape} {tiles.dtype}."
        )
    if columns < 1 or gap < 0:
        raise ParameterError(
            f"Columns must be at least 1 and gap at least 0; got {columns} and {gap}.")
    if alpha is not None:
        tiles = over_checkerboard(tiles, alpha)
    count, th, tw = tiles.shape[:3]
    columns = min(columns, max(1, count))
    rows = -(-count // columns)
    image = np.full((gap + rows * (th + gap), gap + columns * (tw + gap), 3), background,
                    dtype=np.uint8)
    grid = PatternGrid(image=image, columns=columns, rows=rows, tile=(th, tw), gap=gap)
    flags = np.zeros(count, bool) if dead is None else np.asarray(dead, bool)
    edge = max(1, min(2, min(th, tw) // 8))
    for p in range(count):
        y, x = grid.origin(p)
        box = image[y:y + th, x:x + tw]
        box[...] = tiles[p]
        if flags[p]:
            box[:edge], box[-edge:], box[:, :edge], box[:, -edge:] = (DEAD_COLOR,) * 4
    return grid
