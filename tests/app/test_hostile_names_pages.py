"""Every page and every export with an uploaded model whose layer and class names look like
command-line options, shell code or a 300-character name: nothing ends the process, nothing runs
as code, nothing is written outside the temporary folders, and each bundle's command.txt gives
the names back word for word.

The export buttons' callables are taken from Streamlit's media manager and called from the
test's thread, with no session, as the real server calls them from a worker thread.
"""
from __future__ import annotations

import io
import shlex
import zipfile
from pathlib import Path

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from tests.hostile_names import CLASS_NAMES, hostile_names_cnn, shown
from ui.feedback import BackgroundWorkFailed

PAGES = ("pages/overview.py", "pages/feature_maps.py", "pages/filters.py", "pages/heatmaps.py",
         "pages/lime.py", "pages/compare.py", "pages/sanity.py")
RUN_BUTTONS = ("lime_run", "cam_run", "cmp_run", "san_run")


@pytest.fixture
def deferred(monkeypatch):
    """Every download callable the pages register: (file name, callable), in order."""
    found: list[tuple[str, object]] = []
    original = MediaFileManager.add_deferred

    def record(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        found.append((file_name or "", data_callable))
        return original(self, data_callable, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    return found


def test_every_page_and_export_treats_hostile_names_as_data(tmp_path, monkeypatch, deferred):
    from ui.state import workbench

    monkeypatch.chdir(tmp_path)  # a "$(touch x)" that ran would leave ./x here
    model_path = tmp_path / "-h.keras"
    hostile_names_cnn().save(model_path)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=180)
    at.run()
    at.sidebar.selectbox(key="model").set_value("upload").run()
    at.sidebar.file_uploader(key="model_file").set_value(
        ("-h.keras", model_path.read_bytes(), "application/octet-stream"))
    at.sidebar.text_area(key="model_labels").set_value("\n".join(CLASS_NAMES)).run()
    assert not at.exception and not at.sidebar.error, (at.exception, at.sidebar.error)

    bundles: dict[str, bytes] = {}
    for page in PAGES:
        at.switch_page(page).run()
        for key in RUN_BUTTONS:
            if any(b.key == key for b in at.button):
                at.button(key=key).click().run()
        assert not at.exception, (page, at.exception)
        for name, make in deferred:
            if name.startswith("cnn_explorer_") and name not in bundles:
                bundles[name] = make()
        deferred.clear()

    # Feature maps, filter patterns, class heatmaps, LIME, compare and sanity all export.
    assert sorted(bundles) == [f"cnn_explorer_{c}.zip" for c in (
        "activations", "compare", "filters", "heatmap", "lime", "sanity")]
    for name, data in bundles.items():
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            argv = shlex.split(archive.read("command.txt").decode())
            labels = archive.read("model/labels.txt").decode().splitlines()
            assert any(n.startswith("pictures/") for n in archive.namelist()), name
        assert labels == list(CLASS_NAMES), name
        assert argv[argv.index("--model") + 1] == "model/model.keras", name
    layers = {}
    for name, flag in (("activations", "--layers"), ("filters", "--layer")):
        argv = shlex.split(zipfile.ZipFile(io.BytesIO(bundles[f"cnn_explorer_{name}.zip"]))
                           .read("command.txt").decode())
        layers[name] = [w.split("=", 1)[1] for w in argv if w.startswith(flag + "=")] + [
            argv[i + 1] for i, w in enumerate(argv) if w == flag]
    # The layers the pages show by default (the first conv layer "-h", the middle one for
    # filter patterns), as the app names them, come back word for word.
    assert layers == {"activations": [shown("-h")], "filters": [shown("$(touch x)")]}
    assert not (tmp_path / "x").exists() and not Path("/tmp/x").exists()
    workbench.clear()


def test_a_bundle_that_tries_to_end_the_process_fails_with_a_message(monkeypatch, deferred):
    """A SystemExit inside the bundle (argparse's way out) becomes a failed download and a
    message under the button on the next run; the test process (the server) goes on."""
    import viz_core.cli.bundle
    from ui.state import workbench

    def exits(*args, **kwargs):
        raise SystemExit(2)

    monkeypatch.setattr(viz_core.cli.bundle, "export_bundle", exits)
    monkeypatch.setattr("ui.export.export_bundle", exits)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=180)
    at.run()
    at.switch_page("pages/heatmaps.py").run()
    make = next(make for name, make in deferred if name == "cnn_explorer_heatmap.zip")
    with pytest.raises(BackgroundWorkFailed, match="something went wrong .SystemExit."):
        make()
    at.run()
    assert [e.value for e in at.error] == [
        "The export bundle could not be made: something went wrong (SystemExit); the details "
        "are in the server's log."]
    at.run()  # said once
    assert not at.error
    workbench.clear()
