"""AppTest for the Dataset page on the built-in samples: summary, confusion matrix, galleries,
mean maps and the shortcut finder, checked against viz_core called directly."""
from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from viz_core.dataset.engine import DEFAULT_BATCH_SIZE, run_dataset
from viz_core.models.catalog import load_builtin_model
from viz_core.dataset.readers import sample_dataset
from viz_core.dataset.shortcuts import find_shortcuts


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


@pytest.fixture(scope="module")
def shortcut():
    """The shortcut model's run over the 48-image shortcut sample, as the page makes it."""
    model = load_builtin_model("shortcut_demo")
    data = sample_dataset("shortcut", model.labels, count=48)
    return data, run_dataset(model, data)


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
    assert [b.proto.label for b in at.get("download_button")] == ["Export bundle"]


def test_the_shortcut_sample_is_flagged(app, shortcut):
    at = app
    at.radio(key="ds_source").set_value("shortcut").run()
    at.select_slider(key="ds_count").set_value(48).run()
    at.button(key="ds_run").click().run()
    assert not at.exception, at.exception
    _, run = shortcut
    report = find_shortcuts(run.maps, run.predicted, run.classes)
    assert report.flagged and all(c.label == "star" for c in report.flagged)
    warnings = [w.value for w in at.warning]
    assert len(warnings) == len(report.flagged)
    assert all("star" in w and "top left corner" in w for w in warnings)
    assert {m.label: m.value for m in at.metric}["Accuracy"] == f"{run.accuracy:.1%}"


def select(at, key: str, state: dict):
    """Rerun as if the user had selected in the chart or table ``key``: AppTest cannot click a
    plotly chart or a table row, so the selection goes in as the browser would send it (the
    widget's JSON state), beside every other widget's current value."""
    (element,) = [e for e in list(at.get("plotly_chart")) + list(at.get("dataframe"))
                  if e.proto.id.endswith(key)]
    states = at._tree.get_widget_states()
    widget = states.widgets.add()
    widget.id, widget.string_value = element.proto.id, json.dumps(state)
    return at._run(states)


def test_a_confusion_cell_clicked_shows_exactly_its_images(app, shortcut):
    """On the shortcut sample (see above): the cell 'star labelled, predicted square'."""
    at = app
    _, run = shortcut
    star, square = run.classes.index("star"), run.classes.index("square")
    expected = [i for i in range(len(run))
                if run.label_indices[i] == star and run.predicted[i] == square]
    assert expected  # the shortcut model misses untagged stars
    point = {"curve_number": 1, "point_number": 13, "point_index": 13, "x": "square",
             "y": "star", "customdata": [star, square, len(expected)]}
    select(at, "ds_confusion_chart", {"selection": {"points": [point], "point_indices": [13],
                                                    "box": [], "lasso": []}})
    assert not at.exception, at.exception
    assert at.selectbox(key="ds_cell_label").value == "star"
    assert at.selectbox(key="ds_cell_pred").value == "square"
    galleries = [[c.split(":")[0].replace("\u200b", "") for c in e.captions] for e in at.get("image")]
    assert sorted(run.paths[i] for i in expected) in [sorted(g) for g in galleries]
    assert any(c.value.startswith(f"{len(expected)} image(s) labelled star and predicted as "
                                  "square") for c in at.caption)
    # the boxes stay the keyboard's way: they win until the chart is clicked again
    at.selectbox(key="ds_cell_pred").set_value("star").run()
    assert at.selectbox(key="ds_cell_pred").value == "star"


def test_an_image_opened_from_the_table_becomes_the_sidebars_image(app, shortcut):
    """Choosing a row of the shortcut run's table and 'Open in the other pages' switches to
    Class heatmaps with that image and the shortcut model in the sidebar."""
    at = app
    data, run = shortcut
    select(at, "ds_table", {"selection": {"rows": [5], "columns": [], "cells": []}})
    assert not at.exception, at.exception
    (button,) = [b for b in at.button if b.key == "ds_open_go"]
    assert button.label == f"Open {run.paths[5]} in the other pages"
    button.click().run()
    assert not at.exception, at.exception
    assert at.session_state["model"] == "shortcut_demo" and at.session_state["image"] == "dataset"
    assert at.title[0].value == "Class heatmaps"
    image = at.session_state["_dataset_image"][1]
    entry = {e.path: e for e in data.entries}[run.paths[5]]
    np.testing.assert_array_equal(image.pixels, data.load(entry).pixels)
    assert at.selectbox(key="image").value == "dataset"
    assert at.selectbox(key="model").value == "shortcut_demo"


def test_the_method_box_lists_the_registry_and_runs_the_chosen_method(app):
    """The method box offers every layer, pixel-gradient and relevance method of the registry; choosing
    LayerCAM runs the engine with it and names it above the mean maps."""
    from viz_core.methods import registry as methods

    at = app
    at.switch_page("pages/dataset.py")  # the test before opened Class heatmaps
    at.run()
    at.selectbox(key="model").set_value("demo").run()  # ... with the shortcut model
    at.radio(key="ds_source").set_value("shapes").run()
    box = at.selectbox(key="ds_method")
    assert box.options == [methods.title(n) for n in methods.names("layer")
                           + methods.names("pixel-gradient") + methods.names("relevance")]
    assert box.value == "gradcam"
    at.select_slider(key="ds_count").set_value(24).run()
    box.set_value("layercam").run()
    if any(b.key == "ds_run" for b in at.button):
        at.button(key="ds_run").click().run()
    assert not at.exception, at.exception
    assert any(c.value.startswith("The mean LayerCAM map") for c in at.caption)
    model = load_builtin_model("demo")
    data = sample_dataset("shapes", model.labels, count=24)
    direct = run_dataset(model, data, method="layercam")
    assert direct.method == "layercam"
    from ui.state import workbench
    assert workbench().is_cached(run_dataset, model, data, batch_size=DEFAULT_BATCH_SIZE,
                                 method="layercam")
    assert {m.label: m.value for m in at.metric}["Accuracy"] == f"{direct.accuracy:.1%}"
    gradcam = run_dataset(model, data)
    assert np.abs(gradcam.maps - direct.maps).max() > 0.05


def test_the_plan_names_the_job_the_cache_and_the_bundles_command(tmp_path):
    """One plan: its key is the run's job, its results are the run's, and the export bundle's
    command (the plan's options with the page's groups) makes the same run again."""
    import io
    import zipfile

    from ui.dataset_plan import dataset_options, run_plan, view_plan
    from viz_core.cli.bundle import export_bundle
    from viz_core.runtime.workbench import Workbench

    bench = Workbench(disk_dir=tmp_path)
    model = load_builtin_model("demo")
    data = sample_dataset("shapes", model.labels, count=24)
    options = dataset_options(model, "shapes", method="gradcam", count=24)
    plan = run_plan(model, data, options, method="gradcam")
    assert plan.key() == run_plan(model, data, options, method="gradcam").key()
    assert plan.key() != run_plan(model, data, options, method="layercam").key()
    assert not plan.ready(bench)
    plan.run(bench)
    (run,) = plan.results(bench)
    assert bench.is_cached(run_dataset, model, data, batch_size=DEFAULT_BATCH_SIZE,
                           method="gradcam")
    view = view_plan(plan, 2)
    assert view.cli() == ["dataset", "--model", "demo", "--data", "sample:shapes:24",
                          "--method", "gradcam", "--batch-size", "32", "--clusters", "2"]
    _, report = view.results(bench)
    made = zipfile.ZipFile(io.BytesIO(export_bundle(view.command, view.options, [], {},
                                                    bench=bench)))
    assert made.read("command.txt").decode() == (
        "python -m viz_core dataset --model demo --data sample:shapes:24 --method gradcam "
        "--batch-size 32 --clusters 2 --out pictures\n")
    summary = json.loads(made.read("pictures/summary.json"))
    assert [r["image"] for r in summary["results"]] == list(run.paths)
    assert [r["class_index"] for r in summary["results"]] == run.predicted.tolist()
    assert summary["accuracy"] == round(run.accuracy, 6) == 1.0
    assert [c["size"] for c in summary["clusters"]] == [c.size for c in report.clusters]
