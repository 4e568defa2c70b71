"""Page settings survive page switches, and Class heatmaps after a visit to LIME shows the map
a fresh session shows (it used to fall back to the model's input layer and fail).

Runs the real demo model (small, 150 px) so the layer list is the one users see.
"""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.media import capture_media, png_of
from ui.settings import is_setting
from viz_core.models.catalog import DEMO_MODEL_FILE

ROOT = Path(__file__).resolve().parents[2]
VALUE_WIDGETS = {"selectbox", "radio", "slider", "select_slider", "toggle", "checkbox",
                 "number_input", "segmented_control", "multiselect", "pills", "text_input"}
ACTION_WIDGETS = {"button", "download_button", "file_uploader", "plotly_chart", "dataframe",
                  "bundle_button", "download_data"}


def widget_keys():
    """(widget function, key) for every widget in pages/ and ui/ with a literal or f-string
    key; an f-string key is given with its placeholders filled by ``x``."""
    found = []
    for path in sorted((ROOT / "pages").glob("*.py")) + sorted((ROOT / "ui").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(
                node.func, "id", "")
            for kw in node.keywords:
                if kw.arg != "key":
                    continue
                if isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                    found.append((func, kw.value.value))
                elif isinstance(kw.value, ast.JoinedStr):
                    found.append((func, "".join(
                        v.value if isinstance(v, ast.Constant) else "x"
                        for v in kw.value.values)))
    return found


def test_every_value_widget_is_kept_and_no_action_widget_is_touched():
    keys = widget_keys()
    values = [k for f, k in keys if f in VALUE_WIDGETS and "_" in k and k.split("_")[0] in (
        "fm", "fp", "cam", "lime", "cmp", "san", "pg")]
    actions = [k for f, k in keys if f in ACTION_WIDGETS]
    assert len(values) >= 50 and len(actions) >= 15  # the scan found the pages' widgets
    assert [k for k in values if not is_setting(k)] == []
    assert [k for k in actions if is_setting(k)] == []
    # The sidebar's own widgets keep their state without help (drawn on every run).
    assert not any(is_setting(k) for k in ("model", "image", "second", "presenter", "weights"))


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
