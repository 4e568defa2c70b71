"""Presenter mode on a classroom projector's 1280x720: every page link stays in the top bar
(none in a "more" menu), and the demo warm-up's progress in the sidebar moves on its own,
without anyone clicking."""
from __future__ import annotations

import re

import pytest

from tests.e2e.test_browser import FIRST, MENU, PAGES, QUERY, WAIT_MS, assert_no_crash, settle

pytestmark = pytest.mark.e2e


def test_presenter_mode_keeps_every_page_link_and_shows_live_warm_up(browser, fresh_server,
                                                                     artifacts):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{fresh_server}/?{QUERY}image={FIRST}&presenter=1")
        settle(page)
        assert_no_crash(page)
        links = page.locator('a[data-testid="stTopNavLink"]')
        assert links.count() == len(PAGES)
        row = links.first.bounding_box()["y"]
        for i in range(links.count()):
            box = links.nth(i).bounding_box()
            assert links.nth(i).is_visible() and box["x"] + box["width"] <= 1280, i
            # a link moved to the "more" menu stays in the page, invisible, below the row
            assert box["y"] == row, (i, box, row)
        menu = page.locator('[data-testid="stTopNavSection"]').filter(has_text=MENU)
        box = menu.first.bounding_box()  # the bar's menu too, in the same row
        assert menu.first.is_visible() and box["x"] + box["width"] <= 1280, box
        more = page.locator('[data-testid="stTopNav"]').get_by_text(re.compile(r"^\d+ more$"))
        assert more.count() == 0, "some page links are in a 'more' menu"
        page.screenshot(path=str(artifacts / "presenter_1280x720.png"))
        caption = page.locator('[data-testid="stSidebar"]').get_by_text(
            re.compile(r"Preparing the demo pictures… \d+%"))
        caption.wait_for(timeout=WAIT_MS)
        first = caption.inner_text()
        # No click from here on: the caption changes (or goes, when the warm-up is done).
        page.wait_for_function(
            """(first) => {
                const el = [...document.querySelectorAll('[data-testid=stSidebar] p')]
                    .find(p => p.textContent.startsWith('Preparing the demo pictures'));
                return !el || el.textContent !== first;
            }""", arg=first, timeout=120_000)
    finally:
        context.close()
