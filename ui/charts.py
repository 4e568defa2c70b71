"""One place every page's plotly chart goes through, so presenter mode can make the chart's
own text larger too.

Streamlit's chart theme already follows presenter mode's larger root font for the text a
figure leaves at its default size (ticks, axis titles). Sizes a page sets itself (a title at
14 px, a legend at 11 px, numbers in a heatmap's cells) are fixed pixels and stayed small on a
projector; here they are scaled like the rest of the page, and never drawn smaller than the
chart's default text. The figure's height grows with them, so the plot area keeps its size.
"""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from .presenter import PRESENTER_SCALE, presenter_on

#: Plotly's default text size in px; Streamlit draws it at this times the root font scale.
DEFAULT_CHART_PX = 12


def _scale_fonts(node, scale: float, smallest: float) -> None:
    """Scale, in place, every explicit ``size`` of a font-like entry (``font``, ``tickfont``,
    ``textfont``, ...) in a figure's dict; per-point size lists are left alone."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("font") and isinstance(value, dict) and isinstance(
                    value.get("size"), (int, float)) and not isinstance(value["size"], bool):
                value["size"] = round(max(smallest, value["size"] * scale), 2)
            _scale_fonts(value, scale, smallest)
    elif isinstance(node, list):
        for item in node:
            _scale_fonts(item, scale, smallest)


def presenter_figure(figure: go.Figure, scale: float = PRESENTER_SCALE, *,
                     grow: bool = True) -> go.Figure:
    """A copy of ``figure`` with its explicit font sizes times ``scale`` (at least the chart's
    default text size times ``scale``) and, when ``grow``, its height too; the figure itself
    is not changed."""
    data = figure.to_dict()
    _scale_fonts(data, scale, DEFAULT_CHART_PX * scale)
    layout = data.setdefault("layout", {})
    if grow and isinstance(layout.get("height"), (int, float)):
        layout["height"] = round(layout["height"] * scale)
    return go.Figure(data)


def plotly_chart(figure: go.Figure, where=None, *, picture: bool = False, **kwargs):
    """``st.plotly_chart`` (or ``where.plotly_chart``, e.g. a column) of ``figure``, with its
    text scaled in presenter mode; returns what Streamlit returns (the selection event when
    ``on_select`` is given).

    Every page's plotly figure goes through here (tests/test_presenter_pages.py checks).
    ``picture``: the figure is an image whose height the page sized to the image's aspect
    ratio (a grid of feature maps or filter patterns): its height stays, as a taller chart
    would only add empty space beside the picture.
    """
    shown = presenter_figure(figure, grow=not picture) if presenter_on() else figure
    return (where if where is not None else st).plotly_chart(shown, **kwargs)
