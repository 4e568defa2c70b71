"""The sidebar while ImageNet weights download (issue 15, item 4): a bar with the size and the
time left, then how long it took; a failed download's reason in the sidebar, the app still
working. And the bundled shortcut model in the model list (issue 13). The loader is a fake
(no network, no VGG16): it reports progress as :func:`viz_core.models.downloads.fetch` would."""
from __future__ import annotations

import dataclasses

from streamlit.testing.v1 import AppTest

import viz_core.runtime.workbench
from tests.conftest import tiny_cnn, wrap
from viz_core.models.catalog import load_builtin_model
from viz_core.models.downloads import DownloadError

MB = 2**20


def app_with_loader(monkeypatch, tmp_path, loader) -> AppTest:
    from ui.state import workbench

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty Keras cache: nothing is cached
    monkeypatch.setattr(viz_core.runtime.workbench, "load_builtin_model", loader)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=180)
    at.run()
    at.sidebar.selectbox(key="model").set_value("vgg16").run()
    assert at.sidebar.radio(key="weights").value == "none"  # offline-first default
    assert any("ImageNet weights (528 MB) are not in Keras' cache" in c.value
               for c in at.sidebar.caption)
    return at


def test_a_download_shows_its_size_and_how_long_it_took(monkeypatch, tmp_path):
    loaded = dataclasses.replace(wrap(tiny_cnn(size=32, classes=4, seed=3), name="vgg16"),
                                 weights="imagenet", title="VGG16 (ImageNet)")
    calls = []

    def loader(name, weights="imagenet", *, progress=None, **kw):
        calls.append((name, weights))
        if progress is not None:  # 528 MB in 120 s, reported as fetch() does
            for done, seconds in ((0, 0.0), (132 * MB, 30.0), (264 * MB, 60.0),
                                  (528 * MB, 120.0)):
                progress(done, 528 * MB, seconds)
        return loaded

    at = app_with_loader(monkeypatch, tmp_path, loader)
    at.sidebar.radio(key="weights").set_value("imagenet").run()
    assert not at.exception, at.exception
    assert calls[-1] == ("vgg16", "imagenet")
    bars = at.sidebar.get("progress")
    assert len(bars) == 1
    assert bars[0].proto.value == 100
    assert bars[0].proto.text == "Downloaded VGG16's ImageNet weights: 528.0 MB in 2 min"
    assert not at.sidebar.error


def test_a_failed_download_gives_its_reason_and_the_app_keeps_working(monkeypatch, tmp_path):
    """A download that fails after a quarter: the bar gives way to the reason."""
    reported = []
    untrained = dataclasses.replace(wrap(tiny_cnn(size=32, classes=4, seed=4), name="vgg16"),
                                    weights="none", title="VGG16 (random weights)")

    def loader(name, weights="imagenet", *, progress=None, **kw):
        if weights == "none":
            return untrained
        progress(0, 528 * MB, 0.0)
        progress(132 * MB, 528 * MB, 30.0)
        reported.append(name)
        raise DownloadError("Could not download VGG16's ImageNet weights: storage.googleapis.com "
                            "could not be found (is this machine connected to the internet?)")

    at = app_with_loader(monkeypatch, tmp_path, loader)
    at.sidebar.radio(key="weights").set_value("imagenet").run()
    assert not at.exception, at.exception
    assert reported == ["vgg16"]
    errors = [e.value for e in at.sidebar.error]
    assert errors == ["Could not download VGG16's ImageNet weights: storage.googleapis.com "
                      "could not be found (is this machine connected to the internet?)"]
    assert not at.sidebar.get("progress")  # the bar gave way to the message
    assert "Choose a model in the sidebar" in at.info[0].value  # the page keeps working
    at.sidebar.radio(key="weights").set_value("none").run()  # random weights still work
    assert not at.exception and not at.sidebar.error


def test_the_bar_text_while_downloading():
    """What the bar says mid-way: size done, size in all, time left (redrawn at most every
    0.25 s)."""
    from ui.sidebar import DownloadBar

    class Slot:
        def __init__(self):
            self.shown = []

        def progress(self, value, text):
            self.shown.append((round(value, 3), text))

    slot = Slot()
    bar = DownloadBar("VGG16", slot)
    bar(0, 528 * MB, 0.0)
    bar(1 * MB, 528 * MB, 0.1)  # too soon after the last drawing: skipped
    bar(132 * MB, 528 * MB, 30.0)
    bar(528 * MB, 528 * MB, 30.1)  # the end is always drawn
    assert slot.shown == [
        (0.0, "Downloading VGG16's ImageNet weights: 0.0 of 528.0 MB"),
        (0.25, "Downloading VGG16's ImageNet weights: 132.0 of 528.0 MB, about 2 min left"),
        (1.0, "Downloaded VGG16's ImageNet weights: 528.0 MB in 30 s"),
    ]


def test_the_shortcut_demo_is_a_sidebar_model():
    """Selected as the Dataset page does when it opens one of its scenes (session state
    ``model = "shortcut_demo"``), the sidebar explains with the bundled shortcut model: its
    64x64 input, no weights choice, shapes pictures first."""
    from ui.state import workbench

    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=180)
    at.session_state["model"] = "shortcut_demo"
    at.run()
    assert not at.exception, at.exception
    picker = at.sidebar.selectbox(key="model")
    assert picker.value == "shortcut_demo"
    assert "Shortcut demo: CNN that cheats" in picker.options  # its title in the list
    assert not at.sidebar.radio  # a bundled model has no weights to choose
    metrics = {m.label: m.value for m in at.metric}
    reference = load_builtin_model("shortcut_demo")
    assert metrics["Input"] == "64×64×3" == "×".join(map(str, reference.info.input_shape))
    assert at.sidebar.selectbox(key="image").value == "circle"  # shapes come first
    workbench.clear()
