"""AppTest for the Dataset page on the built-in samples: summary, confusion matrix, galleries,
mean maps and the shortcut finder, checked against viz_core called directly."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from viz_core.batch import run_dataset
from viz_core.catalog import load_builtin_model
from viz_core.dataset import sample_dataset
from viz_core.shortcuts import find_shortcuts


@pytest.fixture(scope="module")
def app():
    from ui.state import workbench

    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=240)
    at.run()
    at.switch_page("pages/dataset.py")
    at.run()
    assert not at.exception, at.exception
    yield at
    workbench.clear()


def test_the_page_runs_on_the_shapes_sample(app):
    at = app
    at.select_slider(key="ds_count").set_value(24).run()
    assert [b.label for b in at.button if b.key == "ds_run"] == ["Run on the dataset"]
    at.button(key="ds_run").click().run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    model = load_builtin_model("demo")
    expected = run_dataset(model, sample_dataset("shapes", model.labels, count=24))
    assert metrics["Images"] == "24"
    assert metrics["Accuracy"] == f"{expected.accuracy:.1%}" == "100.0%"
    assert metrics["Skipped files"] == "0"
    table = at.dataframe[0].value
    assert table["labelled images"].tolist() == [6, 6, 6, 6]
    charts = {c.proto.id for c in at.get("plotly_chart")}
    assert len(charts) == 2
    assert any("No mistakes" in c.value for c in at.caption)
    assert at.success[0].value.startswith("No group's evidence concentrates in a corner")


def test_the_shortcut_sample_is_flagged(app):
    at = app
    at.radio(key="ds_source").set_value("shortcut").run()
    at.select_slider(key="ds_count").set_value(48).run()
    at.button(key="ds_run").click().run()
    assert not at.exception, at.exception
    model = load_builtin_model("shortcut_demo")
    run = run_dataset(model, sample_dataset("shortcut", model.labels, count=48))
    report = find_shortcuts(run.maps, run.predicted, run.classes)
    assert report.flagged and all(c.label == "star" for c in report.flagged)
    warnings = [w.value for w in at.warning]
    assert len(warnings) == len(report.flagged)
    assert all("star" in w and "top left corner" in w for w in warnings)
    assert {m.label: m.value for m in at.metric}["Accuracy"] == f"{run.accuracy:.1%}"
