"""AppTest for the LIME page, on a hand-built model standing in for the demo model.

The sidebar's "demo" choice is patched to load a 32x32 model that only looks at the red channel
inside a box (see tests/test_lime_explain.py); what the page shows is checked against the
library called directly with the same parameters.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import viz_core.runtime.workbench
from ui.state import SELECTION_KEY
from tests.app.media import capture_media, png_of, values
from tests.conftest import wrap
from tests.test_lime_explain import red_square_model
from viz_core.inputs.intake import load_image
from viz_core.methods.lime import (
    evidence_mask,
    explanation_stability,
    fit_explanation,
    perturbed_predictions,
)
from viz_core.render.lime_view import display_factor, enlarge, evidence_image
from viz_core.inputs.samples import list_samples, sample_bytes
from viz_core.methods.superpixels import superpixels


@pytest.fixture
def app(monkeypatch):
    """AppTest of app.py on the LIME page, the stand-in model and the captured media files."""
    from ui.state import workbench

    loaded = wrap(red_square_model(), labels=("background", "red square"), name="demo")
    monkeypatch.setattr(viz_core.runtime.workbench, "load_builtin_model",
                        lambda name, weights="imagenet", **kw: loaded)
    media = capture_media(monkeypatch)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=120)
    at.run()
    at.switch_page("pages/lime.py")
    at.run()
    assert not at.exception, at.exception
    yield at, loaded, media
    workbench.clear()




def selected_image(at):
    """The image the sidebar selected (read from the session: after ``switch_page`` AppTest
    leaves ``at.sidebar`` empty)."""
    image = at.session_state[SELECTION_KEY].image
    assert image.name == "circle"  # the sidebar's default for the demo model
    return load_image(sample_bytes(image.name), image.name)


def library(loaded, at, seed=0, classes=None):
    """The explanation computed directly, with the parameters the page shows."""
    view = loaded.view(selected_image(at))
    seg = superpixels(view, algorithm=at.selectbox(key="lime_algorithm").value,
                      n_superpixels=at.slider(key="lime_superpixels").value,
                      compactness=at.slider(key="lime_compactness").value, seed=seed)
    pp = perturbed_predictions(loaded, view, seg, samples=at.select_slider(key="lime_samples").value,
                               hide=at.selectbox(key="lime_hide").value, seed=seed)
    if classes is None:
        classes = (at.selectbox(key="lime_class_1").value, at.selectbox(key="lime_class_2").value)
    return view, seg, fit_explanation(loaded, pp, classes)


def test_superpixels_then_run_then_display_changes_without_rerunning(app):
    at, loaded, media = app
    from ui.state import workbench

    assert at.title[0].value == "LIME"
    assert at.button(key="lime_run").label == "Run LIME"
    assert "press **Run LIME**" in at.info[0].value
    view = loaded.view(selected_image(at))
    count = superpixels(view, n_superpixels=35, compactness=10.0).count
    captions = [c for img in at.get("image") for c in img.captions]
    assert any(c.startswith(f"{count} superpixels (slic, target 35)") for c in captions)

    at.select_slider(key="lime_samples").set_value(100)
    at.button(key="lime_run").click().run()
    assert not at.exception, at.exception
    view, seg, expected = library(loaded, at)
    assert expected.class_indices == (1, 0)  # most probable first, then the other one
    captions = [c for img in at.get("image") for c in img.captions]
    for p, r2 in zip(expected.probabilities, expected.r2):
        assert any(c.startswith(f"model p = {p:.1%} · linear fit R² = {r2:.2f}") for c in captions)

    # The bar chart shows every superpixel's weight, sorted by the first class's weight.
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    order = np.argsort(-expected.weights[0], kind="stable")
    assert spec["data"][0]["x"] == [f"#{i}" for i in order]
    np.testing.assert_allclose(values(spec["data"][0]["y"]), expected.weights[0][order], atol=1e-6)
    np.testing.assert_allclose(values(spec["data"][1]["y"]), expected.weights[1][order], atol=1e-6)

    # Display options: nothing is recomputed, and the download is the chosen rendering.
    misses = workbench().results.stats.misses
    at.slider(key="lime_features").set_value(2).run()
    at.toggle(key="lime_negative").set_value(True).run()
    at.radio(key="lime_style").set_value("fill").run()
    at.radio(key="lime_rest").set_value("dim").run()
    assert not at.exception
    assert workbench().results.stats.misses == misses
    assert not at.info  # the explanation stays on screen
    factor = display_factor(*view.pixels.shape[:2])
    mask = enlarge(evidence_mask(expected, 1, num_features=2, positive_only=False), factor)
    want = evidence_image(enlarge(view.display, factor, smooth=True), mask,
                          style="fill", rest="dim", width=factor + 1)
    assert (mask != 0).sum() > 0 and (want != enlarge(view.display, factor, smooth=True)).any()
    button = next(b for b in at.get("download_button") if b.key == "lime_download_1")
    np.testing.assert_array_equal(png_of(media, button), want)

    # Another second class needs only lime's cheap fit, not the model.
    at.selectbox(key="lime_class_2").set_value(-1).run()
    assert not at.exception
    assert workbench().results.stats.misses == misses + 1
    assert len([b for b in at.get("download_button") if b.key.startswith("lime_download")]) == 1


def test_stability_runs_two_more_seeds_and_shows_the_jaccard(app):
    at, loaded, _ = app
    at.select_slider(key="lime_samples").set_value(100)
    at.checkbox(key="lime_stability").check().run()
    assert at.button(key="lime_run").label == "Run LIME (3 seeds)"
    at.button(key="lime_run").click().run()
    assert not at.exception, at.exception
    assert at.button(key="lime_run").disabled  # everything is cached now
    runs = [library(loaded, at, seed=s)[2] for s in (0, 1, 2)]
    shown = {m.label: m.value for m in at.metric}
    for k in (1, 0):
        result = explanation_stability(runs, k, 3)
        assert shown[f"{loaded.label(k)}: top-3 agreement"] == f"{result.mean_jaccard:.2f}"


def test_a_new_image_starts_from_its_own_top_classes(app):
    at, loaded, _ = app
    top = at.selectbox(key="lime_class_1").value
    at.selectbox(key="lime_class_1").set_value(1 - top).run()  # the runner-up first
    assert at.selectbox(key="lime_class_1").value == 1 - top
    assert at.selectbox(key="lime_class_2").value == top  # the other class, not "none"
    image = at.sidebar.selectbox(key="image")
    new = next(s.name for s in list_samples() if s.kind == "shapes" and s.name != image.value)
    image.set_value(new).run()
    assert not at.exception
    view = loaded.view(load_image(sample_bytes(new), new))
    p = np.asarray(loaded.model(loaded.batch([view]))).ravel()
    ranked = [int(k) for k in np.argsort(-p, kind="stable")]
    assert at.selectbox(key="lime_class_1").value == ranked[0]
    assert at.selectbox(key="lime_class_2").value == ranked[1]


def test_stability_after_a_run_computes_only_the_two_missing_seeds_once(app, monkeypatch):
    """The page's plan names one step per seed: after a one-seed run, stability's job runs the
    two missing seeds only (once each, none for the drawing), and the bundle's command asks
    for the same seed, samples and stability."""
    import functools

    import ui.export
    import viz_core.methods.lime

    at, loaded, _ = app
    seeds, made = [], []
    direct = viz_core.methods.lime.perturbed_predictions

    @functools.wraps(direct)  # the same name: the same cache key
    def counted(*args, seed=0, **kwargs):
        seeds.append(seed)
        return direct(*args, seed=seed, **kwargs)

    monkeypatch.setattr(viz_core.methods.lime, "perturbed_predictions", counted)
    monkeypatch.setattr(ui.export, "bundle_button",
                        lambda command, options, *a, **kw: made.append((command, list(options))))
    at.select_slider(key="lime_samples").set_value(100)
    at.button(key="lime_run").click().run()
    assert seeds == [0]
    at.checkbox(key="lime_stability").check().run()
    assert not at.exception, at.exception
    assert at.button(key="lime_run").label == "Run LIME (2 seeds)"
    assert "Press **Run LIME** to compute the other two seeds." in [i.value for i in at.info]
    at.button(key="lime_run").click().run()
    assert not at.exception, at.exception
    assert seeds == [0, 1, 2] and at.button(key="lime_run").disabled
    runs = [library(loaded, at, seed=s)[2] for s in (0, 1, 2)]
    k = at.selectbox(key="lime_class_1").value
    shown = {m.label: m.value for m in at.metric}
    assert shown[f"{loaded.label(k)}: top-3 agreement"] == (
        f"{explanation_stability(runs, k, 3).mean_jaccard:.2f}")
    command, options = made[-1]
    assert command == "lime" and "--stability" in options
    assert options[options.index("--seed") + 1] == "0"
    assert options[options.index("--samples") + 1] == "100"
