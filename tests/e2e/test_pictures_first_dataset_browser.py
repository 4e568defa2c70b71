"""Issue 28, findings 5 and 8, on the Dataset page in a real browser: pictures first. With the
page's default dataset (48 shapes scenes) the first picture's top is at most 560 px down at
1440x900 and at most 360 px down in presenter mode at 1280x720: before a run a strip of the
dataset's images under a compact Run button, after it the confusion matrix. The controls that
choose the images sit on the same screen (in presenter mode, folded in one box there)."""
from __future__ import annotations

import pytest

from tests.e2e.test_browser import QUERY, WAIT_MS, assert_no_crash, settle
from tests.e2e.test_pictures_first_browser import SCREENS, first_picture_top
from viz_core.dataset.listing import SHOWN
from viz_core.dataset.readers import sample_dataset

pytestmark = pytest.mark.e2e
# a method per mode, so each mode's run is not in the shared server's cache before it starts
METHODS = {"desk": "gradcam", "presenter": "layercam"}
SHAPING = (("radiogroup", "Images"), ("combobox", "Heatmap method"))
# the lines the text after the last "/" of each caption takes
FILE_NAME_LINES = """captions => captions.map(caption => {
    const walker = document.createTreeWalker(caption, NodeFilter.SHOW_TEXT);
    let node, last = null;
    while ((node = walker.nextNode())) { if (node.data.includes("/")) last = node; }
    const range = document.createRange();
    range.setStart(last, last.data.lastIndexOf("/") + 2);
    range.setEnd(last, last.data.length);
    return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
})"""


def on_screen(box, viewport) -> bool:
    return box is not None and 0 <= box["y"] and box["y"] + box["height"] <= viewport["height"]


@pytest.mark.parametrize("mode", list(SCREENS))
def test_the_dataset_pages_pictures_come_first(browser, server, artifacts, mode):
    viewport, extra, limit = SCREENS[mode]
    context = browser.new_context(viewport=viewport)
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server}/dataset?{QUERY}ds_method={METHODS[mode]}{extra}")
        settle(page)
        assert_no_crash(page)

        # before a run: the strip of the default dataset's images, spread over its 48 scenes
        run = page.get_by_role("button", name="Run on the dataset")
        assert on_screen(run.bounding_box(), viewport)
        top = first_picture_top(page)
        page.screenshot(path=str(artifacts / f"dataset_first_screen_{mode}.png"))
        assert top <= limit, f"the strip at {top:.0f} px ({mode}, limit {limit})"
        data = sample_dataset("shapes", ("circle", "square", "triangle", "star"), count=48)
        strip = page.locator('[data-testid="stMain"] [data-testid="stImage"]')
        expected = [data.entries[6 * i].path for i in range(SHOWN)]
        captions = " ".join(strip.all_inner_texts()).replace("\u200b", "").split()
        shown = page.locator('[data-testid="stMain"] [data-testid="stImageCaption"]')
        if mode == "presenter":  # the class (folder) of each, in one row
            assert captions == [path.split("/")[0] for path in expected]
            tops = {round(box["y"]) for box in
                    (img.bounding_box() for img in strip.locator("img").all())}
            assert len(tops) == 1, tops
        else:
            # each caption breaks after its folder, never inside the file name: the file
            # name's text sits on one line
            assert captions == expected
            assert shown.evaluate_all(FILE_NAME_LINES) == [1] * SHOWN
        if mode == "presenter":  # folded in one box on the first screen
            folded = page.get_by_text("Images and method", exact=True)
            assert on_screen(folded.bounding_box(), viewport)
        else:
            for role, label in SHAPING:
                box = page.get_by_role(role, name=label, exact=True).bounding_box()
                assert on_screen(box, viewport), (label, box)

        # after it: the confusion matrix first, the metrics row above it
        run.click()
        page.locator('[data-testid="stMetric"]').first.wait_for(timeout=WAIT_MS)
        settle(page)
        assert_no_crash(page)
        top = first_picture_top(page)
        page.screenshot(path=str(artifacts / f"dataset_results_first_screen_{mode}.png"))
        assert top <= limit, f"the results at {top:.0f} px ({mode}, limit {limit})"
        chart = page.locator('[data-testid="stMain"] .js-plotly-plot').first
        assert chart.bounding_box()["y"] == pytest.approx(top, abs=1)
        assert "Confusion matrix" in chart.inner_text()
    finally:
        context.close()
