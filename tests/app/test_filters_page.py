"""AppTest for the Filter patterns page, on a tiny model standing in for the demo model.

The sidebar's "demo" choice loads a seeded two-conv model; the disk cache lives in a temporary
folder. What the page shows (the large pattern, its activation) is checked against an
independent forward pass of the model's own layer on the picture the page displayed.
"""
from __future__ import annotations

import io
import json
import zipfile

import keras
import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import ui.export
import viz_core.runtime.workbench
from tests.app.media import capture_media, file_of
from tests.conftest import tiny_cnn, wrap
from viz_core.cli.bundle import export_bundle
from viz_core.models.catalog import DEMO_MODEL_FILE


@pytest.fixture
def media(monkeypatch):
    """Bytes of every image and download the app registers, by file id."""
    store = capture_media(monkeypatch)
    return store


@pytest.fixture
def loaded(monkeypatch, tmp_path):
    model = wrap(tiny_cnn(size=48, classes=4, seed=11), name="demo")
    monkeypatch.setattr(viz_core.runtime.workbench, "load_builtin_model",
                        lambda name, weights="imagenet", **kw: model)
    monkeypatch.setenv("CNN_VIZ_CACHE", str(tmp_path / "disk"))
    return model


def open_page() -> AppTest:
    """A fresh process-wide workbench (as after a restart) and the page."""
    from ui.state import workbench

    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=120)
    at.run()
    at.switch_page("pages/filters.py")
    at.run()
    assert not at.exception, at.exception
    return at



def large_pattern(at, media) -> np.ndarray:
    image = next(img for img in at.get("image") if img.captions
                 and img.captions[0].startswith("filter "))
    return np.asarray(Image.open(io.BytesIO(file_of(media, image.proto.imgs[0].url))))


def reference_activation(loaded, layer: str, picture: np.ndarray, k: int) -> float:
    """The model's own layer (shared weights) on any size, unit preprocessing, channel mean."""
    net = keras.Sequential([keras.Input((None, None, 3)), loaded.model.get_layer(layer)])
    return float(np.asarray(net(picture[None].astype("float32") / 255.0))[0, :, :, k].mean())


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_grid_drawn_on_arrival_and_a_filter_shown_large(loaded, media):
    at = open_page()
    assert at.title[0].value == "Filter patterns"
    assert at.selectbox(key="fp_layer").value == "conv_a"
    assert at.slider(key="fp_range_conv_a").value == (0, 4)  # all four filters of conv_a
    caption = next(c.value for c in at.caption if c.value.startswith("4 filters of"))
    assert "fast, 10 steps · 150 px (computed in" in caption
    assert len(at.get("plotly_chart")) == 2  # the clickable grid and the objective per step

    pictures = {}
    for k in range(4):
        at.selectbox(key="fp_pick").set_value(k).run()
        picture = pictures[k] = large_pattern(at, media)  # the PNG the browser shows
        assert picture.shape == (150, 150, 3)
        shown = float(metric(at, "Mean activation reached"))
        expected = reference_activation(loaded, "conv_a", picture, k)
        assert shown == pytest.approx(expected, rel=1e-3, abs=1e-6)

    labels = {b.proto.label: b for b in at.get("download_button")}
    grid = np.asarray(Image.open(io.BytesIO(file_of(media, labels["Grid (PNG)"]))))
    assert grid.shape == (4 + 1 * 154, 4 + 4 * 154, 3)  # one row of four 150 px patterns
    for k, picture in pictures.items():  # inside the 2 px outline that marks dead filters
        tile = grid[4:154, 4 + k * 154:154 + k * 154]
        np.testing.assert_array_equal(tile[2:-2, 2:-2], picture[2:-2, 2:-2])
    assert "Filter 3 (PNG)" in labels

    # A restart: a new workbench (empty memory caches), same disk cache folder.
    again = open_page()
    caption = next(c.value for c in again.caption if c.value.startswith("4 filters of"))
    assert "(from the disk cache)" in caption


def test_bundle_holds_the_pictures_the_page_shows(loaded, media, monkeypatch):
    made = []  # the page's bundle arguments (the button makes the ZIP only when clicked)
    original = ui.export.bundle_button

    def record(command, options, images, parameters, **kw):
        made.append((command, list(options), list(images), parameters))
        return original(command, options, images, parameters, **kw)

    monkeypatch.setattr(ui.export, "bundle_button", record)
    at = open_page()
    at.slider(key="fp_range_conv_a").set_value((1, 4)).run()
    at.number_input(key="fp_steps_fast").set_value(4).run()
    at.select_slider(key="fp_size").set_value(64).run()
    at.slider(key="fp_per_row").set_value(2).run()
    assert not at.exception, at.exception
    button = next(b for b in at.get("download_button") if b.key == "fp_bundle")
    assert button.proto.label == "Export bundle"
    command, options, images, parameters = made[-1]
    assert (command, images) == ("filters", [])
    assert options == ["--model", "demo", "--layer", "conv_a", "--filters", "1:4", "--method",
                       "fast", "--steps", "4", "--size", "64", "--per-row", "2", "--seed", "0"]
    assert parameters["filters"] == [1, 4] and parameters["per_row"] == 2

    from ui.state import workbench

    data = export_bundle(command, options, images, parameters, bench=workbench())
    labels = {b.proto.label: b for b in at.get("download_button")}
    index = at.selectbox(key="fp_pick").value
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("pictures/conv_a_fast_grid.png") == file_of(
            media, labels["Grid (PNG)"])
        assert archive.read(f"pictures/conv_a_fast_filter_{index:03d}.png") == file_of(
            media, labels[f"Filter {index} (PNG)"])
        assert json.loads(archive.read("parameters.json"))["steps"] == 4


def test_classic_waits_for_the_button_then_draws(loaded, media):
    at = open_page()
    at.button_group(key="fp_method").set_value("classic").run()
    at.number_input(key="fp_steps_classic").set_value(3).run()
    assert not any(c.value.startswith("4 filters of") for c in at.caption)
    assert "The classic method takes a while; press the button to start." in [
        c.value for c in at.caption]
    at.button(key="fp_draw").click().run()
    assert not at.exception, at.exception
    caption = next(c.value for c in at.caption if c.value.startswith("4 filters of"))
    assert "classic, 3 steps" in caption
    picture = large_pattern(at, media)
    k = at.selectbox(key="fp_pick").value
    shown = float(metric(at, "Mean activation reached"))
    assert shown == pytest.approx(reference_activation(loaded, "conv_a", picture, k),
                                  rel=1e-3, abs=1e-6)


def test_readability_numbers_are_those_of_the_picture_shown(loaded, media):
    from viz_core.metrics.readability import spectral_slope

    at = open_page()
    picture = large_pattern(at, media)
    shown = float(metric(at, "Spectral slope"))
    assert shown == pytest.approx(spectral_slope(picture), abs=0.006)  # shown with 2 decimals
    robust = metric(at, "Robustness")
    assert robust == "–" or 0.0 <= float(robust) < 5.0
    summary = next(c.value for c in at.caption if c.value.startswith("Medians over"))
    assert "robustness" in summary and "spectral slope" in summary
    method_notes = [c.value for c in at.caption if c.value.startswith("**fast**:")]
    assert len(method_notes) == 1  # the trade-off of the chosen method, in one sentence


def test_maco_waits_for_the_button_and_shows_transparency(loaded, media):
    at = open_page()
    at.button_group(key="fp_method").set_value("maco").run()
    at.number_input(key="fp_steps_maco").set_value(2).run()
    assert "The maco method takes a while; press the button to start." in [
        c.value for c in at.caption]
    at.button(key="fp_draw").click().run()
    assert not at.exception, at.exception
    picture = large_pattern(at, media)
    assert picture.shape == (150, 150, 4)  # the transparency as alpha
    summary = next(c.value for c in at.caption if c.value.startswith("Medians over"))
    assert "transparent" in summary


def test_compare_methods_draws_one_filter_four_ways(loaded, media):
    at = open_page()
    at.button_group(key="fp_view").set_value("Compare methods").run()
    at.number_input(key="fp_cmp_filter_conv_a").set_value(2).run()
    assert [c.value for c in at.caption].count("not drawn yet") == 4
    at.button(key="fp_cmp_go").click().run()
    assert not at.exception, at.exception
    numbers = [c.value for c in at.caption if c.value.startswith("activation ")]
    assert len(numbers) == 4 and all("robustness" in n and "spectral slope" in n
                                     for n in numbers)
    assert [m.value for m in at.markdown if m.value.startswith("**")][-4:] == [
        "**fast**", "**classic (tutorial)**", "**fourier (Lucid)**", "**maco**"]


def test_gallery_fills_every_conv_layer(loaded, media):
    at = open_page()
    at.button_group(key="fp_view").set_value("All conv layers").run()
    # conv_a's four filters were just drawn by the one-layer view: shown from the cache
    captions = [c.value for c in at.caption]
    assert "conv_b · Conv2D · 24×24×6 · not drawn yet" in captions
    assert any(c.startswith("4 filters of `conv_a`") for c in captions)
    at.select_slider(key="fp_gallery_count").set_value(8).run()
    at.button(key="fp_gallery_go").click().run()
    assert not at.exception, at.exception
    headings = [m.value for m in at.markdown if m.value.startswith("**")]
    assert headings == ["**conv_a · Conv2D · 48×48×4**", "**conv_b · Conv2D · 24×24×6**"]
    captions = [c.value for c in at.caption if " filters of " in c.value]
    assert captions[0].startswith("4 filters of `conv_a`")  # fewer than 8 exist
    assert captions[1].startswith("6 filters of `conv_b`")
    button = next(b for b in at.get("download_button") if b.key == "fp_dl_gallery")
    with zipfile.ZipFile(io.BytesIO(file_of(media, button))) as archive:
        assert sorted(archive.namelist()) == ["conv_a_fast_grid.png", "conv_b_fast_grid.png"]
        grid = np.asarray(Image.open(io.BytesIO(archive.read("conv_b_fast_grid.png"))))
    assert grid.shape == (4 + 1 * 154, 4 + 6 * 154, 3)


@pytest.mark.slow
@pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not trained yet")
def test_page_on_the_real_demo_model(monkeypatch, tmp_path, media):
    from viz_core.models.catalog import load_demo_model
    from viz_core.features.filters import default_layer

    monkeypatch.setenv("CNN_VIZ_CACHE", str(tmp_path / "disk"))
    at = open_page()
    demo = load_demo_model()
    layer = default_layer(demo)
    assert at.selectbox(key="fp_layer").value == layer
    picture = large_pattern(at, media)
    k = at.selectbox(key="fp_pick").value
    side = demo.side_model([layer])
    net = keras.Sequential([keras.Input((None, None, 3))] + [
        lyr for lyr in side.layers[1:]])
    expected = float(np.asarray(net(picture[None].astype("float32") / 255.0))[0, :, :, k].mean())
    assert float(metric(at, "Mean activation reached")) == pytest.approx(expected, rel=1e-3,
                                                                         abs=1e-6)
