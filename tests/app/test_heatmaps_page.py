"""AppTest for the Class heatmaps page, on a tiny model standing in for the demo model.

The sidebar's "demo" choice is patched to load a seeded two-conv model, so the page is fast and
what it shows can be checked against viz_core.methods.heatmap called directly. After ``at.switch_page``
AppTest runs the page without ``app.py`` (no sidebar), so the selection is read from, and the
second image put into, the session state, as the sidebar would.
"""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import viz_core.runtime.workbench
from ui.state import SELECTION_KEY
from tests.app.media import capture_media, png_of, values
from tests.conftest import tiny_cnn, wrap
from viz_core.methods.heatmap import class_heatmap
from viz_core.inputs.intake import load_image
from viz_core.render import overlay_heatmap
from viz_core.inputs.samples import sample_bytes
from viz_core.models.targets import Target

LABELS = ["circle", "square", "triangle", "star"]


def open_heatmaps(monkeypatch, loaded):
    """The Class heatmaps page with ``loaded`` as the demo model; the AppTest and the media."""
    monkeypatch.setattr(viz_core.runtime.workbench, "load_builtin_model",
                        lambda name, weights="imagenet", **kw: loaded)
    media = capture_media(monkeypatch)
    at = AppTest.from_file("../../app.py", default_timeout=120)
    at.run()
    at.switch_page("pages/heatmaps.py")
    at.run()
    assert not at.exception, at.exception
    return at, media


@pytest.fixture
def app(monkeypatch):
    from ui.state import workbench

    loaded = wrap(tiny_cnn(size=48, classes=4), labels=LABELS, name="demo")
    workbench.clear()
    at, media = open_heatmaps(monkeypatch, loaded)
    yield at, loaded, media
    workbench.clear()


def selected(at):
    image = at.session_state[SELECTION_KEY].image
    assert image.name == "circle"  # the sidebar's first shapes sample for the demo model
    return load_image(sample_bytes(image.name), image.name)




def downloaded(at, media, image, k) -> np.ndarray:
    """The overlay PNG offered for download for ``image`` and class ``k``."""
    key = f"cam_download_{image.digest[:12]}_{k}"
    keys = [b.key for b in at.get("download_button")]
    assert key in keys, (key, keys, [e.value for e in at.error], [i.value for i in at.info], [b.label for b in at.button], at.title[0].value if at.title else None)
    button = next(b for b in at.get("download_button") if b.key == key)
    return png_of(media, button)


def captions(at) -> list[str]:
    return [c for img in at.get("image") for c in img.captions]


def test_top5_picker_two_classes_overlay_and_hover_values(app):
    at, loaded, media = app
    original = selected(at)
    view = loaded.view(original)
    probs = np.asarray(loaded.model(loaded.batch([view])))[0]
    ranked = list(np.argsort(-probs, kind="stable"))
    assert at.title[0].value == "Class heatmaps"
    # top-5 (here all 4 classes, most probable first) plus "another class"
    assert at.radio(key="cam_class").options[:4] == [
        f"{LABELS[k]} ({k}) · p = {probs[k]:.1%}" for k in ranked]
    assert at.selectbox(key="cam_class_2").value == int(ranked[1])  # runner-up side by side
    first = class_heatmap(loaded, view, Target(int(ranked[0])))
    second = class_heatmap(loaded, view, Target(int(ranked[1])))
    np.testing.assert_array_equal(downloaded(at, media, original, ranked[0]),
                                  overlay_heatmap(original.pixels, first.heatmap))
    np.testing.assert_array_equal(downloaded(at, media, original, ranked[1]),
                                  overlay_heatmap(original.pixels, second.heatmap))
    assert captions(at)[0].startswith(f"p = {first.probability:.1%} · Grad-CAM at `conv_b`")
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    heat = [t for t in chart["data"] if t["type"] == "heatmap"][0]
    z = values(heat["z"])
    np.testing.assert_allclose(z, first.heatmap, atol=1e-6)
    assert "heat %{z:.3f}" in heat["hovertemplate"]


def test_display_options_do_not_recompute_and_probability_is_labelled(app):
    at, loaded, media = app
    from ui.state import workbench

    misses = workbench().results.stats.misses
    at.selectbox(key="cam_colormap").set_value("jet").run()
    at.slider(key="cam_opacity").set_value(0.8).run()
    at.slider(key="cam_threshold").set_value(0.5).run()
    assert not at.exception
    assert workbench().results.stats.misses == misses
    original = selected(at)
    view = loaded.view(original)
    k = at.selectbox(key="cam_class_2").value
    result = class_heatmap(loaded, view, Target(k))
    np.testing.assert_array_equal(downloaded(at, media, original, k),
                                  overlay_heatmap(original.pixels, result.heatmap, opacity=0.8,
                                                  colormap="jet", threshold=0.5))
    at.radio(key="cam_score").set_value("probability").run()
    assert "score: probability" in captions(at)[0]


def test_the_overlay_follows_the_heat_by_default_and_an_even_tint_is_an_option(app):
    at, loaded, media = app
    original = selected(at)
    k = at.selectbox(key="cam_class_2").value
    result = class_heatmap(loaded, loaded.view(original), Target(k))
    heat = downloaded(at, media, original, k)
    np.testing.assert_array_equal(heat, overlay_heatmap(original.pixels, result.heatmap))
    assert result.heatmap.min() < 0.1  # a place with (almost) no evidence
    assert any("opacity follows the heat" in c for c in at.caption.values)
    at.radio(key="cam_blend").set_value("uniform").run()
    at.slider(key="cam_even_opacity").set_value(0.3).run()
    assert not at.exception
    even = downloaded(at, media, original, k)
    np.testing.assert_array_equal(even, overlay_heatmap(
        original.pixels, result.heatmap, opacity=0.3, blend="uniform"))
    # where the map is (almost) 0 the even tint covers the photo at 0.3, the heat blend at the
    # heat itself (< 0.1): the same colour, so the photo changes about 3x less
    h, w = result.heatmap.shape
    y, x = np.unravel_index(np.argmin(result.heatmap), (h, w))
    y0, x0 = (int((y + 0.5) * original.pixels.shape[0] / h),
              int((x + 0.5) * original.pixels.shape[1] / w))
    moved_heat = np.abs(heat[y0, x0].astype(int) - original.pixels[y0, x0]).max()
    moved_even = np.abs(even[y0, x0].astype(int) - original.pixels[y0, x0]).max()
    assert moved_heat < moved_even
    assert not any("opacity follows the heat" in c for c in at.caption.values)


def test_slow_methods_wait_for_the_button_and_second_image_adds_a_row(app):
    at, loaded, media = app
    star = load_image(sample_bytes("star"), "star")
    at.sidebar.selectbox(key="second").set_value("star").run()
    at.selectbox(key="cam_class_2").set_value(-1).run()
    assert len(at.get("image")) == 2 + 1  # one class, two images, and the colour bar
    at.selectbox(key="cam_method").set_value("integrated_gradients").run()
    assert "Compute Integrated Gradients" in [b.label for b in at.button]
    assert len(at.get("image")) == 0
    at.button(key="cam_run").click().run()
    assert not at.exception
    view = loaded.view(star)
    k = at.radio(key="cam_class").value
    result = class_heatmap(loaded, view, Target(k), "integrated_gradients", steps=64)
    np.testing.assert_array_equal(downloaded(at, media, star, k),
                                  overlay_heatmap(star.pixels, result.heatmap))
    assert "attributions sum to" in captions(at)[1]


def test_every_class_is_listed_and_a_new_image_starts_from_its_top_class(app):
    """With 4 classes all are listed, so there is no "Another class…" to search (the search
    of a model with more classes: tests/app/test_walk2_small_items.py)."""
    at, loaded, media = app
    assert at.radio(key="cam_class").label == "Class to explain (top-4 predictions)"
    assert sorted(at.radio(key="cam_class").options) == sorted(
        o for o in at.radio(key="cam_class").options if o.split(" (")[0] in LABELS)
    assert len(at.radio(key="cam_class").options) == len(LABELS)
    square = load_image(sample_bytes("square"), "square")
    at.sidebar.selectbox(key="image").set_value("square").run()
    probs = np.asarray(loaded.model(loaded.batch([loaded.view(square)])))[0]
    ranked = list(np.argsort(-probs, kind="stable"))
    assert at.radio(key="cam_class").value == ranked[0]
    assert at.selectbox(key="cam_class_2").value == ranked[1]


def test_score_cam_layer_switch_keeps_channel_slider_in_range(app):
    at, loaded, media = app
    at.selectbox(key="cam_method").set_value("scorecam").run()
    assert at.slider(key="cam_param_scorecam_max_channels").max == 6  # conv_b has 6 channels
    at.slider(key="cam_param_scorecam_max_channels").set_value(6).run()
    at.selectbox(key="cam_layer").set_value("conv_a").run()
    assert not at.exception
    assert at.slider(key="cam_param_scorecam_max_channels").max == 4 and at.slider(key="cam_param_scorecam_max_channels").value == 4
    assert not at.warning


def test_the_layer_list_leaves_out_the_input_layer(monkeypatch):
    import keras

    from ui.state import workbench

    inputs = keras.Input((48, 48, 3), name="picture")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool_a")(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="head")(x)
    loaded = wrap(keras.Model(inputs, outputs), labels=LABELS, name="demo")
    assert "picture" in loaded.info.spatial_layers  # the model lists its input with the maps
    workbench.clear()
    try:
        at, _ = open_heatmaps(monkeypatch, loaded)
        layers = [option.split(" · ")[0] for option in at.selectbox(key="cam_layer").options]
        assert layers == ["conv_a", "pool_a", "conv_b"]  # as on Feature maps: no "picture"
        assert at.selectbox(key="cam_layer").value == "conv_b"  # the last conv layer
    finally:
        workbench.clear()


def test_each_method_at_its_defaults_is_the_map_the_compare_page_reuses(app):
    """The Compare page reuses the Class heatmaps page's results only while both call a
    method with the same arguments; this catches one of them changing its defaults alone."""
    from ui.state import workbench
    from viz_core.methods import registry
    from viz_core.runtime.compared import compared_map_ready

    at, loaded, media = app
    view = loaded.view(selected(at))
    k = at.radio(key="cam_class").value
    for method in registry.names():  # Compare can run every registered method
        assert not compared_map_ready(workbench(), loaded, view, Target(k), method) or (
            method == "gradcam")  # the page opens on Grad-CAM
        at.selectbox(key="cam_method").set_value(method).run()
        if any(b.key == "cam_run" for b in at.button):
            at.button(key="cam_run").click().run()
        assert not at.exception, at.exception
        assert compared_map_ready(workbench(), loaded, view, Target(k), method), method


def test_an_uploaded_model_is_copied_into_the_export_bundle(tmp_path, monkeypatch):
    """The bundle's command names the uploaded model's copy and the class names typed in the
    sidebar, so it runs anywhere; the copy is the uploaded file, byte for byte."""
    import ui.export
    from ui.state import workbench
    from viz_core.cli.bundle import export_bundle

    path = tmp_path / "my net.keras"
    tiny_cnn(size=40, classes=3, seed=2).save(path)
    made = []
    original = ui.export.bundle_button

    def record(command, options, images, parameters, **kw):  # runs inside the page's run
        made.append((command, list(options), list(images), ui.export._model_files(options)()))
        return original(command, options, images, parameters, **kw)

    monkeypatch.setattr(ui.export, "bundle_button", record)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=120)
    at.run()
    at.sidebar.selectbox(key="model").set_value("upload").run()
    at.sidebar.file_uploader(key="model_file").set_value(
        ("my net.keras", path.read_bytes(), "application/octet-stream"))
    at.sidebar.text_area(key="model_labels").set_value("red\n\ngreen\nblue").run()
    assert not at.exception and not at.sidebar.error
    at.switch_page("pages/heatmaps.py").run()
    assert not at.exception, at.exception
    command, options, images, files = made[-1]
    assert command == "heatmap"
    assert options[:6] == ["--model", "model/model.keras", "--preprocess", "unit", "--labels",
                           "model/labels.txt"]
    assert files == {"model/model.keras": path.read_bytes(),
                     "model/labels.txt": b"red\ngreen\nblue\n"}
    data = export_bundle(command, options, images, {}, bench=workbench(), files=files)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("model/model.keras") == path.read_bytes()
        k = at.radio(key="cam_class").value
        label = ("red", "green", "blue")[k]
        assert f"**{label}** ({k})" in [m.value for m in at.markdown]
        assert any(n.endswith(f"_gradcam_{k}.png") for n in archive.namelist())
    workbench.clear()


def test_every_registered_method_renders_its_heatmap(app):
    """Walk the registry: each method states its cost before a slow run, then draws the map
    class_heatmap makes with the page's defaults, with no exception and no error."""
    from viz_core.methods import registry as methods

    at, loaded, media = app
    original = selected(at)
    view = loaded.view(original)
    k = at.radio(key="cam_class").value
    assert at.selectbox(key="cam_method").options == [methods.title(m) for m in methods.names()]
    for name in methods.names():
        spec = methods.get(name)
        at.selectbox(key="cam_method").set_value(name).run()
        if not spec.fast:
            assert "forward pass" in at.info[0].value and " here for 2 maps" in at.info[0].value
            at.button(key="cam_run").click().run()
        assert not at.exception, (name, at.exception)
        assert not at.error, (name, [e.value for e in at.error])
        layer = "conv_b" if spec.uses_layer else None
        result = class_heatmap(loaded, view, Target(k), name, layer, **spec.page_params(6))
        np.testing.assert_array_equal(downloaded(at, media, original, k),
                                      overlay_heatmap(original.pixels, result.heatmap),
                                      err_msg=name)
        assert captions(at)[0].startswith(f"p = {result.probability:.1%} · {spec.title}")
    which = at.dataframe[0].value
    assert list(which["Method"]) == [spec.title for spec in methods.specs()]


def test_a_registered_toy_method_gets_its_widgets_and_map_with_no_other_edit(app):
    from tests.test_methods import TOY
    from viz_core.methods import registry as methods

    at, loaded, media = app
    original = selected(at)
    view = loaded.view(original)
    with methods.registered(TOY):
        at.run()
        assert "Toy CAM" in at.selectbox(key="cam_method").options
        at.selectbox(key="cam_method").set_value("toycam").run()
        assert not at.exception, at.exception
        slider = at.slider(key="cam_param_toycam_strength")
        assert (slider.min, slider.max, slider.value) == (0.5, 4.0, 2.0)
        slider.set_value(3.5).run()
        k = at.radio(key="cam_class").value
        result = class_heatmap(loaded, view, Target(k), "toycam", strength=3.5)
        np.testing.assert_array_equal(downloaded(at, media, original, k),
                                      overlay_heatmap(original.pixels, result.heatmap))
        assert "Toy CAM" in list(at.dataframe[0].value["Method"])
        at.selectbox(key="cam_method").set_value("gradcam").run()
    at.run()  # unregistered: gone from the choices and the table
    assert not at.exception and "Toy CAM" not in at.selectbox(key="cam_method").options
    assert "Toy CAM" not in list(at.dataframe[0].value["Method"])


def test_a_finished_jobs_maps_are_drawn_with_no_second_computation(app, monkeypatch):
    """The page's plan names the maps once: the job computes each (one call per map), the page
    draws them from the cache (no call), and the bundle's command names the same method,
    parameter and classes."""
    import functools

    import ui.export
    import viz_core.methods.heatmap

    at, loaded, media = app
    calls, made = [], []
    direct = viz_core.methods.heatmap.class_heatmap

    @functools.wraps(direct)  # the same name: the same cache key
    def counted(model, view, target, *args, **kwargs):
        calls.append((target.class_index, kwargs.get("method")))
        return direct(model, view, target, *args, **kwargs)

    monkeypatch.setattr(viz_core.methods.heatmap, "class_heatmap", counted)
    monkeypatch.setattr(ui.export, "bundle_button",
                        lambda command, options, *a, **kw: made.append((command, list(options))))
    at.selectbox(key="cam_method").set_value("scorecam").run()
    at.slider(key="cam_param_scorecam_max_channels").set_value(4).run()
    assert calls == [] and "Compute Score-CAM" in [b.label for b in at.button]
    at.button(key="cam_run").click().run()
    assert not at.exception, at.exception
    first, second = at.radio(key="cam_class").value, at.selectbox(key="cam_class_2").value
    assert calls == [(first, "scorecam"), (second, "scorecam")]  # by the job, once each
    at.selectbox(key="cam_colormap").set_value("jet").run()
    assert len(calls) == 2  # a display change draws from the cache
    original = selected(at)
    expected = direct(loaded, loaded.view(original), Target(second), "scorecam", "conv_b",
                      max_channels=4)
    np.testing.assert_array_equal(downloaded(at, media, original, second),
                                  overlay_heatmap(original.pixels, expected.heatmap,
                                                  colormap="jet"))
    command, options = made[-1]
    assert command == "heatmap"
    assert options[options.index("--method") + 1] == "scorecam"
    assert options[options.index("--max-channels") + 1] == "4"
    assert options[-4:] == ["--class", str(first), "--class", str(second)]
    assert options[options.index("--colormap") + 1] == "jet"
