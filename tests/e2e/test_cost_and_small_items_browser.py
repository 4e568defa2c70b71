"""Issue 16, findings 11 and 14, in a real browser.

11. Before Compare or the Sanity check runs on a big model (VGG16, random weights: nothing to
    download), the page states the cost in forward passes and in time from this model's
    measured pass, and offers a quick look that cuts methods, curve steps or layers; a result
    made with fewer curve steps says so under its pictures.
14. On "Circle and star" the second class shown is the circle (the other shape in the
    picture), not the square the demo model ranks a hair above it; the Compare agreement
    chart's colour-bar title is clear of the chart's toolbar; Feature maps' ZIP button counts
    the layers the ZIP holds and says how they relate to the layers listed (the walk: "8
    layers" listed, "all 11 layers (ZIP)" offered); a LIME fit with a low R² gets a caution
    under its picture, a good fit none.
"""
from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest

from tests.e2e.test_browser import QUERY, WAIT_MS, assert_no_crash, settle

pytestmark = pytest.mark.e2e
BIG = "model=vgg16&weights=none&"
COST = re.compile(r"about ([\d,]+) forward passes, ~(\d+) (s|min) here")


def cost_of(page) -> tuple[int, float]:
    """Passes and seconds of the first cost line on the page."""
    text = page.locator('[data-testid="stMain"] [data-testid="stAlert"]').filter(
        has_text=COST).first.inner_text()
    passes, amount, unit = COST.search(text).groups()
    return int(passes.replace(",", "")), float(amount) * (60 if unit == "min" else 1)


def chips(page, label: str) -> list[str]:
    box = page.locator('[data-testid="stMultiSelect"]').filter(has_text=label).first
    return [tag.get_attribute("aria-label") for tag in box.locator("[data-tag]").all()]


def cost_per_pass(passes: int, seconds: float) -> tuple[float, float]:
    """The range of seconds per pass a cost line allows: its time is rounded to the second
    ("~54 s") or, from 90 s on, to the minute ("~4 min")."""
    slack = 0.5 if seconds < 90 else 30.0
    return max(0.0, seconds - slack) / passes, (seconds + slack) / passes


def test_big_models_state_the_cost_and_offer_a_quick_look(page, server, artifacts):
    """The estimate is passes x this model's pass as measured on this machine, so its seconds
    depend on the machine (VGG16's 345 passes of the then 7 default methods came to 52-64 s
    here, either side of the page's 60 s threshold). What holds anywhere: the quick look is
    offered exactly when the estimate is over the threshold, and the full and quick estimates
    use the same pass. Every method at 50 curve steps puts the estimate far over the threshold
    (minutes here; a machine would need a VGG16 pass some 10x faster than this one's to fall
    under it)."""
    from tests.e2e.test_browser import add_every_method
    from ui.cost import SLOW_SECONDS
    from viz_core.metrics.maps import compare_methods

    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{server}/compare?{BIG}image=circle")
    settle(page)
    assert_no_crash(page)
    passes, seconds = cost_of(page)
    methods = chips(page, "Methods")
    assert len(methods) == len(compare_methods()), methods  # the registry's fast methods
    # (methods + the random order) x (deletion + insertion) x (20 steps + 1) images at least
    assert passes >= (len(methods) + 1) * 2 * 21, (passes, methods)
    quick = page.get_by_role("button", name=re.compile(r"^Quick look: 3 methods, 10 curve steps"))
    assert (quick.count() == 1) == (seconds > SLOW_SECONDS), (passes, seconds)

    add_every_method(page)
    steps = page.get_by_role("slider", name="Curve steps")
    steps.focus()
    steps.press("End")  # 50 steps
    settle(page)
    passes, seconds = cost_of(page)
    methods = chips(page, "Methods")
    assert len(methods) >= 10, methods
    assert passes >= (len(methods) + 1) * 2 * 51, (passes, methods)
    page.screenshot(path=str(artifacts / "compare_cost_vgg16.png"))
    assert (quick.count() == 1) == (seconds > SLOW_SECONDS), (passes, seconds)
    if seconds > SLOW_SECONDS:  # (a machine this fast needs no quick look)
        quick.click()
        settle(page)
        assert chips(page, "Methods") == ["Grad-CAM", "EigenCAM", "Vanilla saliency (gradient)"]
        quick_passes, quick_seconds = cost_of(page)
        assert 4 * 2 * 11 <= quick_passes <= passes / 3, (passes, quick_passes)
        low, high = cost_per_pass(passes, seconds)
        quick_low, quick_high = cost_per_pass(quick_passes, quick_seconds)
        assert quick_low <= high and low <= quick_high, (passes, seconds, quick_passes,
                                                         quick_seconds)  # the same pass
        assert page.get_by_role("button", name=re.compile(r"^Quick look")).count() == 0

    page.goto(f"{server}/sanity?{BIG}image=circle")
    settle(page)
    assert_no_crash(page)
    # Every layer (VGG16 has 16), so the estimate is well past the quick look's threshold on
    # a fast machine too (the default 8 layers came to ~59 s on a quiet one, just under 60 s).
    layers = page.get_by_role("slider", name="Layers to randomise (from the top)")
    layers.focus()
    layers.press("End")
    settle(page)
    passes, seconds = cost_of(page)
    page.screenshot(path=str(artifacts / "sanity_cost_vgg16.png"))
    quick = page.get_by_role("button", name=re.compile(r"^Quick look: 3 methods, top 3 layers"))
    assert (quick.count() == 1) == (seconds > SLOW_SECONDS), (passes, seconds)
    if seconds <= SLOW_SECONDS:  # a machine this fast needs no quick look
        return
    quick.click()
    settle(page)
    assert chips(page, "Methods") == ["Grad-CAM", "Vanilla saliency (gradient)",
                                      "Edge detector (control)"]
    quick_passes, _ = cost_of(page)
    assert quick_passes < passes / 2, (passes, quick_passes)
    assert page.get_by_text(re.compile(r"× 4 versions of the model")).count() == 1


def test_a_coarse_comparison_says_so_and_its_colour_bar_title_is_clear(page, server, artifacts):
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{server}/compare?{QUERY}image=circle_and_star")
    settle(page)
    steps = page.get_by_role("slider", name="Curve steps")
    steps.focus()
    steps.press("ArrowLeft")  # 20 -> 10 steps
    settle(page)
    page.get_by_role("button", name=re.compile(r"^Compare \d+ methods$")).click()
    page.get_by_text(re.compile(r"Quick look: \d+ methods and 10 curve steps")).wait_for(
        timeout=WAIT_MS)
    settle(page)
    assert_no_crash(page)
    chart = page.locator('[data-testid="stPlotlyChart"]').filter(
        has=page.locator(".colorbar")).first
    chart.scroll_into_view_if_needed()
    chart.hover()  # the toolbar shows on hover
    page.locator('[data-testid="stPlotlyChart"] .modebar').first.wait_for(state="visible")
    boxes = page.evaluate("""() => {
      const chart = [...document.querySelectorAll('[data-testid=stPlotlyChart]')]
          .find(e => e.querySelector('.colorbar'));
      const box = e => { const b = e.getBoundingClientRect();
                         return [b.left, b.top, b.right, b.bottom]; };
      return {title: box(chart.querySelector('.cbtitle')),
              toolbar: box(chart.querySelector('.modebar'))};
    }""")
    chart.screenshot(path=str(artifacts / "compare_agreement_chart.png"))
    (l1, t1, r1, b1), (l2, t2, r2, b2) = boxes["title"], boxes["toolbar"]
    assert r1 <= l2 or r2 <= l1 or b1 <= t2 or b2 <= t1, boxes  # no overlap


def test_circle_and_star_explains_the_star_beside_the_circle(page, server, artifacts):
    page.goto(f"{server}/heatmaps?{QUERY}image=circle_and_star")
    settle(page)
    assert_no_crash(page)
    titles = page.locator('[data-testid="stMain"] [data-testid="stMarkdownContainer"]')
    for name in ("star (3)", "circle (0)"):
        titles.filter(has_text=re.compile(rf"^{re.escape(name)}$")).first.wait_for()
    assert titles.filter(has_text=re.compile(r"^square \(1\)$")).count() == 0
    page.screenshot(path=str(artifacts / "heatmaps_circle_and_star.png"), full_page=True)
    page.goto(f"{server}/lime?{QUERY}image=circle_and_star")
    settle(page)
    second = page.get_by_role("combobox", name="Second class (side by side)", exact=True)
    assert second.input_value().startswith("circle (0)"), second.input_value()


def test_feature_maps_zip_label_counts_the_layers_it_holds_and_those_listed(page, server):
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{server}/feature_maps?{QUERY}image=circle")
    settle(page)
    page.locator('[data-testid="stMain"]').get_by_text("All layers", exact=True).click()
    settle(page)
    assert_no_crash(page)
    pager = page.locator('[data-testid="stSelectbox"]').filter(
        has_text=re.compile(r"\d+ layers, \d+ at a time")).first.inner_text()
    listed = int(re.search(r"(\d+) layers, \d+ at a time", pager).group(1))
    button = page.locator('[data-testid="stDownloadButton"]').filter(
        has_text=re.compile(r"Download all \d+ layers")).first
    label = button.inner_text()
    total = int(re.search(r"Download all (\d+) layers", label).group(1))
    with page.expect_download(timeout=WAIT_MS) as info:
        button.click()
    with zipfile.ZipFile(io.BytesIO(Path(info.value.path()).read_bytes())) as archive:
        pngs = [n for n in archive.namelist() if n.endswith(".png")]
    assert total == len(pngs), (label, pngs)  # one grid per layer of the one image
    assert listed <= total, (pager, label)
    if not QUERY:  # the demo model: 8 convolution and pooling layers listed of 11
        assert (listed, total) == (8, 11), (pager, label)
    if listed < total:
        assert f"these {listed} and {total - listed} more" in label, (pager, label)


def test_a_weak_lime_fit_is_cautioned_and_a_good_one_is_not(page, server, artifacts):
    # The square with 5 superpixels and 100 samples (seed 0): the square's fit explains most
    # of the answers (R² ~0.87), the circle's little (R² ~0.38), the same in every run.
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{server}/lime?{QUERY}image=square")
    settle(page)
    for name in ("Number of superpixels", "Samples (perturbed images)"):
        slider = page.get_by_role("slider", name=name)
        slider.focus()
        slider.press("Home")  # 5 superpixels, 100 samples
        settle(page)
    second = page.get_by_role("combobox", name="Second class (side by side)", exact=True)
    second.click()
    page.get_by_role("option", name=re.compile(r"^circle \(0\)")).click()
    settle(page)
    page.get_by_role("button", name="Run LIME").click()
    page.get_by_role("heading", name="Explanation").wait_for(timeout=WAIT_MS)
    settle(page)
    assert_no_crash(page)
    columns = page.evaluate("""() => [...document.querySelectorAll(
        '[data-testid=stMain] [data-testid=stColumn]')]
      .filter(c => c.querySelector('[data-testid=stImageCaption]')?.innerText.includes('R² ='))
      .map(c => c.innerText)""")
    fits = [(float(re.search(r"R² = (-?[\d.]+)", c).group(1)),
             "explains little" in c, c) for c in columns]
    (good, good_cautioned, _), (weak, weak_cautioned, weak_text) = fits  # square, circle
    assert good >= 0.5 > weak, fits
    assert not good_cautioned and weak_cautioned, fits
    assert f"(R² {weak:.2f} < 0.5)" in weak_text, weak_text
    page.screenshot(path=str(artifacts / "lime_weak_fit_caution.png"), full_page=True)
