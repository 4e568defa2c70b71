"""Issue 28, finding 10's small items, on an uploaded two-class 256 px model: "Top-2
predictions" and no "Another class…" that cannot exist; LIME's "What am I looking at?" before a
run; a pattern size of 256 px; an uploaded image remembered after a sample was chosen."""
from __future__ import annotations

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import tiny_cnn
from tests.images import encode

DOG = encode(Image.new("RGB", (30, 20), (200, 90, 10)), "PNG")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from ui.state import workbench

    path = tmp_path_factory.mktemp("walk2") / "pets.keras"
    tiny_cnn(size=256, classes=2, seed=3).save(path)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=240)
    at.run()
    at.sidebar.selectbox(key="model").set_value("upload").run()
    at.sidebar.file_uploader(key="model_file").set_value(
        ("pets.keras", path.read_bytes(), "application/octet-stream"))
    at.sidebar.text_area(key="model_labels").set_value("cat\ndog").run()
    assert not at.exception, at.exception
    yield at
    workbench.clear()


def test_overview_shows_the_two_predictions_there_are(app):
    app.switch_page("pages/overview.py").run()
    assert not app.exception, app.exception
    assert "Top-2 predictions" in [s.value for s in app.subheader]
    assert not any(s.value.startswith("Top-5") for s in app.subheader)


def test_heatmaps_offers_no_other_class_of_a_two_class_model(app):
    app.switch_page("pages/heatmaps.py").run()
    assert not app.exception, app.exception
    radio = app.radio(key="cam_class")
    assert radio.label == "Class to explain (top-2 predictions)"
    assert sorted(o.split(" · ")[0] for o in radio.options) == ["cat (0)", "dog (1)"]


def test_lime_explains_itself_before_a_run(app):
    app.switch_page("pages/lime.py").run()
    assert not app.exception, app.exception
    assert any(b.key == "lime_run" for b in app.button)  # nothing has run yet
    (note,) = [e for e in app.expander if e.label == "What am I looking at?"]
    first = app.selectbox(key="lime_class_1").value
    assert f"probability of **{('cat', 'dog')[first]}** from Uploaded: pets.keras" in \
        note.markdown[0].value


def test_the_pattern_size_reaches_the_models_input_size(app):
    app.switch_page("pages/filters.py").run()
    assert not app.exception, app.exception
    sizes = app.select_slider(key="fp_size").options
    assert sizes[-1] == "256" and "224" in sizes
    app.select_slider(key="fp_size").set_value(256).run()
    assert not app.exception and app.select_slider(key="fp_size").value == 256


def test_an_uploaded_image_is_remembered_after_a_sample(app):
    app.switch_page("pages/overview.py").run()
    app.sidebar.selectbox(key="image").set_value("upload").run()
    app.sidebar.file_uploader(key="image_file").set_value(("dog.png", DOG, "image/png")).run()
    app.sidebar.selectbox(key="image").set_value("square").run()
    assert [img.captions[0].split(":")[0] for img in app.get("image") if img.captions] == [
        "square"]
    app.sidebar.selectbox(key="image").set_value("upload").run()
    assert not app.exception, app.exception
    assert [img.captions[0] for img in app.get("image") if img.captions] == [
        "dog: 30×20 px, resized to 256×256"]
    assert any(c.value.startswith("Using dog.png, uploaded before")
               for c in app.sidebar.caption)


def test_a_model_with_more_classes_keeps_another_class_and_its_search(tmp_path):
    """Seven classes: the five most probable, then "Another class…", which searches all."""

    path = tmp_path / "seven.keras"
    tiny_cnn(size=32, classes=7, seed=4).save(path)
    at = AppTest.from_file("../../app.py", default_timeout=240)
    at.run()
    at.sidebar.selectbox(key="model").set_value("upload").run()
    at.sidebar.file_uploader(key="model_file").set_value(
        ("seven.keras", path.read_bytes(), "application/octet-stream")).run()
    at.switch_page("pages/heatmaps.py").run()
    assert not at.exception, at.exception
    radio = at.radio(key="cam_class")
    assert radio.label == "Class to explain (top-5 predictions)"
    assert len(radio.options) == 6 and radio.options[-1] == "Another class…"
    radio.set_value(-1).run()
    search = at.selectbox(key="cam_class_any")
    assert search.options == [f"class {k} ({k})" for k in range(7)]
    search.set_value(6).run()
    assert not at.exception, at.exception
    assert "**class 6** (6)" in [m.value for m in at.markdown]


def test_a_new_upload_replaces_the_kept_one(app):
    app.switch_page("pages/overview.py").run()
    app.sidebar.selectbox(key="image").set_value("upload").run()
    app.sidebar.file_uploader(key="image_file").set_value(("dog.png", DOG, "image/png")).run()
    cat = encode(Image.new("RGB", (16, 40), (10, 10, 10)), "PNG")
    app.sidebar.file_uploader(key="image_file").set_value(("cat.png", cat, "image/png")).run()
    app.sidebar.selectbox(key="image").set_value("square").run()
    app.sidebar.selectbox(key="image").set_value("upload").run()
    assert not app.exception, app.exception
    assert [img.captions[0] for img in app.get("image") if img.captions] == [
        "cat: 16×40 px, resized to 256×256"]
