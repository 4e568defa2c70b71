"""Presenter mode beyond the page's own type (issue 16, finding 9): on a 1920x1080 projector
the charts' text grows with the page (a legend a page sets to 11 px stayed 11 px), and on a
1280x720 one a page's picture starts on the first screen: its controls collapse into an
expander instead of pushing the heatmaps a screen and a half down. The same on two more pages
(Feature maps, LIME after a run), whose charts' text also grows."""
from __future__ import annotations

import re

import pytest

from tests.e2e.test_browser import (CLASS_PICKER, FIRST, QUERY, WAIT_MS, assert_no_crash,
                                     settle)
from ui.charts import DEFAULT_CHART_PX
from ui.presenter import PRESENTER_SCALE

pytestmark = pytest.mark.e2e

CHART_TEXT = """() => {
  const chart = document.querySelector('[data-testid=stMain] .js-plotly-plot');
  const px = selector => [...chart.querySelectorAll(selector)].map(
      t => parseFloat(getComputedStyle(t).fontSize));
  return {legend: px('.legendtext'), ticks: px('.xtick text, .ytick text'),
          title: px('.gtitle')};
}"""


def chart_text(browser, server: str, presenter: bool, artifacts) -> dict:
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server}/compare?{QUERY}image={FIRST}" + ("&presenter=1" if presenter
                                                             else ""))
        settle(page)
        run = page.get_by_role("button", name=re.compile(r"^Compare \d+ methods$"))
        if run.count():  # the first visit computes; the second finds the results cached
            run.click()
        page.locator('[data-testid="stMain"] .js-plotly-plot .legendtext').first.wait_for(
            timeout=WAIT_MS)
        settle(page)
        assert_no_crash(page)
        name = "presenter" if presenter else "normal"
        page.screenshot(path=str(artifacts / f"compare_chart_text_{name}_1920.png"))
        return page.evaluate(CHART_TEXT)
    finally:
        context.close()


def test_presenter_mode_scales_chart_text_at_1920x1080(browser, server, artifacts):
    normal = chart_text(browser, server, False, artifacts)
    presenter = chart_text(browser, server, True, artifacts)
    assert normal["legend"] and presenter["legend"], (normal, presenter)
    # The page's own type is 1.25x in presenter mode; the chart's legend and title follow.
    assert min(presenter["legend"]) >= 1.25 * max(normal["legend"]) - 0.01, (normal, presenter)
    assert min(presenter["title"]) >= 1.25 * max(normal["title"]) - 0.01, (normal, presenter)
    assert min(presenter["ticks"]) >= 1.25 * max(normal["ticks"]) - 0.01, (normal, presenter)
    # and nothing in the chart is smaller than its axis labels
    assert min(presenter["legend"]) >= min(presenter["ticks"]), presenter


def first_picture_top(browser, server: str, presenter: bool, artifacts) -> float:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server}/heatmaps?{QUERY}image={FIRST}" + ("&presenter=1" if presenter
                                                              else ""))
        settle(page)
        assert_no_crash(page)
        picture = page.locator('[data-testid="stMain"] [data-testid="stImage"] img').first
        picture.wait_for(timeout=WAIT_MS)
        classes = page.get_by_role("radiogroup", name=CLASS_PICKER)
        # pictures first (issue 28): the class picker sits beside the picture, open, and works
        assert classes.is_visible()
        top = picture.bounding_box()["y"]
        if presenter:
            page.screenshot(path=str(artifacts / "heatmaps_presenter_1280x720.png"))
            before = picture.get_attribute("src")
            classes.get_by_role("radio").nth(1).check(force=True)
            page.wait_for_function(
                "(src) => document.querySelector('[data-testid=stMain] [data-testid=stImage] "
                "img').getAttribute('src') !== src", arg=before, timeout=WAIT_MS)
            settle(page)
            assert_no_crash(page)
        return top
    finally:
        context.close()


def test_presenter_mode_puts_the_first_picture_on_the_first_screen_at_1280x720(
        browser, server, artifacts):
    normal = first_picture_top(browser, server, False, artifacts)
    presenter = first_picture_top(browser, server, True, artifacts)
    assert presenter < 720 - 40, (normal, presenter)  # at least its top edge is on screen
    assert normal < 720 - 40, normal  # pictures first without presenter mode too


PICTURES_AND_TEXT = """() => {
  // as the page opens: scrolled to the top (a run scrolls its progress into view)
  for (const e of document.querySelectorAll('*')) if (e.scrollTop) e.scrollTop = 0;
  const main = document.querySelector('[data-testid=stMain]');
  const pictures = [...main.querySelectorAll('[data-testid=stImage] img, .js-plotly-plot')]
      .filter(e => e.getBoundingClientRect().height > 0);
  const px = selector => [...main.querySelectorAll('.js-plotly-plot ' + selector)].map(
      t => parseFloat(getComputedStyle(t).fontSize));
  return {top: Math.min(...pictures.map(e => e.getBoundingClientRect().top)),
          title: px('.gtitle'), legend: px('.legendtext')};
}"""


def pictures_and_text(page, url: str, artifacts, name: str, chart_text: str) -> dict:
    page.goto(url)
    settle(page)
    run = page.get_by_role("button", name=re.compile(r"^Run LIME"))
    if run.count() and run.is_enabled():  # LIME waits for its button
        run.click()
    page.locator(f'[data-testid="stMain"] .js-plotly-plot {chart_text}').first.wait_for()
    settle(page)
    assert_no_crash(page)
    page.screenshot(path=str(artifacts / f"{name}_1280x720.png"))
    return page.evaluate(PICTURES_AND_TEXT)


def test_presenter_mode_on_feature_maps_and_lime_at_1280x720(browser, server, artifacts):
    """The first picture (the grid; LIME's superpixels, after a run; Overview's image) on the
    first screen, and the charts' text 1.25x: the channel's title on Feature maps against the
    same page outside presenter mode, the weights chart's legend on LIME against the chart's
    default text."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        fm_url = f"{server}/feature_maps?{QUERY}image={FIRST}"
        fm = pictures_and_text(page, fm_url + "&presenter=1", artifacts,
                               "feature_maps_presenter", ".gtitle")
        lime = pictures_and_text(page, f"{server}/lime?{QUERY}image={FIRST}&lime_samples=100"
                                 "&presenter=1", artifacts, "lime_presenter", ".legendtext")
        overview = pictures_and_text(page, f"{server}/?{QUERY}image={FIRST}&presenter=1",
                                     artifacts, "overview_presenter", "")
        guide = page.locator('[data-testid="stExpander"] details',
                             has_text="Start here: which page answers which question")
        folded = guide.count() == 1 and guide.get_attribute("open") is None
        normal = pictures_and_text(page, fm_url, artifacts, "feature_maps_normal", ".gtitle")
    finally:
        context.close()
    assert fm["top"] < 720 - 40 and lime["top"] < 720 - 40, (fm, lime, normal)
    # Overview's "Start here" guide is folded for the teacher: the model card's picture is up
    assert folded and overview["top"] < 720 - 40, overview
    assert normal["top"] > fm["top"], normal  # outside presenter mode the controls come first
    assert min(fm["title"]) >= PRESENTER_SCALE * max(normal["title"]) - 0.01, (fm, normal)
    assert min(lime["legend"]) >= PRESENTER_SCALE * DEFAULT_CHART_PX - 0.01, lime
