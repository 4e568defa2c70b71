"""AppTest for the Feature maps page, on a tiny model standing in for the demo model.

The backend is patched so the sidebar's "demo" choice loads a seeded two-conv model (fast and
hand-checkable); what the page shows is checked against an independent forward pass.
The second image is picked with the sidebar, as a user does (``app.py`` runs on every rerun,
see ``ui.state.ensure_app_shell``).
"""
from __future__ import annotations

import base64
import json

import keras
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import viz_core.runtime.workbench
from tests.app.media import capture_media, png_of
from tests.conftest import tiny_cnn, wrap
from ui.state import SELECTION_KEY
from viz_core.models.catalog import DEMO_MODEL_FILE
from viz_core.inputs.intake import load_image
from viz_core.render.montage import montage
from viz_core.inputs.samples import sample_bytes


@pytest.fixture
def app(monkeypatch):
    """AppTest of app.py on the Feature maps page, plus the stand-in model and captured media."""
    from ui.state import workbench

    loaded = wrap(tiny_cnn(size=48, classes=4), name="demo")
    monkeypatch.setattr(viz_core.runtime.workbench, "load_builtin_model",
                        lambda name, weights="imagenet", **kw: loaded)
    media = capture_media(monkeypatch)
    workbench.clear()  # a fresh process-wide workbench, so the patched loader is used
    at = AppTest.from_file("../../app.py", default_timeout=120)
    at.run()
    at.switch_page("pages/feature_maps.py")
    at.run()
    assert not at.exception, at.exception
    yield at, loaded, media
    workbench.clear()


def choose_second(at, loaded, sample: str) -> None:
    """Pick a second image in the sidebar."""
    at.sidebar.selectbox(key="second").set_value(sample).run()


def direct(loaded, sample: str, layer: str) -> np.ndarray:
    """Independent reference: keras.Model(inputs, layer.output) on the resized sample."""
    view = loaded.view(load_image(sample_bytes(sample), sample))
    x = view.pixels[None] / 255.0
    model = keras.Model(loaded.model.inputs, loaded.model.get_layer(layer).output)
    return np.asarray(model(x))[0]



def chart(at, key):
    return next(c for c in at.get("plotly_chart") if c.key == key)


def metrics(at) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


def heatmap_z(chart) -> np.ndarray:
    z = json.loads(chart.proto.spec)["data"][0]["z"]
    if isinstance(z, dict):  # plotly's typed-array encoding: base64 bytes + dtype + shape
        shape = [int(d) for d in str(z["shape"]).split(",")]
        return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape)
    return np.asarray(z, dtype="float32")


def test_one_layer_grid_zoom_and_display_options(app):
    at, loaded, media = app
    image = at.session_state[SELECTION_KEY].image.name
    assert image == "circle"  # the sidebar's first shapes sample
    assert at.title[0].value == "Feature maps"
    assert at.selectbox(key="fm_block").options == ["conv_a", "conv_b"]
    at.selectbox(key="fm_block").set_value("conv_b").run()
    assert at.selectbox(key="fm_layer").value == "conv_b"
    expected = direct(loaded, image, "conv_b")
    shown = dict(metrics(at))
    assert shown["Channels"] == "6"
    assert shown["Dead on this image"] == str(int(np.sum(np.all(expected == 0, axis=(0, 1)))))

    # The downloadable grid is the montage of the independently computed activation.
    button = next(b for b in at.get("download_button") if b.key == "fm_png_first")
    grid = png_of(media, button)
    np.testing.assert_array_equal(grid, montage(expected, tile=32).image)
    assert button.proto.label.startswith(f"Grid of {image}")

    # The zoom opens on the strongest channel and shows its raw values.
    strongest = int(np.argmax(expected.mean(axis=(0, 1))))
    assert at.number_input(key="fm_channel").value == strongest
    np.testing.assert_allclose(heatmap_z(chart(at, "fm_zoom_first")), expected[:, :, strongest],
                               rtol=1e-5, atol=1e-6)

    # Display options re-draw without running the model again: each change makes one new grid
    # (cached too), and going back to an earlier display makes none.
    from ui.state import workbench

    misses = workbench().results.stats.misses
    at.selectbox(key="fm_cmap").set_value("terrain").run()
    at.selectbox(key="fm_scale").set_value("layer").run()
    at.selectbox(key="fm_sort").set_value("mean").run()
    assert not at.exception
    assert workbench().results.stats.misses == misses + 3
    button = next(b for b in at.get("download_button") if b.key == "fm_png_first")
    np.testing.assert_array_equal(
        png_of(media, button),
        montage(expected, tile=32, colormap="terrain", scale="layer", sort="mean").image)
    at.selectbox(key="fm_sort").set_value("index").run()  # the display of the step before
    assert not at.exception
    assert workbench().results.stats.misses == misses + 3


def test_compare_mode_shows_both_images_side_by_side(app):
    at, loaded, media = app
    first, second = at.session_state[SELECTION_KEY].image.name, "square"
    assert at.toggle(key="fm_compare").disabled  # no second image yet
    choose_second(at, loaded, second)
    # choosing a second image turns the comparison on
    assert not at.toggle(key="fm_compare").disabled and at.toggle(key="fm_compare").value
    assert not at.exception

    captions = [c.value for c in at.caption]
    assert any(c.startswith(f"{first} · layer 1: conv_a") for c in captions)
    assert any(c.startswith(f"{second} · layer 1: conv_a") for c in captions)
    a, b = direct(loaded, first, "conv_a"), direct(loaded, second, "conv_a")
    assert [v for k, v in metrics(at) if k == "Channels"] == ["4", "4"]
    means = [v for k, v in metrics(at) if k == "Mean activation"]
    assert means == [f"{a.mean():.3g}", f"{b.mean():.3g}"]
    channel = at.number_input(key="fm_channel").value
    np.testing.assert_allclose(heatmap_z(chart(at, "fm_zoom_second")), b[:, :, channel],
                               rtol=1e-5, atol=1e-6)

    # One range for the whole layer is shared by both images when comparing.
    at.selectbox(key="fm_scale").set_value("layer").run()
    low, high = min(a.min(), b.min()), max(a.max(), b.max())
    button = next(x for x in at.get("download_button") if x.key == "fm_png_second")
    np.testing.assert_array_equal(
        png_of(media, button),
        montage(b, tile=48, scale="layer", value_range=(low, high)).image)  # 48x48 kept
    labels = [x.proto.label for x in at.get("download_button")]
    assert f"Grid of {first} (PNG)" in labels and f"Grid of {second} (PNG)" in labels


def test_all_layers_view_lists_every_layer_with_its_grid(app):
    at, loaded, _ = app
    at.button_group(key="fm_view").set_value("All layers").run()
    assert not at.exception
    headings = [m.value for m in at.markdown if m.value.startswith("**")]
    assert [h.split("**")[1] for h in headings] == ["1. conv_a", "2. pool_a", "3. conv_b"]
    assert "MaxPooling2D · 24×24×4" in headings[1]
    assert len(at.get("image")) == 3
    assert any(b.key == "fm_zip_all" for b in at.get("download_button"))


@pytest.mark.slow
@pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not trained yet")
def test_page_on_the_real_demo_model():
    from ui.state import workbench
    from viz_core.features.activations import feature_map_layers, layer_groups
    from viz_core.models.catalog import load_demo_model

    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=180)
    at.run()
    at.switch_page("pages/feature_maps.py").run()
    assert not at.exception, at.exception
    demo = load_demo_model()
    groups = layer_groups(demo.info)
    assert at.selectbox(key="fm_block").options == [g for g, _ in groups]
    first = feature_map_layers(demo.info)[0]
    assert at.selectbox(key="fm_layer").value == first
    assert dict(metrics(at))["Channels"] == str(demo.info.layer(first).output_shape[-1])
    choose_second(at, demo, "square")
    at.toggle(key="fm_compare").set_value(True).run()
    assert not at.exception and chart(at, "fm_zoom_second") is not None
    workbench.clear()


def test_comparison_turned_off_stays_off_until_another_second_image(app):
    at, loaded, media = app
    choose_second(at, loaded, "square")
    at.toggle(key="fm_compare").set_value(False).run()
    at.selectbox(key="fm_layer").set_value(at.selectbox(key="fm_layer").options[-1]).run()
    assert not at.toggle(key="fm_compare").value
    assert not any(c.value.startswith("square · ") for c in at.caption)
    choose_second(at, loaded, "star")
    assert at.toggle(key="fm_compare").value
    assert any(c.value.startswith("star · ") for c in at.caption)


def test_all_layers_of_two_images_are_one_pass_each_and_the_zip_holds_every_grid(app,
                                                                              monkeypatch):
    """The page's plans name one forward pass per image and group of layers: the grids, the
    all-layers view and its ZIP (one grid per layer and image, of the activations computed
    independently) all read the same two passes."""
    import functools
    import io
    import zipfile

    from PIL import Image

    import viz_core.features.activations
    from tests.app.media import file_of
    from viz_core.render.montage import grid_files

    at, loaded, media = app
    first, second = at.session_state[SELECTION_KEY].image.name, "square"
    passes = []
    direct_maps = viz_core.features.activations.feature_maps

    @functools.wraps(direct_maps)  # the same name: the same cache key
    def counted(model, view, *args, **kwargs):
        passes.append(view.digest)
        return direct_maps(model, view, *args, **kwargs)

    monkeypatch.setattr(viz_core.features.activations, "feature_maps", counted)
    choose_second(at, loaded, second)
    at.button_group(key="fm_view").set_value("All layers").run()
    assert not at.exception, at.exception
    assert len(passes) == 1  # the second image's pass; the first's was cached on arrival
    button = next(b for b in at.get("download_button") if b.key == "fm_zip_all")
    with zipfile.ZipFile(io.BytesIO(file_of(media, button))) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    assert len(passes) == 1  # the ZIP read the cached passes
    expected = dict(grid_files(
        [(f"{image}_activations_{i}_{layer}.png", direct(loaded, image, layer))
         for image in (first, second)
         for i, layer in enumerate(("conv_a", "pool_a", "conv_b"), 1)]))
    assert sorted(files) == sorted(expected)
    for name, png in expected.items():  # within a colour step of the reference's rounding
        np.testing.assert_allclose(
            np.asarray(Image.open(io.BytesIO(files[name])), dtype=int),
            np.asarray(Image.open(io.BytesIO(png)), dtype=int), atol=1, err_msg=name)
