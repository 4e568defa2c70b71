"""Issue 28, finding 4, in a real browser: a page's link holds its own settings as soon as the
page is drawn (LIME's before any run), a heatmap method's own parameters included, and not
another page's settings; invalid values in a link are dropped, not shown."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e.test_browser import QUERY, WAIT_MS, assert_no_crash, choose, settle
from tests.e2e.test_walk_findings_browser import go_to

pytestmark = pytest.mark.e2e


def params(page) -> dict[str, str]:
    """The address bar's query parameters (one value each)."""
    return {k: v[-1] for k, v in parse_qs(urlparse(page.url).query).items()}


def wait_for_param(page, key: str, value: str | None) -> dict[str, str]:
    """The address bar once ``key`` has ``value`` (None: once it is gone)."""
    for _ in range(40):
        shown = params(page)
        if shown.get(key) == value:
            return shown
        page.wait_for_timeout(250)
    raise AssertionError(f"{key}={value!r} not in the address bar: {page.url}")


def test_a_pages_link_holds_its_own_settings_from_the_first_draw(page, server):
    page.goto(f"{server}/lime?{QUERY}image=square&lime_seed=7&lime_superpixels=20")
    settle(page)
    assert_no_crash(page)
    shown = params(page)  # no run yet: the link already holds the view
    assert (shown.get("image"), shown.get("lime_seed"), shown.get("lime_superpixels")) == (
        "square", "7", "20"), page.url
    assert page.get_by_role("spinbutton", name="Seed").input_value() == "7"

    go_to(page, "heatmaps", "Class heatmaps")
    shown = wait_for_param(page, "lime_seed", None)  # LIME's settings stay with LIME
    assert not any(k.startswith("lime_") for k in shown), page.url
    assert shown.get("image") == "square" and "cam_layer" in shown, page.url
    choose(page, "Method", "Occlusion")
    settle(page)
    page.get_by_text("More settings", exact=True).click()  # the method's own parameters
    patch = page.get_by_role("slider", name="Side of the square patch, in model pixels")
    patch.focus()
    patch.press("ArrowRight")
    settle(page)
    shown = wait_for_param(page, "cam_method", "occlusion")
    assert any(k.startswith("cam_param_occlusion_") for k in shown), page.url

    # the link, opened by someone else, gives the same view and the same method parameters
    other = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        friend = other.new_page()
        friend.set_default_timeout(WAIT_MS)
        friend.goto(page.url)
        settle(friend)
        assert_no_crash(friend)
        assert friend.get_by_role("combobox", name="Method", exact=True).input_value() == \
            "Occlusion"
        assert params(friend) == shown, (friend.url, page.url)
    finally:
        other.close()

    go_to(page, "lime", "LIME")  # and LIME's own settings come back with LIME
    shown = wait_for_param(page, "lime_seed", "7")
    assert not any(k.startswith("cam_") for k in shown), page.url


def test_invalid_values_in_a_link_are_dropped(page, server):
    page.goto(f"{server}/heatmaps?{QUERY}image=circle&cam_threshold=7&cam_colormap=nope"
              "&cam_layer=no_such_layer&cam_method=rm")
    settle(page)
    assert_no_crash(page)
    shown = params(page)
    assert not {"cam_threshold", "cam_colormap"} & set(shown), page.url
    layer = page.get_by_role("combobox", name="Layer", exact=True).input_value()
    assert layer.endswith("(last conv)"), layer
    # the unknown method falls to the default one, which a link leaves out
    assert shown.get("cam_layer") == layer.split(" ")[0] and "cam_method" not in shown, page.url
    assert page.get_by_role("combobox", name="Method", exact=True).input_value() == "Grad-CAM"
