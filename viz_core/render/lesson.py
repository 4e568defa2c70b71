"""Lesson mode's pictures: small grids of numbers, each cell coloured by its sign and size
(blue below zero, white at zero, red above, as CNN Explainer colours them), padding cells
hatched grey, and the convolution written as ``patch x kernel = products``.

Arrays in, (H, W, 3) uint8 RGB out (Pillow draws the numbers); the dashboard's interactive
grids use :func:`signed_colors` too, so both show the same colours.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

NEGATIVE = np.array([33, 102, 172], dtype="float64")   # blue
POSITIVE = np.array([178, 24, 43], dtype="float64")    # red
WHITE = np.array([247, 247, 247], dtype="float64")
PADDING = (200, 200, 200)
HIGHLIGHT = (255, 170, 0)


def signed_colors(values: np.ndarray, limit: float | None = None) -> np.ndarray:
    """(..., 3) uint8: white at 0, fully blue at ``-limit``, fully red at ``+limit``.

    ``limit`` defaults to the largest absolute finite value (1 when all are 0); NaN is white.
    """
    v = np.nan_to_num(np.asarray(values, dtype="float64"))
    top = float(np.max(np.abs(v))) if limit is None and v.size else float(limit or 0.0)
    t = np.clip(v / (top if top > 0 else 1.0), -1.0, 1.0)[..., None]
    rgb = np.where(t < 0, WHITE + (NEGATIVE - WHITE) * -t, WHITE + (POSITIVE - WHITE) * t)
    return np.clip(rgb + 0.5, 0, 255).astype("uint8")


def text_color(rgb: Sequence[int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``rgb``."""
    r, g, b = (int(c) for c in rgb[:3])
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def short_number(value: float) -> str:
    """``value`` in at most about six characters, for a grid cell: ``0.512``, ``-12.3``,
    ``6.16``, ``-4e-04``, ``1.2e+04``; whole numbers as they are (``210``)."""
    if value is None or not np.isfinite(value):
        return "–"
    size = abs(value)
    if size == 0:
        return "0"
    if value == round(value) and size < 10000:  # pixels, the sandbox's whole numbers
        return str(int(value))
    if size >= 1000:
        return f"{value:.2g}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    if size >= 0.01:
        return f"{value:.3f}"
    return f"{value:.0e}"


def _font(size: int):
    return ImageFont.load_default(size=size)


def number_grid(values: np.ndarray, *, padded: np.ndarray | None = None,
                highlight: tuple[int, int] | None = None, limit: float | None = None,
                cell: int = 52) -> np.ndarray:
    """A (h, w) grid of numbers as a picture.

    Parameters
    ----------
    values : np.ndarray
        (h, w) numbers; NaN cells are drawn as padding.
    padded : np.ndarray, optional
        (h, w) bool: padding cells, hatched grey (their number, 0, is still written).
    highlight : (int, int), optional
        A cell to outline (the maximum of a pooling window, the clicked output).
    limit : float, optional
        The value drawn fully red (``-limit`` fully blue); default the grid's largest.
    cell : int
        Cell side in pixels.

    Returns
    -------
    np.ndarray
        (h·cell + 1, w·cell + 1, 3) uint8 RGB.
    """
    v = np.asarray(values, dtype="float64")
    h, w = v.shape
    pad = np.isnan(v) if padded is None else (np.asarray(padded, bool) | np.isnan(v))
    colors = signed_colors(v, limit)
    image = Image.new("RGB", (w * cell + 1, h * cell + 1), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = _font(max(8, cell // 4))
    for i in range(h):
        for j in range(w):
            box = (j * cell, i * cell, (j + 1) * cell, (i + 1) * cell)
            fill = PADDING if pad[i, j] else tuple(int(c) for c in colors[i, j])
            draw.rectangle(box, fill=fill, outline=(120, 120, 120))
            if pad[i, j]:  # hatched: these cells are outside the input
                for k in range(0, 2 * cell, 8):
                    draw.line((box[0] + max(0, k - cell), box[1] + min(k, cell),
                               box[0] + min(k, cell), box[1] + max(0, k - cell)),
                              fill=(170, 170, 170))
            text = "0" if pad[i, j] and np.isnan(v[i, j]) else short_number(v[i, j])
            draw.text(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), text, font=font,
                      fill=text_color(fill), anchor="mm")
    if highlight is not None:
        i, j = highlight
        draw.rectangle((j * cell, i * cell, (j + 1) * cell, (i + 1) * cell), outline=HIGHLIGHT,
                       width=3)
    return np.asarray(image)


def equation(grids: Sequence[np.ndarray], symbols: Sequence[str], gap: int = 36,
             captions: Sequence[str] = ()) -> np.ndarray:
    """Pictures side by side with a symbol between each two (``x``, ``=``) and an optional
    caption above each: ``patch x kernel = products``.

    Returns
    -------
    np.ndarray
        (H, W, 3) uint8 RGB, white background, the grids centred vertically.
    """
    caption_h = 22 if captions else 0
    small = _font(14)
    # each picture's slot is at least as wide as its caption
    slots = [max(g.shape[1], int(small.getlength(str(captions[k]))) + 8 if k < len(captions)
                 else 0) for k, g in enumerate(grids)]
    height = max(g.shape[0] for g in grids) + caption_h
    width = sum(slots) + gap * (len(grids) - 1)
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = _font(24)
    x = 0
    for k, grid in enumerate(grids):
        top = caption_h + (height - caption_h - grid.shape[0]) // 2
        image.paste(Image.fromarray(np.asarray(grid, dtype="uint8")),
                    (x + (slots[k] - grid.shape[1]) // 2, top))
        if k < len(captions):
            draw.text((x + slots[k] / 2, 2), str(captions[k]), font=small,
                      fill=(40, 40, 40), anchor="ma")
        x += slots[k]
        if k < len(grids) - 1:
            symbol = symbols[k] if k < len(symbols) else ""
            draw.text((x + gap / 2, caption_h + (height - caption_h) / 2), symbol, font=font,
                      fill=(40, 40, 40), anchor="mm")
            x += gap
    return np.asarray(image)


def strongest_input_channel(products: np.ndarray) -> int:
    """The input channel (last axis of (kh, kw, cin) products) whose products add up to the
    largest absolute amount: the one worth drawing when there are many."""
    sums = np.asarray(products, dtype="float64").sum(axis=(0, 1))
    return int(np.argmax(np.abs(sums)))


def unit_picture(result, cell: int = 52) -> np.ndarray:
    """A lesson result (:mod:`viz_core.features.arithmetic_results`) as one picture.

    A convolution: ``patch x kernel = products`` of its strongest input channel; pooling: the
    window with the chosen cell outlined; anything else (BatchNorm, Dense, activations,
    softmax): its largest terms as three columns, inputs x weights = products.
    """
    if getattr(result, "patch", None) is not None:
        k = strongest_input_channel(result.products)
        channel = result.input_channels[k]
        pad = result.padded
        return equation(
            [number_grid(result.patch[:, :, k], padded=pad, cell=cell),
             number_grid(result.kernel[:, :, k], cell=cell),
             number_grid(result.products[:, :, k], padded=pad, cell=cell)],
            ["x", "="], captions=[f"input channel {channel}", "kernel",
                                  f"products (sum {short_number(result.products[:, :, k].sum())})"])
    if getattr(result, "window", None) is not None:
        return equation([number_grid(result.window, padded=result.padded,
                                     highlight=result.picked, cell=cell)], [],
                        captions=[f"{result.operation} = {short_number(result.activation)}"])
    terms = result.terms(12)
    rows = np.array([[t["input"] for t in terms], [t["weight"] for t in terms],
                     [t["product"] for t in terms]])
    return equation([number_grid(rows[r][:, None], cell=cell) for r in range(3)], ["x", "="],
                    captions=["inputs", "weights", "products"], gap=48)
