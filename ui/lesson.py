"""The "How it computes" page's figures: grids of numbers (coloured by sign, padding marked, the
cells read outlined), a channel's map to click, bars of contributions; and the learner's note.

Colours come from :func:`viz_core.render.lesson.signed_colors`, so the page and the notebook
picture agree. Every figure is shown through :func:`ui.charts.plotly_chart` by the page.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from viz_core.render.lesson import NEGATIVE, PADDING, POSITIVE, WHITE, short_number

from .text import plotly_text

CELL_PX = 52  # a grid cell's side: room for "-0.123" at 12 px
MAX_CLICK_MARKERS = 96 * 96  # a larger map gets a marker every few cells (number inputs reach all)
SIGNED_SCALE = [[0.0, "rgb({},{},{})".format(*NEGATIVE.astype(int))],
                [0.5, "rgb({},{},{})".format(*WHITE.astype(int))],
                [1.0, "rgb({},{},{})".format(*POSITIVE.astype(int))]]


def grid_figure(values: np.ndarray, title: str, *, padded: np.ndarray | None = None,
                marked: np.ndarray | None = None, rows: Sequence[int] | None = None,
                cols: Sequence[int] | None = None, limit: float | None = None,
                what: str = "value", cell_px: int = CELL_PX) -> go.Figure:
    """A small (h, w) grid of numbers: blue below zero, red above, padding hatched grey.

    Parameters
    ----------
    values : (h, w) numbers.
    padded : (h, w) bool, optional
        Padding cells (outside the input): grey, written ``0``.
    marked : (h, w) bool, optional
        Cells to outline in orange (the maximum of a pooling window, the window read).
    rows, cols : the axis labels (input rows and columns; negative ones are padding).
    limit : the value drawn fully red; default the grid's largest absolute value.
    what : the name of a value in the hover text.
    cell_px : a row's height in px; the cells fill the column's width (not kept square, which
        left a narrow column's grid small in the middle of empty space).
    """
    v = np.asarray(values, dtype="float64")
    h, w = v.shape
    pad = np.zeros((h, w), bool) if padded is None else np.asarray(padded, bool)
    top = float(np.nanmax(np.abs(v))) if limit is None and v.size else float(limit or 0.0)
    top = top if top > 0 else 1.0
    ys = [str(r) for r in (range(h) if rows is None else rows)]
    xs = [str(c) for c in (range(w) if cols is None else cols)]
    shown = np.where(pad, np.nan, v)
    text = [[("0" if pad[i, j] else short_number(v[i, j])) for j in range(w)]
            for i in range(h)]
    figure = go.Figure(go.Heatmap(
        z=shown, x=xs, y=ys, colorscale=SIGNED_SCALE, zmin=-top, zmax=top, showscale=False,
        text=text, texttemplate="%{text}", textfont=dict(size=12), xgap=1, ygap=1,
        hovertemplate=f"row %{{y}}, column %{{x}}<br>{plotly_text(what)} %{{z:.6g}}"
                      "<extra></extra>"))
    if pad.any():
        figure.add_trace(go.Heatmap(
            z=np.where(pad, 0.0, np.nan), x=xs, y=ys, showscale=False, xgap=1, ygap=1,
            colorscale=[[0, "rgb({},{},{})".format(*PADDING)], [1, "rgb({},{},{})".format(
                *PADDING)]], text=[["0" if pad[i, j] else "" for j in range(w)]
                                   for i in range(h)],
            texttemplate="%{text}", textfont=dict(size=12),
            hovertemplate="row %{y}, column %{x}<br>padding: outside the input, "
                          "counts as 0<extra></extra>"))
    if marked is not None:
        for i, j in zip(*np.nonzero(np.asarray(marked, bool))):
            figure.add_shape(type="rect", x0=j - 0.5, x1=j + 0.5, y0=i - 0.5, y1=i + 0.5,
                             xref="x", yref="y", line=dict(color="#ff9f00", width=3))
    figure.update_layout(
        title=dict(text=plotly_text(title), font=dict(size=14)),
        height=min(600, 70 + cell_px * h), width=None,
        margin=dict(l=30, r=10, t=36, b=24),
        xaxis=dict(type="category", side="bottom", title=None),
        yaxis=dict(type="category", autorange="reversed", title=None))
    return figure


def map_figure(values: np.ndarray, at: tuple[int, int] | None, title: str,
               colorscale) -> go.Figure:
    """A channel's (h, w) map with the chosen position outlined, and (invisible) markers to
    click a position with."""
    h, w = values.shape
    figure = go.Figure(go.Heatmap(z=values, colorscale=colorscale, showscale=False,
                                  hoverinfo="skip"))
    step = max(1, int(np.ceil(np.sqrt(h * w / MAX_CLICK_MARKERS))))
    ys, xs = np.mgrid[0:h:step, 0:w:step]
    # the markers carry the hover text: a trace that skips hover cannot be clicked either
    figure.add_trace(go.Scatter(
        x=xs.ravel(), y=ys.ravel(), mode="markers", customdata=values[ys, xs].ravel(),
        hovertemplate="y %{y}, x %{x}<br>value %{customdata:.4g}<extra></extra>",
        marker=dict(size=max(4, min(18, 420 // max(h, w) * step)), color="rgba(0,0,0,0)",
                    symbol="square"),
        selected=dict(marker=dict(color="rgba(0,0,0,0)")),
        unselected=dict(marker=dict(opacity=1))))
    if at is not None:
        y, x = at
        figure.add_shape(type="rect", x0=x - 0.5, x1=x + 0.5, y0=y - 0.5, y1=y + 0.5,
                         line=dict(color="#ff9f00", width=3))
    figure.update_layout(
        title=dict(text=plotly_text(title), font=dict(size=14)), height=400,
        margin=dict(l=30, r=10, t=36, b=24), dragmode=False, clickmode="event+select",
        showlegend=False,
        # square cells; what the column's width leaves over goes below the map, not above
        xaxis=dict(range=[-0.5, w - 0.5], constrain="domain", constraintoward="left"),
        yaxis=dict(range=[h - 0.5, -0.5], scaleanchor="x", constrain="domain",
                   constraintoward="top"))
    return figure


def clicked_cell(event) -> tuple[int, int] | None:
    """The (y, x) of a click on :func:`map_figure`, or None."""
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    for point in points:
        if "x" in point and "y" in point:
            return int(round(point["y"])), int(round(point["x"]))
    return None


def bars_figure(labels: Sequence[str], values: Sequence[float], title: str,
                what: str = "product") -> go.Figure:
    """Horizontal bars, largest at the top, red above zero and blue below."""
    values = [float(v) for v in values]
    colors = ["rgb({},{},{})".format(*(POSITIVE if v >= 0 else NEGATIVE).astype(int))
              for v in values]
    figure = go.Figure(go.Bar(
        x=values, y=[plotly_text(label) for label in labels], orientation="h",
        marker_color=colors, text=[short_number(v) for v in values], textposition="auto",
        hovertemplate=f"%{{y}}<br>{plotly_text(what)} %{{x:.6g}}<extra></extra>"))
    figure.update_layout(
        title=dict(text=plotly_text(title), font=dict(size=14)),
        height=min(620, 90 + 24 * len(values)), margin=dict(l=10, r=10, t=40, b=30),
        yaxis=dict(autorange="reversed", type="category"))
    return figure


NOTE = """
**One number at a time.** A convolution layer slides each of its filters over its input. At
every position the filter's weights are multiplied with the numbers under them (the *patch*),
the products are added up, the layer's *bias* is added, and an *activation function* (most
often ReLU: negative sums become 0) gives the number you see in the feature map. Click a
position on the map: the page shows exactly those numbers, read from your model, and checks
that redoing the sum gives the model's own value.

- **Padding**: at the border the filter hangs over the edge; ``same`` padding fills those
  cells with zeros (hatched grey), so the output keeps the input's size. ``valid`` padding
  stops at the edge and the map shrinks.
- **Stride** skips positions (stride 2 halves the map); **dilation** spreads the filter's
  taps apart, so it sees further with the same number of weights.
- The first layer reads the *image* after the model's preprocessing (e.g. pixel / 255);
  later layers read the layer before them, with every channel: a 3x3 filter on 64 channels
  has 576 weights.
- **Max pooling** keeps the largest number of each window, **average pooling** the mean.
  **BatchNorm** is one multiplication and one addition per channel, folded from four stored
  numbers. A **dense** layer is the same weighted sum over a whole vector, and **softmax**
  turns the last scores (logits) into probabilities that add up to 1.

Try the sandbox: how does the output size change with the stride, the padding and the
dilation? Can you predict it with the formula before moving a slider?
"""
