"""AppTest for the Sanity check page (cascading randomisation + pointing game) on a tiny model
standing in for the demo model; what it shows is checked against viz_core called directly.

The page goes settings -> plan -> render: a cheap check runs on arrival, a slow one shows the
trained model's maps first and waits for its button; the export bundle's command and the
pointing game's command line come from the same plans as the pictures."""
from __future__ import annotations

import base64
import io
import json
import shlex
import zipfile

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import ui.cost
import viz_core.runtime.workbench
from tests.app.media import capture_media, file_of
from tests.conftest import tiny_cnn, wrap
from ui.state import SELECTION_KEY
from viz_core.metrics.choices import EDGE_CONTROL
from viz_core.inputs.intake import load_image
from viz_core.metrics.pointing import pointing_game
from viz_core.inputs.samples import sample_bytes
from viz_core.metrics.sanity import (
    DEFAULT_METHODS,
    FAST_PARAMS,
    cascading_randomisation,
    flag_rule,
    method_title,
)
from viz_core.models.targets import Target
from viz_core.render.compare import sanity_picture

LABELS = ["circle", "square", "triangle", "star"]
MEDIA: dict[str, bytes] = {}


@pytest.fixture(scope="module")
def app():
    from ui.state import workbench

    loaded = wrap(tiny_cnn(size=48, classes=4, seed=6), labels=LABELS, name="demo")
    patch = pytest.MonkeyPatch()
    patch.setattr(viz_core.runtime.workbench, "load_builtin_model",
                  lambda name, weights="imagenet", **kw: loaded)
    capture_media(patch, MEDIA)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=180)
    at.run()
    at.switch_page("pages/sanity.py")
    at.run()
    assert not at.exception, at.exception
    yield at, loaded
    workbench.clear()
    patch.undo()


def values(data) -> np.ndarray:
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"])
    return np.asarray(data, dtype="float64")


def expected_report(at, loaded):
    image = at.session_state[SELECTION_KEY].image
    view = loaded.view(load_image(sample_bytes(image.name), image.name))
    k = at.selectbox(key="san_class").value
    params = {m: FAST_PARAMS[m] for m in DEFAULT_METHODS if m in FAST_PARAMS}
    return cascading_randomisation(loaded, view, Target(k), DEFAULT_METHODS, steps=3,
                                   params=params, seed=0)


def shown(img) -> np.ndarray:
    """The picture an AppTest image element shows, (H, W, 3) uint8."""
    file_id = img.proto.imgs[0].url.rsplit("/", 1)[-1].split(".")[0]
    return np.asarray(Image.open(io.BytesIO(MEDIA[file_id])).convert("RGB"))


def test_a_cheap_check_runs_on_arrival_flags_the_control_and_draws_the_grid(app):
    at, loaded = app
    assert at.title[0].value == "Sanity check"
    assert at.slider(key="san_steps").value == 3  # head, conv_b, conv_a
    # the tiny model's check takes about a second: it ran as the page opened, no click
    assert "Run sanity check" not in [b.label for b in at.button]
    report = expected_report(at, loaded)
    # verdicts: the edge detector is flagged, as a control should be (orange: expected, not an
    # error); the others match the library's flags, a flagged one in red
    errors, warnings = [e.value for e in at.error], [w.value for w in at.warning]
    assert [w for w in warnings if w.startswith("**Edge detector (control)**: does not explain "
                                                "the model, as the control should not.")]
    control = list(report.methods).index(EDGE_CONTROL)
    assert report.flagged[control]
    assert len(errors) == sum(report.flagged) - 1
    assert len(at.success) == len(report.methods) - sum(report.flagged)
    # the similarity chart: one trace per method with the report's Spearman values
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert len(chart["data"]) == len(DEFAULT_METHODS)
    for trace, i in zip(chart["data"], range(len(report.methods))):
        np.testing.assert_allclose(values(trace["y"]), report.spearman[:, i], atol=1e-6)
    assert chart["data"][-1]["name"] == "Edge detector (control) ⚑ flagged"
    # the grid: one map per method and step (trained + 3 randomised)
    grid = [img for img in at.get("image") if img.captions]
    assert len(grid) == len(DEFAULT_METHODS) * 4
    assert grid[0].captions[0] == "trained"
    assert grid[1].captions[0] == f"step 1 · {report.spearman[1, 0]:.2f}"
    np.testing.assert_array_equal(shown(grid[1]), sanity_picture(report, "gradcam", 1))
    assert "**1** head · **2** conv_b · **3** conv_a" in " ".join(c.value for c in at.caption)
    # each row is named beside its maps, with the check's verdict
    names = [m.value for m in at.markdown if m.value.startswith("**")]
    assert names == [f"**{method_title(m)}**  \n" + (":red[**⚑ flagged**]" if flagged else
                                                      ":green[passes]")
                     for m, flagged in zip(report.methods, report.flagged)]


def test_the_export_bundle_repeats_the_pictures_shown(app):
    at, loaded = app
    at.selectbox(key="san_colormap").set_value("magma").run()
    assert not at.exception, at.exception
    report = expected_report(at, loaded)
    bundle = next(b for b in at.get("download_button") if b.proto.label == "Export bundle")
    with zipfile.ZipFile(io.BytesIO(file_of(MEDIA, bundle))) as archive:
        argv = shlex.split(archive.read("command.txt").decode())
        picture = np.asarray(Image.open(io.BytesIO(archive.read(
            next(n for n in archive.namelist() if n.endswith("_sanity_gradcam_step1.png")))
        )).convert("RGB"))
    k = at.selectbox(key="san_class").value
    assert argv[argv.index("--class") + 1] == str(k)
    assert argv[argv.index("--layers") + 1] == "3"
    assert argv[argv.index("--methods") + 1] == ",".join(DEFAULT_METHODS)
    assert argv[argv.index("--colormap") + 1] == "magma"
    # the command draws the map the page shows (the same call, the same colour map)
    grid = [img for img in at.get("image") if img.captions]
    np.testing.assert_array_equal(shown(grid[1]), sanity_picture(report, "gradcam", 1, "magma"))
    np.testing.assert_array_equal(picture, shown(grid[1]))


def test_metric_and_threshold_do_not_recompute(app):
    at, loaded = app
    from ui.state import workbench

    if any(b.key == "san_run" for b in at.button):
        at.button(key="san_run").click().run()
    misses = workbench().results.stats.misses
    report = expected_report(at, loaded)
    at.radio(key="san_metric").set_value("ssim").run()
    at.slider(key="san_threshold").set_value(0.5).run()
    assert not at.exception
    assert workbench().results.stats.misses == misses
    flags = flag_rule(report.ssim, 0.5)
    control = list(report.methods).index(EDGE_CONTROL)
    assert len(at.error) + len(at.warning) == sum(flags)
    assert len(at.warning) == int(flags[control])  # the control's verdict is the orange one
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    np.testing.assert_allclose(values(chart["data"][0]["y"]), report.ssim[:, 0], atol=1e-6)


def test_pointing_game_table(app):
    at, loaded = app
    at.multiselect(key="pg_methods").set_value(["gradcam", "saliency"]).run()
    at.select_slider(key="pg_scenes").set_value(10).run()
    command = ("python -m viz_core evaluate --model demo --methods gradcam,saliency --scenes 10 "
               "--shapes 1 --json")
    assert any(command in c.value for c in at.caption)  # the plan's own command line
    at.button(key="pg_run").click().run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    reference = pointing_game(loaded, ["gradcam", "saliency"], scenes=10)
    assert list(table["Method"]) == ["Grad-CAM", "Vanilla saliency (gradient)"]
    assert list(table["Hits"]) == [s.hits for s in reference.scores]
    assert list(table["Shapes"]) == [10, 10]
    np.testing.assert_allclose(table["Hit rate"], [s.hit_rate for s in reference.scores])


def test_a_slow_check_shows_the_trained_maps_first_and_waits_for_its_button(monkeypatch):
    from ui.state import workbench

    loaded = wrap(tiny_cnn(size=48, classes=4, seed=6), labels=LABELS, name="demo")
    monkeypatch.setattr(viz_core.runtime.workbench, "load_builtin_model",
                        lambda name, weights="imagenet", **kw: loaded)
    monkeypatch.setattr(ui.cost, "SLOW_SECONDS", -1.0)  # every check counts as slow
    capture_media(monkeypatch, MEDIA)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=180)
    at.run()
    at.switch_page("pages/sanity.py").run()
    assert not at.exception, at.exception
    report = expected_report(at, loaded)
    # first the trained model's map of every method, as the check's first column draws it
    trained = [img for img in at.get("image") if img.captions]
    assert [img.captions[0] for img in trained] == [method_title(m) for m in report.methods]
    for img, method in zip(trained, report.methods):
        np.testing.assert_array_equal(shown(img), sanity_picture(report, method, 0))
    # the check itself waits for its button, its cost said
    assert "Run sanity check" in [b.label for b in at.button]
    assert any("versions of the model (trained, then 3 layers" in i.value for i in at.info)
    assert not at.get("plotly_chart")
    at.button(key="san_run").click().run()
    assert not at.exception, at.exception
    grid = [img for img in at.get("image") if img.captions]
    assert [img.captions[0] for img in grid[:4]] == ["trained"] + [
        f"step {i} · {report.spearman[i, 0]:.2f}" for i in (1, 2, 3)]
    assert len(grid) == len(DEFAULT_METHODS) * 4
    workbench.clear()
