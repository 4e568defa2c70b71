"""AppTest for the Neuron atlas page on the demo model's last conv layer over 24 shapes scenes:
the unit cards and a unit's full card show the backend's numbers."""
from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from viz_core.dataset.atlas import neuron_atlas
from viz_core.dataset.readers import sample_dataset
from viz_core.models.catalog import load_builtin_model


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    import os

    from ui.state import workbench

    os.environ["CNN_VIZ_CACHE"] = str(tmp_path_factory.mktemp("atlas_cache"))
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=240)
    at.run()
    at.switch_page("pages/atlas.py")
    at.run()
    assert not at.exception, at.exception
    yield at
    workbench.clear()
    os.environ.pop("CNN_VIZ_CACHE", None)


@pytest.fixture(scope="module")
def expected():
    model = load_builtin_model("demo")
    data = sample_dataset("shapes", model.labels, count=24)
    return neuron_atlas(model, data, model.info.last_conv_layer, k=4)


def test_the_atlas_page_shows_the_backends_units(app, expected):
    at = app
    assert at.title[0].value == "Neuron atlas"
    at.select_slider(key="atlas_count").set_value(24)
    at.select_slider(key="atlas_k").set_value(4).run()
    assert at.selectbox(key="atlas_layer").value == "conv2d_4"
    at.button(key="atlas_run").click().run()
    assert not at.exception, at.exception
    # the grid: most selective unit first, its bar naming its class and index
    order = np.argsort(-expected.selectivity, kind="stable")
    first = int(expected.channels[order[0]])
    cards = [m.value for m in at.markdown if m.value.startswith("**Unit ")]
    assert cards[0] == f"**Unit {first}**" and len(cards) == 12
    favourite = expected.classes[expected.selective_for[order[0]]]
    bars = [p for p in at.get("progress")]
    assert f"{favourite} · selectivity {expected.selectivity[order[0]]:.2f}" in str(bars[0].proto)

    # open that unit's card: its top image and activation are the backend's
    at.button(key=f"atlas_open_{first}").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="atlas_unit").value == first
    top = expected.exemplars(first, "top")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Top activation"] == f"{top[0]['activation']:.3g}"
    assert metrics["Selective for"] == favourite
    captions = [c for element in at.get("image") for c in element.captions if c]
    assert captions[0].startswith(f"{top[0]['image']}: {top[0]['activation']:.3g} at "
                                  f"{top[0]['position']}, box {top[0]['box']}")


def test_filter_by_class_keeps_only_that_class(app, expected):
    at = app
    wanted = expected.classes[int(expected.selective_for[0])]
    at.selectbox(key="atlas_class").set_value(wanted).run()
    assert not at.exception, at.exception
    cards = {m.value for m in at.markdown if m.value.startswith("**Unit ")}
    picked = {f"**Unit {int(c)}**" for c, s in zip(expected.channels, expected.selective_for)
              if expected.classes[s] == wanted}
    assert cards <= picked and len(cards) == min(12, len(picked))


def test_the_shortcut_scenes_go_with_the_shortcut_model(app):
    at = app
    at.radio(key="atlas_source").set_value("shortcut").run()
    at.select_slider(key="atlas_count").set_value(24)
    at.select_slider(key="atlas_k").set_value(4).run()
    at.button(key="atlas_run").click().run()
    assert not at.exception, at.exception
    model = load_builtin_model("shortcut_demo")
    data = sample_dataset("shortcut", model.labels, count=24)
    expected = neuron_atlas(model, data, at.selectbox(key="atlas_layer").value, k=4)
    assert any(c.value.startswith(f"Model: {model.title}") for c in at.caption)
    unit = at.selectbox(key="atlas_unit").value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Top activation"] == f"{expected.exemplars(unit)[0]['activation']:.3g}"


def test_the_atlas_is_built_once_and_the_bundle_names_it(app, monkeypatch):
    """The page's plan names the atlas once: the job builds it (one pass over the scenes), the
    page draws it from the cache on every later run, and the bundle's command asks for the
    same model, scenes, layer, k and score."""
    import ui.atlas_export
    import viz_core.dataset.atlas
    from ui.atlas_export import atlas_options

    at = app
    built, made = [], []
    direct = viz_core.dataset.atlas.neuron_atlas

    def counted(model, data, layer, **kwargs):
        built.append((model.name, len(data), layer, kwargs["k"], kwargs["score"]))
        return direct(model, data, layer, **kwargs)

    monkeypatch.setattr(viz_core.dataset.atlas, "neuron_atlas", counted)
    monkeypatch.setattr(ui.atlas_export, "bundle_button",
                        lambda command, options, *a, **kw: made.append((command, list(options))))
    at.radio(key="atlas_source").set_value("shapes").run()
    at.select_slider(key="atlas_count").set_value(24)
    at.select_slider(key="atlas_k").set_value(6)
    at.radio(key="atlas_score").set_value("mean").run()
    assert not built and any(b.key == "atlas_run" for b in at.button)
    at.button(key="atlas_run").click().run()
    assert not at.exception, at.exception
    layer = at.selectbox(key="atlas_layer").value
    assert built == [("demo", 24, layer, 6, "mean")]
    at.selectbox(key="atlas_sort").set_value("channel").run()
    assert len(built) == 1 and not any(b.key == "atlas_run" for b in at.button)
    assert made[-1] == ("atlas", atlas_options(["--model", "demo"], "shapes", layer=layer,
                                               k=6, score="mean", count=24))


# -- an uploaded ZIP (issue 30: listed in the page's thread, again on every rerun) ---------------
@pytest.fixture
def upload_page(monkeypatch, tmp_path):
    """A fresh atlas page on "Upload a ZIP", its own disk cache, ``readers.open_zip`` counted."""
    from tests.app.test_dataset_listing import count_opens
    from ui.state import workbench

    monkeypatch.setenv("CNN_VIZ_CACHE", str(tmp_path))
    calls = count_opens(monkeypatch)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=240)
    at.run()
    at.switch_page("pages/atlas.py").run()
    at.radio(key="atlas_source").set_value("upload").run()
    assert not at.exception, at.exception
    assert [i.value for i in at.info] == ["Upload a ZIP of images to continue."]
    yield at, calls
    workbench.clear()


def test_an_uploaded_zip_is_listed_once_in_the_job_queue(upload_page):
    from tests.app.test_dataset_listing import NAMES, archive

    at, calls = upload_page
    at.file_uploader(key="atlas_zip_file").set_value(("scenes.zip", archive(),
                                                      "application/zip")).run()
    assert not at.exception, at.exception
    at.run()
    at.run()
    # read once across three reruns, in the job queue, not the page's thread
    assert [name for name, _ in calls] == ["scenes.zip"]
    assert calls[0][1].startswith("heavy-job-"), calls
    # its five images (the README is not one), seen before the run
    assert any(c.value.endswith(" over 5 images: one pass through the model up to the layer.")
               for c in at.caption)
    (strip,) = [e for e in at.get("image") if e.captions]
    assert sorted(c.replace("\u200b", "") for c in strip.captions) == sorted(NAMES)
    assert at.select_slider(key="atlas_count").disabled  # an upload uses all its images
    at.select_slider(key="atlas_k").set_value(4).run()
    at.button(key="atlas_run").click().run()
    assert not at.exception, at.exception
    assert any(" units · 5 images of scenes · classes by label " in c.value for c in at.caption)
    assert len(calls) == 1  # the atlas reads the listed images, not the archive again


def test_a_refused_upload_is_said_on_every_rerun_and_read_once(upload_page):
    from tests.app.test_dataset_listing import claims_entries

    at, calls = upload_page
    at.file_uploader(key="atlas_zip_file").set_value(("huge.zip", claims_entries(60_000),
                                                      "application/zip")).run()
    expected = ("The archive 'huge.zip' has 60,000 entries (0.0 MB of names and sizes); the "
                "limit is 2,000 images. It was not opened.")
    assert [e.value for e in at.error] == [expected]
    at.run()
    at.run()
    assert [e.value for e in at.error] == [expected] and len(calls) == 1
    assert not [b for b in at.button if b.key == "atlas_run"]
