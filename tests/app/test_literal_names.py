"""Names users choose are shown as typed, errors as messages, upload limits as enforced.

* A layer called ``![px](px_layer.png)`` and classes called ``**x**`` / ``<img src=x>`` are
  shown literally on every page: no element the browser renders as Markdown carries them raw
  (so no image is requested, nothing is bold), and their escaped form is what is shown.
* An unexpected exception in a page becomes "Something went wrong with this model: ..."
  without server paths, and the traceback goes to the server log.
* The uploaders' limits are checked again on the bytes received.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import keras
import pytest
from streamlit.testing.v1 import AppTest

import viz_core.runtime.workbench
from tests.conftest import wrap
from ui.sidebar import MAX_IMAGE_MB, MAX_MODEL_MB, received_bytes
from ui.text import literal
from viz_core.models.catalog import MAX_MODEL_BYTES
from viz_core.inputs.intake import MAX_BYTES

PX_LAYER = "![px](px_layer.png)"
ODD_LABELS = ["**x**", "<img src=x>", "![c](c.png)", "_y_"]
# Elements whose text Streamlit renders as Markdown (labels, help and captions included).
PLAIN_TEXT = {"selectbox", "multiselect", "text_area", "text_input", "code", "text", "json",
              "arrow_data_frame", "plotly_chart", "download_button_data", "vega_lite_chart"}


def cnn(layer_names=("conv_a", "conv_b"), classes=4) -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((48, 48, 3)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name=layer_names[0]),
        keras.layers.MaxPooling2D(2, name="pool"),
        keras.layers.Conv2D(6, 3, padding="same", activation="relu", name=layer_names[1]),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(classes, activation="softmax", name="head")], name="tiny")


def start(monkeypatch, loaded, page: str) -> AppTest:
    from ui.state import workbench

    monkeypatch.setattr(viz_core.runtime.workbench, "load_builtin_model",
                        lambda name, weights="imagenet", **kw: loaded)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=120)
    at.run()
    at.switch_page(page)
    at.run()
    return at


def markdown_texts(at) -> list[str]:
    """Every string the app sent for Markdown rendering (bodies, labels, help, captions)."""
    texts = []

    def walk(node):
        proto = getattr(node, "proto", None)
        kind = getattr(node, "type", "")
        if proto is not None and kind not in PLAIN_TEXT:
            for field, value in proto.ListFields():
                if field.name in ("body", "label", "help", "caption", "text", "placeholder"):
                    texts.append(str(value))
                elif field.name == "imgs":  # st.image: one caption per picture
                    texts.extend(img.caption for img in value)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return texts


def assert_shown_literally(at, names) -> None:
    texts = markdown_texts(at)
    assert texts
    for name in names:
        raw = [t for t in texts if name in t]
        assert raw == [], f"{name!r} reaches Markdown unescaped in {raw[:3]}"
    assert any(literal(names[0]) in t for t in texts), f"{names[0]!r} is not shown at all"


def test_a_markdown_layer_name_is_shown_as_typed_on_feature_maps(monkeypatch):
    loaded = wrap(cnn((PX_LAYER, "conv_b")), name="demo")
    at = start(monkeypatch, loaded, "pages/feature_maps.py")
    assert not at.exception, at.exception
    at.selectbox(key="fm_layer").set_value(PX_LAYER).run()
    assert not at.exception, at.exception
    assert_shown_literally(at, [PX_LAYER])
    assert literal(PX_LAYER) == "!\\[px\\](px_layer.png)"


@pytest.mark.parametrize("page, run, shown", [("pages/overview.py", None, False),
                                              ("pages/heatmaps.py", None, True),
                                              ("pages/lime.py", "lime_run", True)])
def test_markdown_class_names_are_shown_as_typed(monkeypatch, page, run, shown):
    loaded = wrap(cnn(), labels=ODD_LABELS, name="demo")
    at = start(monkeypatch, loaded, page)
    if run:
        at.button(key=run).click().run()
    assert not at.exception, at.exception
    texts = markdown_texts(at)
    for label in ODD_LABELS:
        assert [t for t in texts if label in t] == [], f"{label!r} reaches Markdown unescaped"
    escaped = [label for label in ODD_LABELS if any(literal(label) in t for t in texts)]
    assert bool(escaped) == shown, escaped


def test_unexpected_errors_reach_the_page_as_a_message(monkeypatch, caplog):
    """The app's page guard (app.py): no traceback element, no server path, a log entry."""
    import viz_core.models.predict
    from ui.state import workbench

    def broken(*args, **kwargs):
        raise RuntimeError("tensor rank 7 is odd at /srv/app/viz_core/secret.py line 3\nmore")

    monkeypatch.setattr(viz_core.runtime.workbench, "load_builtin_model",
                        lambda name, weights="imagenet", **kw: wrap(cnn(), name="demo"))
    monkeypatch.setattr(viz_core.models.predict, "predict", broken)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=120)
    with caplog.at_level(logging.ERROR, logger="cnn_explorer"):
        at.run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert errors == ["Something went wrong with this model: tensor rank 7 is odd at … line 3"]
    logged = [r for r in caplog.records if r.name == "cnn_explorer"]
    assert logged and "secret.py" in str(logged[0].exc_info[1])
    workbench.clear()


@dataclass
class FakeUpload:
    """What ``st.file_uploader`` returns, with only the fields the sidebar reads."""

    name: str
    size: int
    file_id: str = "f1"

    def getvalue(self) -> bytes:
        return b"x" * self.size


class Where:
    def __init__(self):
        self.errors = []

    def error(self, text, **kwargs):
        self.errors.append(text)


def test_upload_limits_are_checked_on_the_bytes_received():
    where = Where()
    assert received_bytes(FakeUpload("ok.png", 10), MAX_BYTES, "image", where) == b"x" * 10
    assert received_bytes(FakeUpload("big **x**.png", MAX_BYTES + 1), MAX_BYTES, "image",
                          where) is None
    assert where.errors == ["The image big \\*\\*x\\*\\*.png is 50.0 MB; up to 50 MB is accepted."]


def test_widget_limits_shown_are_the_limits_enforced():
    assert MAX_IMAGE_MB * 2**20 == MAX_BYTES  # the widget says "50MB"; 50 MiB are accepted
    assert MAX_MODEL_MB * 2**20 == MAX_MODEL_BYTES
