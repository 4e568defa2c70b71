"""Shared links carry every setting that shapes a picture, and reopen the same view: the Class
heatmaps layer and threshold, the Feature maps layer (also in a block that is not the first),
and LIME's parameters. Hostile values are ignored: the widget keeps its default (Streamlit's
``bind="query-params"`` drops a value outside a widget's range or options)."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from viz_core.models.catalog import DEMO_MODEL_FILE

pytestmark = pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not built")


def opened(params: dict[str, str]) -> AppTest:
    at = AppTest.from_file("../../app.py", default_timeout=300)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_link_reopens_heatmaps_feature_maps_and_lime_as_shared():
    link = {"model": "demo", "image": "circle_and_star", "cam_layer": "conv2d_3",
            "cam_threshold": "0.2", "cam_score": "probability", "fm_layer": "max_pooling2d_3",
            "fm_per_row": "8", "lime_seed": "7", "lime_superpixels": "20",
            "lime_samples": "250", "lime_hide": "black", "lime_algorithm": "quickshift"}
    at = opened(link)
    at.switch_page("pages/heatmaps.py").run()
    assert not at.exception, at.exception
    assert (at.selectbox(key="cam_layer").value, at.slider(key="cam_threshold").value,
            at.radio(key="cam_score").value) == ("conv2d_3", 0.2, "probability")
    at.switch_page("pages/feature_maps.py").run()
    assert (at.selectbox(key="fm_layer").value, at.slider(key="fm_per_row").value) == (
        "max_pooling2d_3", 8)
    at.switch_page("pages/lime.py").run()
    assert (at.number_input(key="lime_seed").value, at.slider(key="lime_superpixels").value,
            at.select_slider(key="lime_samples").value, at.selectbox(key="lime_hide").value,
            at.selectbox(key="lime_algorithm").value) == (7, 20, 250, "black", "quickshift")
    # The address bar still holds the shared view (it is not rewritten to the defaults) ...
    for key, value in link.items():
        assert at.query_params[key] == [value] or at.query_params[key] == value, key
    # ... and copying it now gives a link that opens the same view again.
    again = opened({k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()})
    again.switch_page("pages/heatmaps.py").run()
    assert again.selectbox(key="cam_layer").value == "conv2d_3"


def test_hostile_values_are_ignored():
    at = opened({"lime_superpixels": "99999", "lime_samples": "7", "lime_seed": "-5",
                 "cam_threshold": "nan", "fm_per_row": "1e9"})
    at.switch_page("pages/lime.py").run()
    assert not at.exception, at.exception
    assert (at.slider(key="lime_superpixels").value, at.select_slider(key="lime_samples").value,
            at.number_input(key="lime_seed").value) == (35, 500, 0)  # the page's defaults
    at.switch_page("pages/heatmaps.py").run()
    assert not at.exception and at.slider(key="cam_threshold").value == 0.0
    at.switch_page("pages/feature_maps.py").run()
    assert not at.exception and at.slider(key="fm_per_row").value == 16


def test_a_link_names_the_dataset_pages_heatmap_method():
    at = opened({"model": "demo", "ds_method": "layercam"})
    at.switch_page("pages/dataset.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="ds_method").value == "layercam"
    hostile = opened({"model": "demo", "ds_method": "rm -rf /"})
    hostile.switch_page("pages/dataset.py").run()
    assert not hostile.exception and hostile.selectbox(key="ds_method").value == "gradcam"


def test_a_link_reopens_the_atlas_with_its_layer_ranking_and_unit():
    link = {"model": "demo", "atlas_layer": "conv2d_3", "atlas_k": "4", "atlas_score": "mean",
            "atlas_count": "24", "atlas_sort": "class", "atlas_unit": "7"}
    at = opened(link)
    at.switch_page("pages/atlas.py").run()
    assert not at.exception, at.exception
    assert (at.selectbox(key="atlas_layer").value, at.select_slider(key="atlas_k").value,
            at.radio(key="atlas_score").value, at.select_slider(key="atlas_count").value) == (
        "conv2d_3", 4, "mean", 24)
    # the card to open once the atlas is built: the link keeps it until then
    assert at.query_params["atlas_unit"] in ("7", ["7"])
    hostile = opened({"model": "demo", "atlas_k": "5", "atlas_count": "1e9", "atlas_unit": "-3"})
    hostile.switch_page("pages/atlas.py").run()
    assert not hostile.exception, hostile.exception
    assert (hostile.select_slider(key="atlas_k").value,
            hostile.select_slider(key="atlas_count").value) == (8, 48)
