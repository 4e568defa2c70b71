"""Issue 28, finding 10: on Filter patterns at 1440x900 the chosen filter's numbers were cut
off ("Status: respo…", "Mean activation …"); every label and value now shows whole."""
from __future__ import annotations

import pytest

from tests.e2e.test_browser import QUERY, WAIT_MS, assert_no_crash, settle

pytestmark = pytest.mark.e2e
CUT = """() => Array.from(document.querySelectorAll(
    '[data-testid=stMain] [data-testid=stMetric] [data-testid=stMetricLabel] p,'
    + ' [data-testid=stMain] [data-testid=stMetric] [data-testid=stMetricValue] div'))
  .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)"""


def test_the_filters_numbers_are_not_cut_at_1440(browser, server, artifacts):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server}/filters?{QUERY}image=circle")
        settle(page)
        page.get_by_text("Mean activation reached").first.wait_for(timeout=WAIT_MS)
        settle(page)
        assert_no_crash(page)
        labels = page.locator('[data-testid="stMain"] [data-testid="stMetricLabel"]')
        assert {t.strip() for t in labels.all_inner_texts()} >= {
            "Mean activation reached", "Robustness", "Spectral slope", "Status"}
        labels.first.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "walk2_filters_1440.png"))
        assert page.evaluate(CUT) == []
    finally:
        context.close()
