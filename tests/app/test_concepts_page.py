"""AppTest for the Concepts page on the shortcut demo: the CRAFT tab finds the star class's
concepts, ranks the corner tag first and shows the backend's numbers; an image opens with all its
concept maps; the TCAV tab is there."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from viz_core.dataset.concepts import class_concepts
from viz_core.dataset.readers import sample_dataset
from viz_core.models.catalog import load_builtin_model


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    import os

    from ui.state import workbench

    os.environ["CNN_VIZ_CACHE"] = str(tmp_path_factory.mktemp("concepts_cache"))
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=240)
    at.run()
    at.switch_page("pages/concepts.py")
    at.run()
    assert not at.exception, at.exception
    yield at
    workbench.clear()
    os.environ.pop("CNN_VIZ_CACHE", None)


@pytest.fixture(scope="module")
def expected():
    model = load_builtin_model("shortcut_demo")
    data = sample_dataset("shortcut", model.labels, count=48)
    return class_concepts(model, data, "star", "conv2d_4", concepts=4, limit=24)


def test_craft_on_the_shortcut_demo_shows_the_tag_first(app, expected):
    at = app
    assert at.title[0].value == "Concepts"
    at.radio(key="concepts_source").set_value("shortcut").run()
    at.select_slider(key="concepts_count").set_value(48)
    at.select_slider(key="concepts_k").set_value(4)
    at.select_slider(key="concepts_limit").set_value(24).run()
    assert at.selectbox(key="concepts_class").value == "star"
    assert at.selectbox(key="concepts_layer").value == "conv2d_4"
    assert any("24 images labelled star" in c.value and "forward passes" in c.value
               for c in at.caption)  # the cost, said before the run
    at.button(key="concepts_run").click().run()
    assert not at.exception, at.exception
    rows = [m.value for m in at.markdown if m.value.startswith("**Concept ")]
    assert len(rows) == 4
    bars = [str(p.proto) for p in at.get("progress")]
    for k in range(4):
        assert f"importance {expected.craft.importance[k]:.2f}" in bars[k]
    # the first row's images are the ones holding most of concept 0: tagged stars
    strength = expected.craft.coefficients[..., 0].sum(axis=(1, 2))
    best = np.argsort(-strength, kind="stable")[:4]
    captions = [c for element in at.get("image") for c in element.captions if c]
    row0 = captions[1:5]  # after the crops' caption
    assert row0 == [expected.names[i] for i in best]
    assert all("/tagged_" in name for name in row0)
    # pictures first (issue 29): the settings folded above, the rows next, then what they were
    # computed from and the export
    tab = list(at.tabs[0].children.values())
    kinds = [type(node).__name__ for node in tab]
    assert kinds[0] == "Expander" and tab[0].label == "CRAFT: images, class and layer"
    assert tab[0].proto.expanded is False
    summary = next(i for i, node in enumerate(tab)
                   if kinds[i] == "Caption" and node.value.startswith("Model: "))
    assert kinds.index("Block") == 1 < summary < kinds.index("DownloadButton")


def test_an_image_opens_with_all_its_concept_maps(app, expected):
    at = app
    strength = expected.craft.coefficients[..., 0].sum(axis=(1, 2))
    i = int(np.argsort(-strength, kind="stable")[0])
    at.button(key=f"concepts_open_0_{i}").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="concepts_image").value == expected.names[i]
    maps = expected.craft.coefficients[i]
    share = maps.sum(axis=(0, 1)) / maps.sum()
    line = " · ".join(f"concept {k}: {share[k]:.0%}" for k in range(4))
    assert line in [m.value for m in at.markdown]
    assert share[0] > 0.3  # on a tagged star the tag is a large part of what the layer holds


def test_the_tcav_tab_is_there(app):
    at = app
    assert [t.label for t in at.tabs] == ["CRAFT", "TCAV"]
    assert not at.exception, at.exception
    if importlib.util.find_spec("ui.concepts_tcav") is None:
        assert any(i.value == "TCAV: coming." for i in at.info)
    else:  # the TCAV tab's own controls are drawn under it
        assert at.tabs[1].radio(key="tcav_class_source") is not None


def test_a_craft_run_is_made_once_and_the_bundle_names_it(app, monkeypatch):
    """The tab's plan names the run once: the job finds the concepts (one call), the tab draws
    them from the cache on later runs, and the bundle's command asks for the same class,
    layer, concepts and images."""
    import ui.concepts_export
    import viz_core.dataset.concepts
    from ui.concepts_export import concepts_options

    at = app
    found, made = [], []
    direct = viz_core.dataset.concepts.class_concepts

    def counted(model, data, class_name, layer, **kwargs):
        found.append((model.name, class_name, layer, kwargs["concepts"], kwargs["limit"]))
        return direct(model, data, class_name, layer, **kwargs)

    monkeypatch.setattr(viz_core.dataset.concepts, "class_concepts", counted)
    monkeypatch.setattr(ui.concepts_export, "bundle_button",
                        lambda command, options, *a, **kw: made.append((command, list(options))))
    at.radio(key="concepts_source").set_value("shortcut").run()
    at.select_slider(key="concepts_count").set_value(48)
    at.select_slider(key="concepts_k").set_value(3)
    at.select_slider(key="concepts_limit").set_value(24).run()
    at.button(key="concepts_run").click().run()
    assert not at.exception, at.exception
    assert found == [("shortcut_demo", "star", "conv2d_4", 3, 24)]
    assert len([m for m in at.markdown if m.value.startswith("**Concept ")]) == 3
    names = at.selectbox(key="concepts_image").options
    at.selectbox(key="concepts_image").set_value(names[-1]).run()
    assert len(found) == 1 and not any(b.key == "concepts_run" for b in at.button)
    assert made[-1] == ("concepts", concepts_options(
        ["--model", "shortcut_demo"], "shortcut", class_name="star", layer="conv2d_4",
        concepts=3, limit=24, count=48))


# -- uploaded ZIPs (issue 30: listed in the page's thread, again on every rerun) -----------------
@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A fresh Concepts page with its own disk cache, ``readers.open_zip`` counted."""
    from tests.app.test_dataset_listing import count_opens
    from ui.state import workbench

    monkeypatch.setenv("CNN_VIZ_CACHE", str(tmp_path))
    calls = count_opens(monkeypatch)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=240)
    at.run()
    at.switch_page("pages/concepts.py").run()
    assert not at.exception, at.exception
    yield at, calls
    workbench.clear()


CIRCLES = tuple(f"circle/{n}.png" for n in "abcdef")


def test_crafts_uploaded_zip_is_listed_once_in_the_job_queue(fresh):
    from tests.app.test_dataset_listing import archive

    at, calls = fresh
    at.radio(key="concepts_source").set_value("upload").run()
    assert "Upload a ZIP of images to continue." in [i.value for i in at.info]
    at.file_uploader(key="concepts_zip_file").set_value(("circles.zip", archive(CIRCLES),
                                                         "application/zip")).run()
    assert not at.exception, at.exception
    at.run()
    at.run()
    assert [name for name, _ in calls] == ["circles.zip"]
    assert calls[0][1].startswith("heavy-job-"), calls
    assert at.selectbox(key="concepts_class").value == "circle"
    # the six circles of the ZIP (its README is not an image), before the run
    assert any(c.value.startswith("CRAFT on 6 images labelled circle at ") for c in at.caption)
    assert any(b.key == "concepts_run" for b in at.button)


def test_tcavs_uploads_are_listed_once_each_in_turn(fresh):
    """The class's and the concept's ZIPs, given together, are each read once in the job
    queue (one after the other: a session runs one job at a time), and the concept's count is
    the ZIP's images."""
    from tests.app.test_dataset_listing import archive, claims_entries

    at, calls = fresh
    at.radio(key="tcav_class_source").set_value("upload")
    at.radio(key="tcav_concept_source").set_value("upload").run()
    tags = tuple(f"tagged/{n}.png" for n in "abcdefg")
    at.file_uploader(key="tcav_class_zip").set_value(("circles.zip", archive(CIRCLES),
                                                      "application/zip"))
    at.file_uploader(key="tcav_concept_zip").set_value(("tags.zip", archive(tags, (24, 24)),
                                                        "application/zip")).run()
    assert not at.exception, at.exception
    at.run()
    at.run()
    assert sorted(name for name, _ in calls) == ["circles.zip", "tags.zip"]
    assert all(thread.startswith("heavy-job-") for _, thread in calls), calls
    assert any(c.value.startswith("The concept, tags: 7 of its 7 images, ") for c in at.caption)
    assert any(b.key == "tcav_run" for b in at.button)
    # a refused concept ZIP is said under its uploader on every rerun, read once
    at.file_uploader(key="tcav_concept_zip").set_value(("huge.zip", claims_entries(60_000),
                                                        "application/zip")).run()
    at.run()
    expected = ("The archive 'huge.zip' has 60,000 entries (0.0 MB of names and sizes); the "
                "limit is 2,000 images. It was not opened.")
    assert [e.value for e in at.error] == [expected]
    assert [name for name, _ in calls].count("huge.zip") == 1
    assert not any(b.key == "tcav_run" for b in at.button)
