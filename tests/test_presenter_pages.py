"""Presenter mode applied evenly (issue 16, finding 9): every page's plotly figure goes through
ui.charts, so its text grows on a projector, and every page with controls opens them through
ui.presenter.controls, so in presenter mode they collapse and the picture comes first.

Read from the pages' source (no page is run), so a new page or chart that skips the gate fails
here in a second instead of looking small on a projector.
"""
from __future__ import annotations

import ast
from pathlib import Path

import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from ui.charts import presenter_figure

PAGES = sorted((Path(__file__).resolve().parents[1] / "pages").glob("*.py"))
# Streamlit's input widgets (buttons and downloads act, they set nothing up)
WIDGETS = {"selectbox", "multiselect", "slider", "select_slider", "radio", "checkbox",
           "toggle", "number_input", "text_input", "text_area", "segmented_control", "pills",
           "color_picker", "date_input", "time_input"}


def calls(tree: ast.AST):
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def imported_from(tree: ast.AST, module: str) -> set[str]:
    return {alias.asname or alias.name for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == module
            for alias in node.names}


def parsed(path: Path) -> ast.AST:
    return ast.parse(path.read_text(), filename=str(path))


def test_the_pages_are_found():
    assert {p.stem for p in PAGES} >= {"overview", "feature_maps", "filters", "heatmaps", "lime",
                                       "compare", "sanity", "dataset"}


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_every_plotly_chart_goes_through_ui_charts(path):
    tree = parsed(path)
    direct = [node.lineno for node in calls(tree) if isinstance(node.func, ast.Attribute)
              and node.func.attr == "plotly_chart"]
    assert not direct, (f"{path.name} lines {direct}: st.plotly_chart (or a column's) skips "
                        "presenter mode's chart text; use ui.charts.plotly_chart")
    figures = [node for node in calls(tree) if isinstance(node.func, ast.Attribute)
               and node.func.attr == "Figure"]
    if figures:  # a page that makes a figure shows it through the gate
        assert "plotly_chart" in imported_from(tree, "ui.charts"), path.name
        assert any(isinstance(node.func, ast.Name) and node.func.id == "plotly_chart"
                   for node in calls(tree)), path.name


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_every_page_with_widgets_opens_them_through_presenter_controls(path):
    tree = parsed(path)
    widgets = sorted(node.lineno for node in calls(tree)
                     if isinstance(node.func, ast.Attribute) and node.func.attr in WIDGETS)
    if not widgets:
        return  # Overview: nothing to set
    assert "controls" in imported_from(tree, "ui.presenter"), path.name
    opened = sorted(node.lineno for node in calls(tree)
                    if isinstance(node.func, ast.Name) and node.func.id == "controls")
    assert opened, path.name
    # the page's first widget sits in its controls, not above them
    assert opened[0] <= widgets[0], (path.name, opened[0], widgets[0])


def test_a_picture_keeps_its_height_and_its_text_still_grows():
    figure = go.Figure(go.Image(z=[[[0, 0, 0]]]))
    figure.update_layout(height=134, title=dict(text="t", font=dict(size=14)))
    shown = presenter_figure(figure, grow=False)
    assert shown.layout.height == 134
    assert shown.layout.title.font.size == 17.5
    assert presenter_figure(figure).layout.height == 168  # 134 x 1.25 = 167.5


def _controls_page():
    import streamlit as st

    from ui.presenter import controls

    st.session_state["presenter"] = st.query_params.get("presenter") == "1"
    box = controls("Box")
    box.slider("a", 0, 9, 1, key="a")
    controls("Plain", normal="plain").slider("b", 0, 9, 2, key="b")
    with controls("Open", normal="expander"):
        st.slider("c", 0, 9, 3, key="c")
    controls("Into", normal="plain", into=box).slider("d", 0, 9, 4, key="d")


def blocks(at):
    """(kind, label, where the widgets a-d are) of the main area's top-level blocks."""
    out = []
    for node in at.main.children.values():
        keys = sorted(w.key for w in node.get("slider"))
        if node.type == "expander":
            out.append(("expander", node.label, node.proto.expanded, keys))
        else:
            out.append(("container", node.proto.flex_container.border, keys))
    return out


def test_controls_collapse_in_presenter_mode_and_look_as_before_otherwise():
    at = AppTest.from_function(_controls_page)
    at.run()
    assert not at.exception
    assert blocks(at) == [("container", True, ["a"]), ("container", False, ["b"]),
                          ("expander", "Open", True, ["c"]), ("container", False, ["d"])]
    at.query_params["presenter"] = "1"
    at.run()
    assert not at.exception
    assert blocks(at) == [("expander", "Box", False, ["a", "d"]),
                          ("expander", "Plain", False, ["b"]),
                          ("expander", "Open", False, ["c"])]
    assert [at.slider(key=k).value for k in "abcd"] == [1, 2, 3, 4]


def _columns_page():
    import streamlit as st

    from ui.presenter import control_columns

    st.session_state["presenter"] = st.query_params.get("presenter") == "1"
    for i, column in enumerate(control_columns(st, 5, widest=3)):
        column.slider(f"e{i}", 0, 9, i, key=f"e{i}")


def test_a_row_of_controls_wraps_in_presenter_mode_only():
    at = AppTest.from_function(_columns_page)
    at.run()

    def rows():
        return [[sorted(w.key for w in column.get("slider")) for column in row.children.values()]
                for row in at.main.children.values()]

    assert rows() == [[["e0"], ["e1"], ["e2"], ["e3"], ["e4"]]]
    at.query_params["presenter"] = "1"
    at.run()
    # three a row, the last row as wide as the first (an empty third column)
    assert rows() == [[["e0"], ["e1"], ["e2"]], [["e3"], ["e4"], []]]
    assert [at.slider(key=f"e{i}").value for i in range(5)] == [0, 1, 2, 3, 4]
