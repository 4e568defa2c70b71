"""The Dataset page in a real browser: run the shortcut scenes, click a confusion-matrix cell to
see its images, choose a table row and open that image in Class heatmaps (with the shortcut
model in the sidebar)."""
from __future__ import annotations

import pytest

from tests.e2e.test_browser import QUERY, WAIT_MS, assert_no_crash, settle

pytestmark = pytest.mark.e2e


def test_click_a_confusion_cell_then_open_a_table_image_in_class_heatmaps(page, server,
                                                                          artifacts):
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{server}/dataset?{QUERY}")
    settle(page)
    page.get_by_text("Sample: shortcut scenes").click()
    settle(page)
    run = page.get_by_role("button", name="Run on the dataset")
    if run.count():  # not when the session's server already ran it
        # before the run: a strip of the shortcut scenes (tagged and plain), the button above
        strip = page.locator('[data-testid="stMain"] [data-testid="stImage"]')
        # the captions, one per image (without their break points)
        names = " ".join(strip.all_inner_texts()).replace("\u200b", "").split()
        assert len(names) == 8 and any("/tagged_" in n for n in names), names
        assert run.bounding_box()["y"] < strip.first.bounding_box()["y"]
        run.click()
        settle(page)
    assert_no_crash(page)

    # the matrix's cells: circle, square, triangle, star (rows: labels; columns: predictions)
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.scroll_into_view_if_needed()
    plot = chart.locator(".nsewdrag").first.bounding_box()
    x, y = plot["x"] + plot["width"] * 1.5 / 4, plot["y"] + plot["height"] * 3.5 / 4
    page.mouse.move(x, y)  # hover first, as a user's pointer arrives
    page.wait_for_timeout(300)
    page.mouse.click(x, y)  # label star, predicted square: untagged stars the model misses
    page.wait_for_timeout(1000)
    settle(page)
    summary = page.get_by_text("labelled star and predicted as square", exact=False).first
    summary.wait_for(timeout=WAIT_MS)
    count = int(summary.inner_text().split(" ", 1)[0])
    gallery = page.get_by_text("star → square", exact=False)
    assert 1 <= count and gallery.count() >= min(count, 8)
    page.screenshot(path=str(artifacts / "dataset_cell_clicked.png"))

    page.get_by_text("All images (sortable table", exact=False).click()
    settle(page)
    grid = page.locator('[data-testid="stDataFrame"]').nth(1)
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 12, box["y"] + 35 + 17)  # the first row's selection box
    page.wait_for_timeout(1000)
    settle(page)
    button = page.get_by_role("button", name="in the other pages")
    name = button.inner_text().split("Open ", 1)[1].split(" in the other pages")[0]
    button.click()
    page.get_by_role("heading", name="Class heatmaps").first.wait_for(timeout=WAIT_MS)
    settle(page)
    assert_no_crash(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    image = sidebar.get_by_role("combobox", name="Image", exact=True).input_value()
    model = sidebar.get_by_role("combobox", name="Model", exact=True).input_value()
    assert image == f"From the dataset: {name}" and model.startswith("Shortcut demo")
    page.screenshot(path=str(artifacts / "dataset_opened_in_heatmaps.png"))
