"""Issue 28, findings 1 and 3 in a real browser, with an uploaded two-class model: Dataset's
"Open ... in the other pages" keeps it (and keeps it on the next click), and the address bar
names the upload, so the link opens a page asking for that file instead of the demo model."""
from __future__ import annotations

import re
import zipfile

import pytest
from PIL import Image

from tests.conftest import tiny_cnn
from tests.e2e.test_browser import WAIT_MS, assert_no_crash, choose, settle
from tests.images import encode

pytestmark = pytest.mark.e2e
UPLOAD_MODEL = "Upload a model file (.keras / .h5)"


def files(tmp_path):
    model = tmp_path / "pets.keras"
    tiny_cnn(size=40, classes=2, seed=2).save(model)
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for i, name in enumerate(("cat/a.png", "dog/b.png", "cat/c.png")):
            out.writestr(name, encode(Image.new("RGB", (24, 24), (60 * i, 20, 200 - 60 * i)),
                                      "PNG"))
    return model, archive


def test_an_uploaded_model_opens_a_dataset_row_and_names_itself_in_the_link(
        browser, server, artifacts, tmp_path):
    model, archive = files(tmp_path)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server}/dataset?image=circle")
        settle(page)
        choose(page, "Model", UPLOAD_MODEL)
        settle(page)
        page.locator(".st-key-model_file input[type=file]").set_input_files(str(model))
        settle(page)
        names = page.get_by_role("textbox", name="Class names (one per line, optional)")
        names.fill("cat\ndog")
        names.press("Control+Enter")
        settle(page)
        page.get_by_text("Upload a ZIP").click()
        settle(page)
        page.locator(".st-key-ds_zip_file input[type=file]").set_input_files(str(archive))
        settle(page)
        page.get_by_role("button", name="Run on the dataset").click()
        settle(page)
        assert_no_crash(page)
        page.get_by_text("All images (sortable table", exact=False).click()
        settle(page)
        grid = page.locator('[data-testid="stDataFrame"]').nth(1)
        grid.scroll_into_view_if_needed()
        box = grid.bounding_box()
        page.mouse.click(box["x"] + 12, box["y"] + 35 + 17)  # the first row's selection box
        page.wait_for_timeout(1000)
        settle(page)
        page.get_by_role("button", name="in the other pages").click()
        page.get_by_role("heading", name="Class heatmaps").first.wait_for(timeout=WAIT_MS)
        settle(page)
        assert_no_crash(page)
        sidebar = page.locator('[data-testid="stSidebar"]')
        assert sidebar.get_by_role("combobox", name="Model", exact=True).input_value() == \
            UPLOAD_MODEL
        classes = page.get_by_role("radiogroup", name="Class to explain (top-2 predictions)")
        assert sorted(t.split(" · ")[0] for t in classes.locator("label").all_inner_texts()) \
            == ["cat (0)", "dog (1)"]
        page.screenshot(path=str(artifacts / "walk2_dataset_row_uploaded_model.png"))
        choose(page, "Colour map", "magma")  # the next click keeps the model too
        settle(page)
        assert page.get_by_text("Choose a model").count() == 0
        assert classes.locator("label").first.inner_text().split(" (")[0] in ("cat", "dog")
        page.wait_for_url(re.compile("model_name=pets.keras"))
        assert "model=upload" in page.url, page.url
        link = page.url

        fresh = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        fresh.set_default_timeout(WAIT_MS)
        fresh.goto(link)
        settle(fresh)
        fresh.get_by_text("This view was made with an uploaded model, pets.keras").wait_for()
        assert fresh.locator('[data-testid="stMain"] [data-testid="stImage"]').count() == 0
        fresh.screenshot(path=str(artifacts / "walk2_link_asks_for_upload.png"))
        fresh.context.close()
    finally:
        context.close()
