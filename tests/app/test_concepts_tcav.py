"""AppTest for the Concepts page's TCAV tab on the shortcut demo: the corner-tag example concept
against plain scenes, run through the job queue, shows the backend's score, random score and
p-value, says "significant" for star and "downwards" for circle, and draws the runs' chart."""
from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ui.concepts_tcav import score_counts
from viz_core.dataset.readers import sample_dataset
from viz_core.dataset.tcav_run import example_images, tcav_run
from viz_core.models.catalog import load_builtin_model

RUNS = 20
COUNT = 20


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    import os

    from ui.state import workbench

    os.environ["CNN_VIZ_CACHE"] = str(tmp_path_factory.mktemp("tcav_cache"))
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=300)
    at.run()
    at.switch_page("pages/concepts.py")
    at.run()
    assert not at.exception, at.exception
    yield at
    workbench.clear()
    os.environ.pop("CNN_VIZ_CACHE", None)


def expected(class_name):
    model = load_builtin_model("shortcut_demo")
    return tcav_run(model, sample_dataset("shortcut", model.labels, count=200),
                    model.class_index(class_name), example_images("tag", model.labels),
                    example_images("plain", model.labels), "conv2d_4", runs=RUNS,
                    class_images=COUNT).result


def run_tcav(at, class_name):
    at.selectbox(key="tcav_class") \
        .set_value(class_name)
    at.slider(key="tcav_runs").set_value(RUNS)
    at.select_slider(key="tcav_count").set_value(COUNT).run()
    assert not at.exception, at.exception
    at.button(key="tcav_run").click().run()
    assert not at.exception, at.exception
    return {m.label: m.value for m in at.metric}


def _keys(at):
    return [w.key for w in at.selectbox]


def test_the_tag_scores_star_high_and_significant(app):
    at = app
    assert at.radio(key="tcav_class_source").value == "shortcut"
    assert at.radio(key="tcav_concept_source").value == "example"
    assert at.radio(key="tcav_random_source").value == "example"
    want = expected("star")
    metrics = run_tcav(at, "star")
    assert metrics["TCAV score"] == f"{want.score:.2f}" == "1.00"
    assert metrics["Random directions"] == f"{want.random_score:.2f}"
    assert metrics["p-value"] == f"{want.p_value:.3g}"
    assert want.significant
    assert any(s.value.startswith("**Significant**: for 100% of the images of star")
               for s in at.success)
    assert len(at.get("plotly_chart")) >= 1
    assert any("Directions, not sizes" in c.value for c in at.caption)
    # every run counted: the 20 runs at 1.0 are one dot labelled x20, not one unlabelled dot
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    concept = figure["data"][0]
    values, counts = np.unique(np.round(want.concept_scores, 2), return_counts=True)
    assert concept["x"] == list(values) == [1.0]
    assert concept["text"] == [f"×{c}" for c in counts] == [f"×{RUNS}"]
    random = figure["data"][1]
    assert sum(int(t[1:]) for t in random["text"]) == RUNS
    assert sorted(random["x"]) == sorted(set(np.round(want.random_scores, 2).tolist()))
    # the preview's file names whole, in one line (they broke mid-word under 64 px images)
    preview = next(c.value for c in at.caption if c.value.startswith("The concept,"))
    assert "circle_000.png" in preview and "triangle_017.png" in preview


def test_score_counts_groups_equal_runs():
    values, counts = score_counts([1.0, 0.5, 1.0, 0.504, 0.25])
    assert values.tolist() == [0.25, 0.5, 1.0] and counts.tolist() == [1, 2, 2]


def test_the_same_concept_for_circle_is_low(app):
    at = app
    want = expected("circle")
    metrics = run_tcav(at, "circle")
    assert metrics["TCAV score"] == f"{want.score:.2f}"
    assert want.score <= 0.2
    shown = [w.value for w in at.warning] + [i.value for i in at.info]
    verdict = "**Significant, downwards**" if want.significant else "**Not significant**"
    assert any(v.startswith(verdict) for v in shown)


def test_a_tcav_run_is_made_once_and_the_bundle_names_it(app, monkeypatch):
    """The tab's plan names the run once: the job computes it (one call), the tab draws it
    from the cache on later runs, and the bundle's command asks for the same class, layer,
    runs, images and example sets."""
    import functools

    import ui.concepts_export
    import ui.concepts_tcav
    from ui.concepts_export import set_zip_name, tcav_options

    at = app
    calls, made = [], []

    @functools.wraps(tcav_run)  # the same name: the same cache key
    def counted(model, data, class_index, *args, **kwargs):
        calls.append((class_index, kwargs["runs"], kwargs["class_images"]))
        return tcav_run(model, data, class_index, *args, **kwargs)

    monkeypatch.setattr(ui.concepts_tcav, "tcav_run", counted)
    monkeypatch.setattr(ui.concepts_export, "bundle_button",
                        lambda command, options, *a, **kw: made.append((command, list(options))))
    at.selectbox(key="tcav_class").set_value("star")
    at.slider(key="tcav_runs").set_value(3)
    at.select_slider(key="tcav_count").set_value(COUNT).run()
    at.button(key="tcav_run").click().run()
    assert not at.exception, at.exception
    model = load_builtin_model("shortcut_demo")
    assert calls == [(model.class_index("star"), 3, COUNT)]
    at.run()
    assert len(calls) == 1 and not any(b.key == "tcav_run" for b in at.button)
    assert "TCAV score" in [m.label for m in at.metric]
    assert made[-1] == ("tcav", tcav_options(
        ["--model", "shortcut_demo"], "shortcut", class_name="star", layer="conv2d_4", runs=3,
        count=COUNT,
        concept_zip=set_zip_name("concept", f"{example_images('tag', model.labels).name}.zip"),
        random_zip=set_zip_name("random", f"{example_images('plain', model.labels).name}.zip"),
        sample_count=200))


def test_a_refused_folder_leaves_the_other_inputs_drawn(app):
    # a concept folder that is not there is refused, and the random images' uploader is still
    # drawn (before, the refusal came first and a ZIP given there was lost)
    app.radio(key="tcav_concept_source").set_value("folder")
    app.radio(key="tcav_random_source").set_value("upload").run()
    app.text_input(key="tcav_concept_folder").input("/no/such/folder").run()
    assert not app.exception, app.exception
    assert [e.value for e in app.error] == ["There is no folder '/no/such/folder' on the server."]
    uploaders = [e.proto.label for e in app.get("file_uploader")]
    assert "Random images (.zip)" in uploaders, uploaders
    app.radio(key="tcav_concept_source").set_value("example")
    app.radio(key="tcav_random_source").set_value("example").run()
    assert not app.error
