"""A first visit, in a real browser at 1280x720: a cold server says it is starting instead of
showing an empty page, and the Overview starts with three steps and the question each page
answers, every one a link to its page."""
from __future__ import annotations

import pytest

from tests.e2e.test_browser import QUERY, WAIT_MS, assert_no_crash, settle

pytestmark = pytest.mark.e2e
STARTING = "Starting CNN Explorer: loading the model"


def test_a_cold_start_says_it_is_starting_and_the_overview_says_where_to_start(
        browser, fresh_server, artifacts):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{fresh_server}/?{QUERY}", wait_until="commit")
        page.get_by_text(STARTING).wait_for(timeout=60_000)  # before the first picture
        page.screenshot(path=str(artifacts / "cold_start_loading.png"))
        settle(page)
        assert_no_crash(page)
        assert page.get_by_text(STARTING).count() == 0  # gone once the page is drawn
        start = page.get_by_text("Start here", exact=False).first
        assert start.bounding_box()["y"] < 720  # on the first screen
        links = page.locator('[data-testid="stMain"] [data-testid="stPageLink"] a')
        hrefs = {link.get_attribute("href").rsplit("/", 1)[-1].split("?")[0]
                 for link in links.all()}
        assert hrefs == {"feature_maps", "filters", "heatmaps", "lime", "compare", "sanity",
                         "dataset"}
        page.get_by_text("Where is the evidence for a class?").wait_for()
        page.screenshot(path=str(artifacts / "overview_start_here.png"), full_page=True)
        links.filter(has_text="Class heatmaps").first.click()
        page.get_by_role("heading", name="Class heatmaps").first.wait_for(timeout=WAIT_MS)
        settle(page)
        assert_no_crash(page)
        # A first visit straight to a page that ends its run early (LIME waits for its button)
        # does not keep the message either.
        other = context.new_page()
        other.goto(f"{fresh_server}/lime?{QUERY}", wait_until="commit")
        other.get_by_role("button", name="Run LIME").wait_for(timeout=WAIT_MS)
        settle(other)
        assert other.get_by_text(STARTING).count() == 0
    finally:
        context.close()
    # The server loaded TensorFlow and a model without TensorFlow's start-up lines on its
    # stderr (absl's "All log messages before absl::InitializeLog()...", oneDNN, CUDA).
    log = (artifacts / "fresh_server.log").read_text(encoding="utf-8", errors="replace")
    assert "Uvicorn server started" in log or "You can now view" in log
    assert [line for line in log.splitlines()
            if "absl::InitializeLog" in line or "oneDNN" in line or "cuda" in line] == []
