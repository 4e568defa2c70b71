"""Page settings survive page switches, and Class heatmaps after a visit to LIME shows the map
a fresh session shows (it used to fall back to the model's input layer and fail).

Every value widget of the pages keeps its own state the Streamlit way (``persist_state``, and
``bind`` or a named link, :mod:`ui.settings`); no key rules. Runs the real demo model (small,
150 px) so the layer list is the one users see.
"""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.media import capture_media, png_of
from viz_core.models.catalog import DEMO_MODEL_FILE

ROOT = Path(__file__).resolve().parents[2]
VALUE_WIDGETS = {"selectbox", "radio", "slider", "select_slider", "toggle", "checkbox",
                 "number_input", "segmented_control", "multiselect", "pills", "text_input",
                 "text_area"}


def keeps_its_state(call: ast.Call) -> bool:
    """Whether a widget call passes ``**LINKED``, ``**KEPT``, ``**named(...)``,
    ``**named_many(...)`` or keyword arguments made by them (``**first_kwargs``)."""
    for kw in call.keywords:
        if kw.arg is not None:
            continue
        value = kw.value
        if isinstance(value, ast.Name) and (value.id in ("LINKED", "KEPT")
                                            or value.id.endswith("_kwargs")):
            return True
        if isinstance(value, ast.Call) and getattr(value.func, "id", "") in (
                "named", "named_many"):
            return True
    return False


def value_widgets():
    """(file, line, widget function, keeps its state) for every value widget in pages/ and ui/
    that has a key (a widget without one is drawn fresh by design)."""
    found = []
    files = sorted((ROOT / "pages").glob("*.py")) + sorted((ROOT / "ui").glob("*.py"))
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(
                node.func, "id", "")
            if func not in VALUE_WIDGETS:
                continue
            keyed = any(kw.arg == "key" or kw.arg is None for kw in node.keywords)
            if keyed:
                found.append((path.name, node.lineno, func, keeps_its_state(node)))
    return found


def test_every_keyed_value_widget_keeps_its_own_state():
    widgets = value_widgets()
    assert len(widgets) >= 60  # the scan found the pages' widgets
    assert [w for w in widgets if not w[3]] == []


def heatmap_pictures(at, media) -> list[np.ndarray]:
    """Every picture on the page (overlays and colour bar), decoded."""
    return [png_of(media, url) for image in at.get("image") for url in image.value]


@pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not built")
def test_settings_survive_other_pages_and_heatmaps_match_a_fresh_session(monkeypatch):
    from ui.state import workbench

    media = capture_media(monkeypatch)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=300)
    at.run()
    at.switch_page("pages/heatmaps.py").run()
    assert not at.exception and not at.error, (at.exception, at.error)
    at.selectbox(key="cam_layer").set_value("conv2d_3").run()
    at.selectbox(key="cam_colormap").set_value("magma").run()
    at.slider(key="cam_threshold").set_value(0.2).run()
    at.slider(key="cam_opacity").set_value(0.7).run()
    assert not at.exception and not at.error, (at.exception, at.error)
    shown = heatmap_pictures(at, media)
    assert len(shown) >= 2

    at.switch_page("pages/lime.py").run()
    at.number_input(key="lime_seed").set_value(7).run()
    at.slider(key="lime_superpixels").set_value(20).run()
    at.switch_page("pages/feature_maps.py").run()
    at.selectbox(key="fm_cmap").set_value("magma").run()
    at.slider(key="fm_per_row").set_value(4).run()
    for page in ("pages/overview.py", "pages/compare.py", "pages/sanity.py",
                 "pages/filters.py"):
        at.switch_page(page).run()
    assert not at.exception, at.exception

    at.switch_page("pages/heatmaps.py").run()
    assert not at.exception and not at.error, (at.exception, at.error)
    assert (at.selectbox(key="cam_layer").value, at.selectbox(key="cam_colormap").value,
            at.slider(key="cam_threshold").value, at.slider(key="cam_opacity").value) == (
        "conv2d_3", "magma", 0.2, 0.7)
    again = heatmap_pictures(at, media)
    at.switch_page("pages/lime.py").run()
    assert (at.number_input(key="lime_seed").value,
            at.slider(key="lime_superpixels").value) == (7, 20)
    at.switch_page("pages/feature_maps.py").run()
    assert (at.selectbox(key="fm_cmap").value, at.slider(key="fm_per_row").value) == (
        "magma", 4)

    # A fresh session with the same settings draws the same pictures.
    fresh = AppTest.from_file("../../app.py", default_timeout=300)
    fresh.run()
    fresh.switch_page("pages/heatmaps.py").run()
    fresh.selectbox(key="cam_layer").set_value("conv2d_3").run()
    fresh.selectbox(key="cam_colormap").set_value("magma").run()
    fresh.slider(key="cam_threshold").set_value(0.2).run()
    fresh.slider(key="cam_opacity").set_value(0.7).run()
    reference = heatmap_pictures(fresh, media)
    assert len(again) == len(reference) == len(shown)
    for a, b, c in zip(again, reference, shown):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    workbench.clear()
