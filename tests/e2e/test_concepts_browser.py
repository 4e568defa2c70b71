"""The Concepts page in a real browser on the shortcut demo (the model whose "star" leans on a
corner tag): CRAFT with small settings shows the most important concept's row first, with the
importance and crops the backend computes for the same settings; the TCAV tab, run with the
example concept (the corner tag) against the example random scenes, shows the backend's score
and p-value for the same seed and settings."""
from __future__ import annotations

import re

import numpy as np
import pytest

from tests.e2e.test_browser import WAIT_MS, assert_no_crash, settle
from tests.e2e.test_pictures_first_browser import SCREENS, first_picture_top

pytestmark = pytest.mark.e2e

LAYER = "conv2d_4"
# small settings (a run of each stays well under a minute on 2 shared cores)
SAMPLE, CONCEPTS, LIMIT = 48, 4, 24
TCAV_RUNS, TCAV_CLASS_IMAGES = 3, 20


@pytest.fixture(scope="module")
def shortcut_model():
    from viz_core.models.catalog import load_builtin_model

    return load_builtin_model("shortcut_demo")


def importance_texts(page) -> list[str]:
    """The importance bars' texts, top row first."""
    return page.evaluate("""() => [...document.querySelectorAll('[data-testid=stMain] *')]
        .filter(e => e.children.length === 0 && /^importance \\d\\.\\d\\d$/.test(e.innerText))
        .map(e => e.innerText)""")


def test_craft_shows_the_most_important_concept_first_with_its_crops(page, server, artifacts,
                                                                   shortcut_model):
    from viz_core.dataset.concepts import class_concepts
    from viz_core.dataset.readers import sample_dataset

    data = sample_dataset("shortcut", shortcut_model.labels, count=SAMPLE)
    expected = class_concepts(shortcut_model, data, "star", LAYER, concepts=CONCEPTS,
                              limit=LIMIT).craft
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{server}/concepts?concepts_source=shortcut&concepts_count={SAMPLE}"
              f"&concepts_k={CONCEPTS}&concepts_limit={LIMIT}")
    settle(page)
    assert_no_crash(page)
    # the cost is said before the run, for the settings in the link
    page.get_by_text(re.compile(rf"^CRAFT on {LIMIT} images labelled star at {LAYER}")) \
        .wait_for()
    page.get_by_role("button", name="Find concepts").click()
    page.get_by_text("Crops holding most of concept 0").wait_for(timeout=WAIT_MS)
    settle(page)
    assert_no_crash(page)

    shown = importance_texts(page)
    assert shown == [f"importance {v:.2f}" for v in expected.importance], shown
    values = [float(s.split()[1]) for s in shown]
    assert values[0] == max(values) and values == sorted(values, reverse=True)
    assert float(np.sum(expected.importance)) == pytest.approx(1.0, abs=1e-6)
    # the top row: its name, its bar, its crops (a strip that decodes, as wide as the crops)
    row = page.locator('[data-testid="stVerticalBlock"]').filter(
        has=page.get_by_text("Crops holding most of concept 0", exact=True)).filter(
        has=page.get_by_text(re.compile(r"^Concept 0"))).last
    assert f"importance {expected.importance[0]:.2f}" in row.inner_text()
    strip = row.locator('[data-testid="stImage"]').filter(
        has=page.get_by_text("Crops holding most of concept 0", exact=True)).locator("img")
    width, height = strip.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    crops = min(6, len(expected.top_crop_pixels[0]))
    assert height >= 32 and width >= crops * height * 0.9, (width, height)
    page.screenshot(path=str(artifacts / "concepts_craft.png"))


def test_tcav_with_the_example_concept_shows_the_backends_score(page, server, artifacts,
                                                               shortcut_model):
    from viz_core.dataset.readers import sample_dataset
    from viz_core.dataset.tcav_run import example_images, tcav_run
    from ui.concepts_tcav import SAMPLE_COUNT

    labels = shortcut_model.labels
    expected = tcav_run(shortcut_model, sample_dataset("shortcut", labels, count=SAMPLE_COUNT),
                        shortcut_model.class_index("star"), example_images("tag", labels),
                        example_images("plain", labels), LAYER, runs=TCAV_RUNS,
                        class_images=TCAV_CLASS_IMAGES).result
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{server}/concepts")
    settle(page)
    page.get_by_role("tab", name="TCAV").click()
    settle(page)
    runs = page.get_by_role("slider", name="Random runs")
    runs.focus()
    runs.press("Home")  # 2, the fewest
    settle(page)
    for _ in range(TCAV_RUNS - 2):
        runs.focus()
        runs.press("ArrowRight")
        settle(page)
    count = page.get_by_role("slider", name="Class images (at most)")
    count.focus()
    count.press("Home")  # 20
    settle(page)
    page.get_by_text(re.compile(rf"^star at {LAYER}: {TCAV_RUNS} runs")).wait_for()
    page.get_by_role("button", name="Run TCAV").click()
    score = page.locator('[data-testid="stMetric"]').filter(has_text="TCAV score")
    score.wait_for(timeout=WAIT_MS)
    settle(page)
    assert_no_crash(page)
    metrics = {m.locator('[data-testid="stMetricLabel"]').inner_text().strip():
               m.locator('[data-testid="stMetricValue"]').inner_text().strip()
               for m in page.locator('[data-testid="stMetric"]').all()}
    assert metrics["TCAV score"] == f"{expected.score:.2f}", (metrics, expected.score)
    assert metrics["Random directions"] == f"{expected.random_score:.2f}", metrics
    assert metrics["p-value"] == f"{expected.p_value:.3g}", metrics
    assert len(expected.concept_scores) == TCAV_RUNS
    page.screenshot(path=str(artifacts / "concepts_tcav.png"))


@pytest.mark.parametrize("mode", list(SCREENS))
def test_craft_pictures_first_and_rows_that_fit(browser, server, artifacts, mode):
    """Issue 29: after a run the first concept's crops start on the first screen (they were at
    ~700 px at 1440x900), and a row's images, captions and "All concepts" buttons sit side by
    side inside the page without overlapping or being cut (in presenter mode they overlapped and
    the buttons read "A.")."""
    viewport, extra, limit = SCREENS[mode]
    context = browser.new_context(viewport=viewport)
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server}/concepts?concepts_source=shortcut&concepts_count={SAMPLE}"
                  f"&concepts_k={CONCEPTS}&concepts_limit={LIMIT}{extra}")
        settle(page)
        run = page.get_by_role("button", name="Find concepts")
        if run.count():  # not yet computed by this server
            run.click()
        page.get_by_text("Crops holding most of concept 0").wait_for(timeout=WAIT_MS)
        settle(page)
        assert_no_crash(page)
        top = first_picture_top(page)
        page.screenshot(path=str(artifacts / f"concepts_craft_first_screen_{mode}.png"))
        assert top <= limit, f"first picture at {top:.0f} px ({mode}, limit {limit})"
        boxes = page.evaluate("""() => {
            const main = document.querySelector('[data-testid=stMainBlockContainer]');
            const box = e => { const r = e.getBoundingClientRect();
                               return [r.left, r.right, r.top, r.bottom]; };
            const imgs = [...main.querySelectorAll('[data-testid=stImage]')]
                .filter(e => /^star\\//.test(e.innerText.trim())).slice(0, 4);
            const caps = imgs.map(e => [...e.querySelectorAll('*')]
                .find(c => c.children.length === 0 && /^star\\//.test(c.innerText.trim())));
            const buttons = [...main.querySelectorAll('button')]
                .filter(b => b.innerText.trim() === 'All concepts').slice(0, 4);
            return {main: box(main), images: imgs.map(e => box(e.querySelector('img'))),
                    captions: caps.map(box), buttons: buttons.map(box),
                    cut: buttons.map(b => b.scrollWidth > b.clientWidth + 1)};
        }""")
        left, right = boxes["main"][:2]
        for kind in ("images", "captions", "buttons"):
            row = boxes[kind]
            assert len(row) == 4, (kind, row)
            assert all(left <= b[0] and b[1] <= right for b in row), (kind, row, left, right)
            # side by side, none over the next
            assert all(a[1] <= b[0] + 0.5 for a, b in zip(row, row[1:])), (kind, row)
        assert not any(boxes["cut"]), boxes
        # the images as large as before (112 px) or larger
        assert all(b[1] - b[0] >= 112 for b in boxes["images"]), boxes["images"]
    finally:
        context.close()
