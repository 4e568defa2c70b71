"""Issue 28 on Compare methods, in a real browser: the maps come first (on the first screen at
1440x900 and in presenter mode at 1280x720), and the page stays usable while its job runs: a
colour map changed mid-job redraws the maps within 2 s (the job is followed in a fragment, so
the page's run no longer waits for it)."""
from __future__ import annotations

import re
import time

import pytest

from tests.e2e.test_browser import QUERY, WAIT_MS, assert_no_crash, settle
from tests.e2e.test_pictures_first_browser import SCREENS, first_picture_top

pytestmark = pytest.mark.e2e
# Grad-CAM first (a pass), then RISE (a few thousand masked images) and 50-step curves on a
# white baseline no other test asks for: a job that runs for a while after the first map.
SLOW = "cmp_methods=gradcam,rise&cmp_steps=50&cmp_baseline=white"
FIRST_MAP = "[data-testid=stMain] [data-testid=stImage] img"


@pytest.mark.parametrize("mode", list(SCREENS))
def test_the_maps_are_on_the_first_screen(browser, server, artifacts, mode):
    viewport, extra, limit = SCREENS[mode]
    context = browser.new_context(viewport=viewport)
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server}/compare?{QUERY}image=circle{extra}")
        settle(page)
        assert_no_crash(page)
        top = first_picture_top(page)
        page.screenshot(path=str(artifacts / f"compare_first_screen_{mode}.png"))
        assert top <= limit, f"first map at {top:.0f} px ({mode}, limit {limit})"
        for label in ("Class to explain", "Colour map"):  # what shapes the maps: same screen
            box = page.get_by_role("combobox", name=label, exact=True).bounding_box()
            assert box is not None and box["y"] < viewport["height"], (label, box)
    finally:
        context.close()




def test_a_colour_map_changed_while_the_job_runs_redraws_within_two_seconds(browser, server,
                                                                           artifacts):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server}/compare?{QUERY}image=square&{SLOW}")
        bar = page.locator('[data-testid="stProgress"]')
        button = page.get_by_role("button", name=re.compile(r"^Compare 2 methods"))
        bar.or_(button).first.wait_for()
        if bar.count() == 0:  # too slow here to start on arrival: the user presses the button
            button.click()
            bar.first.wait_for()
        # Grad-CAM's map is drawn as soon as it is ready, while RISE and the curves go on
        page.wait_for_function("""() => {
            const first = document.querySelector('[data-testid=stMain] [data-testid=stImage]');
            const img = first && first.querySelector('img');
            return img && img.complete && img.naturalWidth > 0
                && !(first.parentElement.innerText || '').includes('computing');
        }""", timeout=WAIT_MS)
        assert bar.count() > 0, "the job ended before the test could change a colour map"
        page.screenshot(path=str(artifacts / "compare_job_running_viridis.png"))
        # The redraw after each pick, from the click on the option to the new picture's
        # arrival; the median of three picks made while the job runs (a shared machine's
        # hiccup is not the page's doing).
        seconds = []
        for colour_map in ("magma", "plasma", "jet"):
            if bar.count() == 0:
                break
            before = page.locator(FIRST_MAP).first.get_attribute("src")
            page.get_by_role("combobox", name="Colour map", exact=True).click()
            option = page.get_by_role("option", name=colour_map, exact=True)
            start = time.monotonic()
            option.click()
            page.wait_for_function(
                "(before) => { const img = document.querySelector("
                f"'{FIRST_MAP}'); return img && img.complete && img.naturalWidth > 0 "
                "&& img.getAttribute('src') !== before; }", arg=before, timeout=10_000)
            if bar.count() > 0:  # redrawn while the job still ran
                seconds.append(time.monotonic() - start)
        page.screenshot(path=str(artifacts / "compare_job_running_jet.png"))
        assert_no_crash(page)
        assert seconds, "the job ended before a redraw: nothing was shown"
        median = sorted(seconds)[len(seconds) // 2]
        assert median <= 2.0, f"the maps took {seconds} s to redraw during the job"
        # and the job itself went on to its end: the curves' areas under the maps
        page.get_by_text(re.compile(r"^deletion AUC")).first.wait_for(timeout=WAIT_MS)
        assert_no_crash(page)
    finally:
        context.close()
