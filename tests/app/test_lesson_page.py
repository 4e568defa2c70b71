"""AppTest for the "How it computes" page on a tiny model standing in for the demo model.

The numbers the page shows are checked against an independent Keras forward pass and the
layer's own weights; the sandbox against sizes worked out by hand.
"""
from __future__ import annotations

import base64
import json
import re

import keras
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import viz_core.runtime.workbench
from tests.conftest import tiny_cnn, wrap
from ui.lesson_views import STRONGEST
from ui.state import SELECTION_KEY
from viz_core.inputs.intake import load_image
from viz_core.inputs.samples import sample_bytes

HAND = re.compile(r"Redone by hand: (\S+); the model computed (\S+) \(difference")


@pytest.fixture
def app(monkeypatch):
    from ui.state import workbench

    loaded = wrap(tiny_cnn(size=24, classes=4), name="demo")
    monkeypatch.setattr(viz_core.runtime.workbench, "load_builtin_model",
                        lambda name, weights="imagenet", **kw: loaded)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=120)
    at.run()
    at.switch_page("pages/lesson.py")
    at.run()
    assert not at.exception, at.exception
    yield at, loaded
    workbench.clear()


def chart(at, key):
    return next(c for c in at.get("plotly_chart") if c.key == key)


def cells(chart_element) -> np.ndarray:
    """The z of a grid figure's first trace (plotly may send it as typed-array base64)."""
    z = json.loads(chart_element.proto.spec)["data"][0]["z"]
    if isinstance(z, dict):
        shape = [int(d) for d in str(z["shape"]).split(",")]
        return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape)
    return np.array([[np.nan if v is None else v for v in row] for row in z], dtype="float64")


def metric(at, label) -> str:
    return next(m.value for m in at.metric if m.label == label)


def direct(loaded, image_name, layer):
    view = loaded.view(load_image(sample_bytes(image_name), image_name))
    inputs = view.pixels[None] / 255.0
    return np.asarray(keras.Model(loaded.model.inputs,
                                  loaded.model.get_layer(layer).output)(inputs))[0], view


def test_a_conv_position_shows_its_patch_kernel_products_and_the_models_value(app):
    at, loaded = app
    assert at.title[0].value == "How it computes"
    image = at.session_state[SELECTION_KEY].image.name
    assert at.selectbox(key="lesson_layer").options == [
        "conv_a · Conv2D · 24×24×4", "pool_a · MaxPooling2D · 12×12×4",
        "conv_b · Conv2D · 12×12×6", "gap · GlobalAveragePooling2D · 6", "head · Dense · 4"]
    at.selectbox(key="lesson_layer").set_value("conv_b").run()
    at.number_input(key="lesson_channel").set_value(5).run()
    at.number_input(key="lesson_y").set_value(0).run()
    at.number_input(key="lesson_x").set_value(11).run()
    assert not at.exception, at.exception
    output, _ = direct(loaded, image, "conv_b")
    pooled, _ = direct(loaded, image, "pool_a")
    assert float(metric(at, "Model's value")) == pytest.approx(float(output[0, 11, 5]),
                                                                    rel=1e-2, abs=1e-3)
    # the strongest input channel is shown first; its patch: rows -1..1, columns 10..12
    kernel = loaded.model.get_layer("conv_b").get_weights()[0][:, :, :, 5]
    padded = np.pad(pooled, ((1, 1), (1, 1), (0, 0)))
    patch = padded[0:3, 11:14, :]
    strongest = int(np.argmax(np.abs((patch * kernel).sum(axis=(0, 1)))))
    choice = at.selectbox(key="lesson_conv_input")
    assert choice.value == STRONGEST
    assert choice.options[0].startswith(f"the strongest here (input channel {strongest}: ")
    shown_patch = cells(chart(at, "lesson_conv_patch"))
    expected = patch[:, :, strongest].astype("float64")
    expected[0, :] = np.nan  # padding cells are drawn by a trace of their own
    expected[:, 2] = np.nan
    np.testing.assert_allclose(shown_patch, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cells(chart(at, "lesson_conv_kernel")), kernel[:, :, strongest],
                               rtol=1e-6)
    assert any("the model computed" in s.value for s in at.success)

    # a chosen input channel stays while the position moves; another layer opens on the strongest
    other = (strongest + 1) % 6
    at.selectbox(key="lesson_conv_input").set_value(other).run()
    at.number_input(key="lesson_y").set_value(1).run()
    assert at.selectbox(key="lesson_conv_input").value == other
    np.testing.assert_allclose(cells(chart(at, "lesson_conv_kernel")), kernel[:, :, other],
                               rtol=1e-6)
    at.selectbox(key="lesson_layer").set_value("conv_a").run()
    assert at.selectbox(key="lesson_conv_input").value == STRONGEST
    assert not at.exception, at.exception


def test_pooling_dense_probabilities_and_the_sandbox(app):
    at, loaded = app
    image = at.session_state[SELECTION_KEY].image.name
    at.selectbox(key="lesson_layer").set_value("pool_a").run()
    at.number_input(key="lesson_channel").set_value(2).run()
    at.number_input(key="lesson_y").set_value(3).run()
    at.number_input(key="lesson_x").set_value(4).run()
    conv, _ = direct(loaded, image, "conv_a")
    window = conv[6:8, 8:10, 2]
    np.testing.assert_allclose(cells(chart(at, "lesson_pool_window")), window, rtol=1e-6)
    assert float(metric(at, "Max of the window")) == pytest.approx(float(window.max()),
                                                                   rel=1e-2, abs=1e-3)
    at.selectbox(key="lesson_layer").set_value("head").run()
    assert not at.exception, at.exception
    assert at.number_input(key="lesson_channel").label == "Unit"
    probabilities, _ = direct(loaded, image, "head")
    table = at.table[0].value
    assert list(table["class"]) == [f"class {i}" for i in np.argsort(-probabilities)]
    np.testing.assert_allclose(table["probability"].astype(float), np.sort(probabilities)[::-1],
                               atol=1e-4)

    at.segmented_control(key="lesson_view").set_value("Sandbox").run()
    assert not at.exception, at.exception
    at.slider(key="lesson_sb_stride").set_value(2).run()
    at.slider(key="lesson_sb_padding").set_value(1).run()
    text = " ".join(m.value for m in at.markdown)
    # n = 7, k = 3, s = 2, p = 1: (7 + 2 - 2 - 1) / 2 + 1 = 4
    assert "⌊(7 + 2·1 − 1·(3 − 1) − 1) / 2⌋ + 1 = ⌊6 / 2⌋ + 1 = 4" in text
    assert cells(chart(at, "lesson_sb_output")).shape == (4, 4)
    at.slider(key="lesson_sb_dilation").set_value(3).run()  # span 7 in a padded 9: 2 outputs
    assert cells(chart(at, "lesson_sb_output")).shape == (2, 2)


def by_hand(at) -> tuple[float, float]:
    """The page's check line: the number redone by hand and the model's own (6 digits)."""
    line = next(s.value for s in at.success if s.value.startswith("Redone by hand: "))
    found = HAND.match(line)
    assert found, line
    return float(found[1]), float(found[2])


def param(at, key):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) else value


def test_a_link_opens_the_same_unit_and_keeps_it_across_pages(monkeypatch):
    """A link naming the layer, channel, position and input channel opens that unit: the
    numbers are the backend's (``vc.unit``) for it; another page and back keeps all of it."""
    import viz_core as vc
    from ui.state import workbench

    loaded = wrap(tiny_cnn(size=24, classes=4), name="demo")
    monkeypatch.setattr(viz_core.runtime.workbench, "load_builtin_model",
                        lambda name, weights="imagenet", **kw: loaded)
    workbench.clear()
    unit = vc.unit(loaded, load_image(sample_bytes("circle"), "circle"), "conv_b", 3, (11, 2))
    sums = np.abs(unit.products.sum(axis=(0, 1)))
    weakest = int(np.argmin(sums))  # not the one shown by default
    assert weakest != int(np.argmax(sums))
    link = {"image": "circle", "lesson_layer": "conv_b", "lesson_channel": "3",
            "lesson_y": "11", "lesson_x": "2", "lesson_conv_input": str(weakest),
            "lesson_cmap": "magma"}
    at = AppTest.from_file("../../app.py", default_timeout=120)
    at.query_params.update(link)
    at.run()
    at.switch_page("pages/lesson.py").run()
    assert not at.exception, at.exception

    def shown():
        return (at.selectbox(key="lesson_layer").value, at.number_input(key="lesson_channel").value,
                at.number_input(key="lesson_y").value, at.number_input(key="lesson_x").value,
                at.selectbox(key="lesson_conv_input").value, at.selectbox(key="lesson_cmap").value)

    assert at.session_state[SELECTION_KEY].image.name == "circle"
    assert shown() == ("conv_b", 3, 11, 2, weakest, "magma")
    hand, model_value = by_hand(at)
    assert unit.activation != 0.0
    assert hand == pytest.approx(unit.activation, rel=1e-5, abs=1e-6)
    assert model_value == pytest.approx(unit.model_activation, rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(cells(chart(at, "lesson_conv_kernel")),
                               unit.kernel[:, :, weakest], rtol=1e-6)
    expected = np.where(unit.padded, np.nan, unit.patch[:, :, weakest])
    np.testing.assert_allclose(cells(chart(at, "lesson_conv_patch")), expected, rtol=1e-5,
                               atol=1e-6)
    assert {k: param(at, k) for k in link} == link

    # moved to another column and input channel: another page and back keeps the new ones
    # (not the link's), with the backend's numbers for them, and the link follows
    at.number_input(key="lesson_x").set_value(7).run()
    at.selectbox(key="lesson_conv_input").set_value(STRONGEST).run()
    moved = vc.unit(loaded, load_image(sample_bytes("circle"), "circle"), "conv_b", 3, (11, 7))
    at.switch_page("pages/overview.py").run()
    for key in link:  # as a browser does on another page (AppTest leaves the address bar)
        if key.startswith("lesson_") and key in at.query_params:
            del at.query_params[key]
    for page in ("pages/heatmaps.py", "pages/lesson.py"):
        at.switch_page(page).run()
        assert not at.exception, at.exception
    assert shown() == ("conv_b", 3, 11, 7, STRONGEST, "magma")
    hand, model_value = by_hand(at)
    assert hand == pytest.approx(moved.activation, rel=1e-5, abs=1e-6)
    assert model_value == pytest.approx(moved.model_activation, rel=1e-5, abs=1e-6)
    strongest = int(np.argmax(np.abs(moved.products.sum(axis=(0, 1)))))
    np.testing.assert_allclose(cells(chart(at, "lesson_conv_kernel")),
                               moved.kernel[:, :, strongest], rtol=1e-6)
    assert {k: param(at, k) for k in link} == {**link, "lesson_x": "7",
                                               "lesson_conv_input": None}
    workbench.clear()


def test_hostile_layer_and_class_names_are_shown_as_data(monkeypatch):
    from tests.hostile_names import CLASS_NAMES, LAYER_NAMES, hostile_names_cnn
    from ui.state import workbench

    loaded = wrap(hostile_names_cnn(size=16), labels=CLASS_NAMES, name="demo")
    monkeypatch.setattr(viz_core.runtime.workbench, "load_builtin_model",
                        lambda name, weights="imagenet", **kw: loaded)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=120)
    at.run()
    at.switch_page("pages/lesson.py").run()
    for layer in (LAYER_NAMES[1], "--out.x", "head"):
        at.selectbox(key="lesson_layer").set_value(layer).run()
        assert not at.exception, (layer, at.exception)
        assert any("the model computed" in s.value for s in at.success), layer
    assert "$(touch x)" in at.selectbox(key="lesson_layer").options[2]
    assert list(at.table[0].value["class"])[0] in CLASS_NAMES
    at.segmented_control(key="lesson_view").set_value("Logits to probabilities").run()
    assert not at.exception, at.exception
    assert sorted(at.table[0].value["class"]) == sorted(CLASS_NAMES)
    workbench.clear()


def test_a_single_sigmoid_shows_both_classes_probabilities(monkeypatch):
    """One sigmoid unit is the second class's probability p; the first class gets 1 - p (the
    bars name both, largest first), checked against Keras's own output."""
    from ui.state import workbench

    loaded = wrap(tiny_cnn(size=16, classes=1, activation="sigmoid"), name="demo",
                  labels=("cat", "dog"))
    monkeypatch.setattr(viz_core.runtime.workbench, "load_builtin_model",
                        lambda name, weights="imagenet", **kw: loaded)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=120)
    at.run()
    at.switch_page("pages/lesson.py").run()
    at.segmented_control(key="lesson_view").set_value("Logits to probabilities").run()
    assert not at.exception, at.exception
    p = float(direct(loaded, at.session_state[SELECTION_KEY].image.name, "head")[0][0])
    bars = json.loads(chart(at, "lesson_probabilities").proto.spec)["data"][0]
    shown = dict(zip(bars["y"], bars["x"]))
    assert shown["dog"] == pytest.approx(p, abs=1e-5)
    assert shown["cat"] == pytest.approx(1 - p, abs=1e-5)
    assert bars["y"][0] == ("dog" if p >= 0.5 else "cat")  # the likelier class first
    assert list(at.table[0].value["class"]) == ["dog"]
    text = " ".join(m.value for m in at.markdown)
    assert f"more likely class is **{'dog' if p >= 0.5 else 'cat'}**" in text
    workbench.clear()
