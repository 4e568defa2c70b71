"""A first visit, in a real browser at 1280x720: a cold server says it is starting instead of
showing an empty page, and the Overview starts with three steps and the question each page
answers, every one a link to its page; "What am I looking at?" sits in the same place on every
page, right under the page's introduction and above its controls and pictures, on the first
screen (the walk found it at the top of some pages, under the grid on Feature maps and at the
end of LIME)."""
from __future__ import annotations

import pytest

from tests.e2e.test_browser import QUERY, WAIT_MS, assert_no_crash, settle

pytestmark = pytest.mark.e2e
STARTING = "Starting CNN Explorer: loading the model"
NOTE = "What am I looking at?"
# Where the note is: its box's top and bottom, the bottom of the introduction right above it
# (the page's caption, or Overview's "Start here" box), and the controls and pictures of the
# main area that start above its bottom.
NOTE_PLACE = """(note) => {
  const main = document.querySelector('[data-testid=stMain]');
  const box = [...main.querySelectorAll('[data-testid=stExpander]')]
      .find(e => e.querySelector('summary').innerText.includes(note));
  if (!box) return null;
  const b = box.getBoundingClientRect();
  const intro = [...main.querySelectorAll(
      '[data-testid=stHeading], [data-testid=stCaptionContainer], [data-testid=stVerticalBlock]')]
      .filter(e => !e.contains(box) && e.getBoundingClientRect().bottom <= b.top + 1
              && e.getBoundingClientRect().height > 0)
      .map(e => e.getBoundingClientRect().bottom);
  const above = [...main.querySelectorAll('input, button, textarea, [data-testid=stImage], '
      + '[data-testid=stPlotlyChart], [data-testid=stDataFrame], [data-testid=stMetric]')]
      .filter(e => !box.contains(e) && e.getBoundingClientRect().height > 0
              && e.getBoundingClientRect().top < b.bottom)
      .map(e => e.getAttribute('aria-label') || e.getAttribute('data-testid') || e.tagName);
  return {top: b.top, bottom: b.bottom, introBottom: Math.max(...intro), above: above};
}"""


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
                         "dataset", "atlas", "concepts", "lesson", "quiz"}
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


def test_the_note_sits_under_the_introduction_on_every_page(page, server, artifacts):
    page.set_viewport_size({"width": 1280, "height": 720})
    places = {}
    for path in ("", "feature_maps", "filters", "heatmaps", "lime", "compare", "sanity"):
        page.goto(f"{server}/{path}?{QUERY}image=circle")
        settle(page)
        run = page.get_by_role("button", name="Run LIME")
        if path == "lime" and run.is_enabled():  # the note explains a result: run it first
            run.click()
            page.get_by_role("heading", name="Explanation").wait_for(timeout=WAIT_MS)
            settle(page)
        assert_no_crash(page)
        places[path or "overview"] = page.evaluate(NOTE_PLACE, NOTE)
    page.screenshot(path=str(artifacts / "note_place_sanity_1280x720.png"))
    for name, place in places.items():
        assert place is not None, (name, places)
        assert place["bottom"] <= 720, (name, place)  # on the first screen, without scrolling
        assert 0 <= place["top"] - place["introBottom"] <= 24, (name, place)  # right under it
        assert place["above"] == [], (name, place)  # before every control and picture
