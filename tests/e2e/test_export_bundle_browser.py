"""Export bundle in a real browser, with an uploaded model whose layer and class names look
like command-line options (the report: a conv layer named ``-h`` ended the server through Export
bundle; an uploaded model's bundle gave no download at all).

The test uploads the model, opens Class heatmaps on its ``-h`` layer (shown as ``layer_-h``:
TensorFlow cannot use ``-h`` as a name scope, so uploads are renamed), clicks Export bundle,
unzips what the browser saved, runs its command.txt in a fresh process and compares the
pictures, and checks that the server still answers and still serves the page.
"""
from __future__ import annotations

import io
import re
import shlex
import zipfile
from pathlib import Path

import pytest

from tests.e2e.conftest import _healthy
from tests.e2e.test_browser import (CLASS_PICKER, WAIT_MS, assert_no_crash, choose, open_app,
                                     settle)
from tests.hostile_names import CLASS_NAMES, hostile_names_cnn, shown
from tests.test_bundle import rerun_bundle

pytestmark = pytest.mark.e2e


def test_export_bundle_of_an_uploaded_model_with_option_like_names(page, server, tmp_path,
                                                                   artifacts):
    path = tmp_path / "-h.keras"
    hostile_names_cnn().save(path)
    open_app(page, server)
    choose(page, "Model", "Upload a model file (.keras / .h5)")
    uploader = page.locator('[data-testid="stSidebar"] [data-testid="stFileUploader"]').first
    uploader.locator('input[type="file"]').set_input_files(str(path))
    names = page.get_by_label("Class names (one per line, optional)")
    names.fill("\n".join(CLASS_NAMES))
    names.press("Control+Enter")
    page.get_by_text("Output: softmax over 4 classes").first.wait_for(timeout=WAIT_MS)
    settle(page)
    page.locator('a[data-testid="stTopNavLink"][href$="/heatmaps"]').first.click()
    page.get_by_role("radiogroup", name=CLASS_PICKER).wait_for(
        timeout=WAIT_MS)
    settle(page)
    page.get_by_role("combobox", name="Layer", exact=True).click()
    page.get_by_role("option", name=re.compile(rf"^{re.escape(shown('-h'))} · ")).click()
    settle(page)
    assert_no_crash(page)
    button = page.get_by_role("button", name="Export bundle").first
    with page.expect_download(timeout=WAIT_MS) as info:
        button.click()
    download = info.value
    data = Path(download.path()).read_bytes()
    assert download.suggested_filename == "cnn_explorer_heatmap.zip"
    assert _healthy(server)  # the server is still up after the export
    page.screenshot(path=str(artifacts / "export_bundle_hostile_names.png"), full_page=True)

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        argv = shlex.split(archive.read("command.txt").decode())
        stored = {n: archive.read(n) for n in archive.namelist() if n.startswith("pictures/")}
        assert archive.read("model/model.keras") == path.read_bytes()
        assert archive.read("model/labels.txt").decode().splitlines() == list(CLASS_NAMES)
    assert argv[argv.index("--layer") + 1] == shown("-h")  # "-h", renamed when loaded
    assert any(n.endswith(".png") for n in stored) and any(n.endswith(".npy") for n in stored)
    assert rerun_bundle(data, tmp_path / "unzipped") == stored

    # ... and it still serves pages: reload and the heatmaps come back.
    page.reload()
    settle(page)
    assert_no_crash(page)
    assert _healthy(server)
