"""Before/after screenshots of issue 16's findings 4, 9 and 12, taken the same way from any
server running the app (today's, or an older commit's checked out in a worktree).

    python -m bench.issue16_screenshots URL SUFFIX [FINDINGS]   # e.g. URL before 12,4,9

The server must have just started and served nothing yet (finding 12 is the cold start).
FINDINGS (default all) takes some again, e.g. ``9``.
Writes ``artifacts/e2e/finding{04,09,12}_*_{SUFFIX}.png`` and prints what it measured.
"""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "artifacts" / "e2e"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]
WAIT_MS = 300_000


def settle(page) -> None:
    """The script has not been running for a second (as tests/e2e/test_browser.settle)."""
    app = page.locator('[data-testid="stApp"]')
    quiet = 0
    while quiet < 4:
        page.wait_for_timeout(250)
        quiet = quiet + 1 if app.get_attribute("data-test-script-state") == "notRunning" else 0


def shoot(page, name: str, suffix: str) -> None:
    page.screenshot(path=str(OUT / f"{name}_{suffix}.png"))
    print(f"{name}_{suffix}.png")


def main(url: str, suffix: str, findings: str = "12,4,9") -> None:
    wanted = set(findings.split(","))
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        if "12" in wanted:
            cold_start(browser, url, suffix)
        if "4" in wanted:
            lime_running(browser, url, suffix)
        if "9" in wanted:
            presenter(browser, url, suffix)
        browser.close()


def cold_start(browser, url: str, suffix: str) -> None:
    # 12: the first request to a cold server at 1280x720, shot as soon as anything is drawn
    # (the starting message or a heading), or after 60 s of nothing
    page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
    page.set_default_timeout(WAIT_MS)
    start = time.monotonic()
    page.goto(f"{url}/?image=circle", wait_until="commit")
    page.wait_for_timeout(5_000)
    shoot(page, "finding12_cold_start_5s", suffix)
    starting = page.get_by_text("Starting CNN Explorer")
    drawn = starting.or_(page.locator("h1")).first
    try:
        drawn.wait_for(timeout=60_000)
    except PlaywrightTimeout:
        pass
    what = "the starting message" if starting.count() else "the page itself"
    shoot(page, "finding12_cold_start", suffix)
    print(f"  first thing drawn after {time.monotonic() - start:.1f} s: {what}")
    page.locator("h1").first.wait_for()
    print(f"  first heading after {time.monotonic() - start:.1f} s")
    settle(page)
    page.context.close()


def lime_running(browser, url: str, suffix: str) -> None:
    # 4: LIME running, one second after the button, at 1440x900
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{url}/lime?image=square&lime_samples=2000&lime_superpixels=60")
    settle(page)
    page.locator("h1").first.wait_for()
    page.get_by_role("button", name="Run LIME").click()
    page.wait_for_timeout(1_000)
    shoot(page, "finding04_lime_running", suffix)
    bars = page.locator('[data-testid="stProgress"]')
    box = bars.first.bounding_box() if bars.count() else None
    print(f"  progress bar: {box}")
    page.get_by_role("heading", name="Explanation").wait_for()
    page.context.close()


def presenter(browser, url: str, suffix: str) -> None:
    # 9: presenter mode, Class heatmaps at 1280x720 and Compare's charts at 1920x1080
    page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{url}/heatmaps?image=circle_and_star&presenter=1")
    settle(page)
    picture = page.locator('[data-testid="stMain"] [data-testid="stImage"] img').first
    picture.wait_for()
    shoot(page, "finding09_presenter_heatmaps_1280x720", suffix)
    print(f"  first picture's top: {picture.bounding_box()['y']:.0f} px")
    page.context.close()
    page = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{url}/compare?image=circle&presenter=1")
    settle(page)
    run = page.get_by_role("button", name=re.compile(r"^Compare \d+ methods$"))
    if run.count():
        run.click()
    legend = page.locator('[data-testid="stMain"] .js-plotly-plot .legendtext').first
    legend.wait_for()
    settle(page)
    legend.scroll_into_view_if_needed()
    shoot(page, "finding09_presenter_compare_1920x1080", suffix)
    size = legend.evaluate("t => getComputedStyle(t).fontSize")
    print(f"  Compare legend text: {size}")
    page.context.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
