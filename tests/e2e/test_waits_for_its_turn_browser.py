"""A page that starts its own work on arrival, opened while this session's heavy job of
another page still runs, says it will start once that one has ended, and then does so without
a click (it used to wait for the user's next click)."""
from __future__ import annotations

import re

import pytest

from tests.e2e.test_browser import QUERY, WAIT_MS, assert_no_crash, settle

pytestmark = pytest.mark.e2e
SLOW_LIME = "lime_samples=2000&lime_superpixels=60"
# Compare's maps for two one-pass methods: they start on arrival even when the machine is busy
# (a page starts its own only when its estimate, the measured pass times the passes, is short).
# For class 3 (star), which no other test explains on this image: the maps are not in the
# shared server's cache already (then nothing would start, and nothing would wait).
QUICK_COMPARE = "cmp_methods=gradcam,layercam&cmp_class=3"


def test_a_page_waiting_for_its_turn_starts_when_the_other_job_ends(browser, server,
                                                                    artifacts):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        # an image and class no other browser test compares: Compare's maps are not cached yet
        # Compare's methods in the session's link: that page reads them when it is drawn
        page.goto(f"{server}/lime?{QUERY}image=square_and_triangle&{SLOW_LIME}&{QUICK_COMPARE}")
        settle(page)
        page.get_by_role("button", name="Run LIME").click()
        page.get_by_text(re.compile(r"^Running LIME: ")).first.wait_for()
        # the same session (a link in the bar, not a new page load), another page that starts
        # its maps on arrival
        page.locator('a[data-testid="stTopNavLink"][href$="/compare"]').first.click()
        waiting = page.get_by_text(re.compile(r"This page starts its own once that one has "
                                              r"ended"))
        waiting.wait_for()
        page.screenshot(path=str(artifacts / "compare_waits_for_lime.png"))
        # no click from here on: LIME ends, then the page draws its maps by itself
        waiting.wait_for(state="detached", timeout=WAIT_MS)
        page.wait_for_function("""() => {
            const tiles = [...document.querySelectorAll('[data-testid=stMain] [data-testid=stImage]')];
            return tiles.length >= 2 && tiles.slice(0, 2).every(t => {
                const img = t.querySelector('img');
                const text = t.parentElement.innerText || '';
                return img && img.complete && img.naturalWidth > 0 && !text.includes('computing')
                    && !text.includes('not computed');
            });
        }""", timeout=WAIT_MS)
        assert_no_crash(page)
        page.screenshot(path=str(artifacts / "compare_after_its_turn.png"))
    finally:
        context.close()
