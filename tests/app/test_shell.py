"""AppTest for the shell (navigation + sidebar) and the Overview page."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from viz_core.models.catalog import DEMO_MODEL_FILE

pytestmark = pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not built")


def fresh_app() -> AppTest:
    at = AppTest.from_file("../../app.py", default_timeout=180)
    at.run()
    return at


def test_overview_on_demo_model_shows_card_image_and_predictions():
    at = fresh_app()
    assert not at.exception
    assert at.title[0].value == "Overview"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Input"] == "150×150×3"
    assert metrics["Conv layers"] == "4"
    table = at.dataframe[0].value
    assert list(table["type"]).count("Conv2D") == 4
    # The default image is a generated circle: the demo model must say so.
    assert at.sidebar.selectbox(key="image").value == "circle"
    chart = at.get("plotly_chart")[0]
    assert '"circle (0)"' in chart.proto.spec


def test_missing_weights_are_explained_and_random_weights_work(monkeypatch, tmp_path):
    import urllib.error
    import urllib.request

    def offline(url, timeout=None):  # never the network, also on a machine that has one
        raise urllib.error.URLError("offline in this test")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    at = fresh_app()
    at.sidebar.selectbox(key="model").set_value("mobilenet_v2").run()
    assert not at.exception
    # Not cached: random weights are preselected; asking for ImageNet explains what is missing.
    assert at.sidebar.radio(key="weights").value == "none"
    at.sidebar.radio(key="weights").set_value("imagenet").run()
    errors = [e.value for e in at.sidebar.error]
    assert any("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5" in e for e in errors)
    assert "Choose a model in the sidebar" in at.info[0].value  # the page stays usable
    at.sidebar.radio(key="weights").set_value("none").run()
    assert not at.exception and not at.sidebar.error
    assert {m.label: m.value for m in at.metric}["Input"] == "224×224×3"


def test_switching_page_keeps_the_sidebar_and_selection():
    at = fresh_app()
    at.sidebar.selectbox(key="image").set_value("star").run()
    at.switch_page("pages/heatmaps.py")
    at.run()
    assert not at.exception
    assert at.title[0].value == "Class heatmaps"
    assert at.sidebar.selectbox(key="image").value == "star"


def test_url_restores_the_view(monkeypatch):
    import ui.presenter
    from ui.state import workbench

    # Presenter mode starts the warm-up (tested in tests/test_warmup.py); here a stand-in
    # records that it started, instead of a minute of background work during the suite.
    started = []
    monkeypatch.setattr(ui.presenter, "warm_up",
                        lambda bench, **kw: started.append(bench) or 0)
    ui.presenter._preparation.clear()
    at = AppTest.from_file("../../app.py", default_timeout=180)
    at.query_params["image"] = "square"
    at.query_params["presenter"] = "1"
    at.run()
    assert not at.exception
    assert at.sidebar.selectbox(key="image").value == "square"
    assert at.sidebar.toggle(key="presenter").value is True
    assert at.query_params["image"] == "square" and at.query_params["model"] == "demo"
    ui.presenter._preparation().thread.join(timeout=10)
    assert started == [workbench()]
    ui.presenter._preparation.clear()


def test_upload_choice_without_a_file_asks_for_one():
    at = fresh_app()
    at.sidebar.selectbox(key="image").set_value("upload").run()
    assert not at.exception
    assert at.info[0].value == "Upload an image file in the sidebar."
