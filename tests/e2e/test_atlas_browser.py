"""Issue 25 in a real browser: the Neuron atlas on the demo model's last conv layer over the
generated shapes, a unit's card opened, and its link opened by someone else (a new browser
context) showing the same unit with the numbers the backend computes."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e.test_browser import QUERY, WAIT_MS, assert_no_crash, settle
from viz_core.models.catalog import DEMO_MODEL_FILE

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not built")]
COUNT = 24  # scenes: the page's smallest sample


def top_activation(page) -> str:
    metric = page.locator('[data-testid="stMetric"]').filter(has_text="Top activation")
    return metric.locator('[data-testid="stMetricValue"]').inner_text().strip()


def shows_unit(page, unit: str) -> bool:
    """Whether the card is that unit's (its top row says which unit it is)."""
    line = page.get_by_text(f"the images that excite unit {unit} most")
    line.first.wait_for(timeout=WAIT_MS)
    return line.count() == 1


def test_a_units_card_opens_and_its_link_shows_the_same_unit(page, server):
    from viz_core.dataset.atlas import neuron_atlas
    from viz_core.dataset.readers import sample_dataset
    from viz_core.models.catalog import load_builtin_model

    page.goto(f"{server}/atlas?{QUERY}atlas_count={COUNT}")
    settle(page)
    assert_no_crash(page)
    build = page.get_by_role("button", name="Build the atlas")
    if build.count():
        build.click()
    page.get_by_role("heading", name="A unit's card").wait_for(timeout=WAIT_MS)
    settle(page)
    page.get_by_role("button").filter(has_text="Open card").nth(1).click()  # the second card on the grid
    settle(page)
    for _ in range(40):
        unit = parse_qs(urlparse(page.url).query).get("atlas_unit", [None])[-1]
        if unit is not None:
            break
        page.wait_for_timeout(250)
    assert unit is not None, page.url

    # the same atlas, computed here: the card's top activation is the unit's best image's max
    model = load_builtin_model("demo")
    data = sample_dataset("shapes", model.labels, count=COUNT)
    atlas = neuron_atlas(model, data, model.info.last_conv_layer, k=8, score="max")
    expected = f"{atlas.exemplars(int(unit), 'top')[0]['activation']:.3g}"
    assert top_activation(page) == expected
    assert shows_unit(page, unit)

    other = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        friend = other.new_page()
        friend.set_default_timeout(WAIT_MS)
        friend.goto(page.url)
        settle(friend)
        assert_no_crash(friend)
        friend.get_by_role("heading", name="A unit's card").wait_for(timeout=WAIT_MS)
        settle(friend)
        assert shows_unit(friend, unit)
        assert top_activation(friend) == expected
    finally:
        other.close()
