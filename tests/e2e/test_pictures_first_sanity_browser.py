"""Issue 28, findings 5 and 8, on the Sanity check: pictures first. The demo model's check is
cheap, so it runs as the page opens; the first map of its grid is at most 560 px down at
1440x900 and at most 360 px down in presenter mode at 1280x720 (before, the page showed a box
of controls and a button, and no picture until it was pressed), with the controls that shape
the grid (class, layers, colour map) in one row above it, on the same screen."""
from __future__ import annotations

import re

import pytest

from tests.e2e.test_browser import QUERY, WAIT_MS, assert_no_crash, settle
from tests.e2e.test_pictures_first_browser import SCREENS, first_picture_top

pytestmark = pytest.mark.e2e
if QUERY:  # no demo model: VGG16 with random weights, whose check waits for its button
    FIRST_PICTURES, FIRST_CAPTION = "The untrained model's maps.", "Grad-CAM"
else:
    FIRST_PICTURES, FIRST_CAPTION = re.compile(r"^step 1 · "), "trained"
# the controls that shape the grid: (ARIA role, accessible name)
SHAPING = (("combobox", re.compile(r"^Class to explain \(top-\d+ predictions\)$")),
           ("slider", "Layers to randomise (from the top)"),
           ("combobox", "Colour map"))


@pytest.mark.parametrize("mode", list(SCREENS))
def test_the_sanity_grid_is_on_the_first_screen(browser, server, artifacts, mode):
    viewport, extra, limit = SCREENS[mode]
    context = browser.new_context(viewport=viewport)
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server}/sanity?{QUERY}image=circle{extra}")
        settle(page)
        # the check may still run after the settle: wait for its grid (the model as it is,
        # then one random layer); VGG16's is slow and shows the model's own maps first
        page.get_by_text(FIRST_PICTURES).first.wait_for(timeout=WAIT_MS)
        settle(page)
        assert_no_crash(page)
        top = first_picture_top(page)
        page.screenshot(path=str(artifacts / f"sanity_first_screen_{mode}.png"))
        assert top <= limit, f"first picture at {top:.0f} px ({mode}, limit {limit})"
        first = page.locator('[data-testid=stMain] [data-testid=stImageCaption]').first
        assert first.inner_text().strip() == FIRST_CAPTION, first.inner_text()
        for role, name in SHAPING:  # on the same screen, above the grid
            box = page.get_by_role(role, name=name).bounding_box()
            assert box is not None and box["y"] + box["height"] <= top, (name, box, top)
        # the rest (methods, seed, the verdict's rule) is folded away
        assert not page.get_by_role("spinbutton", name="Seed of the random weights").is_visible()
    finally:
        context.close()
