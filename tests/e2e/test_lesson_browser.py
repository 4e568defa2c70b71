"""How it computes in a real browser, on the demo model: a click on a channel's map (a plotly
click at the cell's pixel) moves the position, and the number redone by hand there equals the
activation of an independent Keras forward pass; the sandbox's output size formula follows its
sliders; a link naming a unit opens it, and another page and back keeps it."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import keras
import numpy as np
import pytest

from tests.e2e.test_browser import MENU, WAIT_MS, assert_no_crash, settle
from tests.e2e.test_pictures_first_browser import SCREENS, first_picture_top
from tests.e2e.test_walk_findings_browser import go_to
from viz_core.models.catalog import DEMO_MODEL_FILE

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="no demo model")]

LAYER, CHANNEL, IMAGE = "conv2d_2", 7, "circle"  # 75x75: every cell carries a click marker
HAND = re.compile(r"Redone by hand: (\S+); the model computed (\S+) \(difference")


def keras_activation(layer: str, image: str, cache) -> np.ndarray:
    """The layer's (h, w, c) output for a sample image: the demo model run by Keras itself on
    the image at its input size, scaled to 0..1 (the demo's preprocessing)."""
    from viz_core.inputs.intake import load_image
    from viz_core.inputs.samples import sample_bytes
    from viz_core.models.catalog import builtin
    from viz_core.runtime.workbench import Workbench

    assert builtin("demo").preprocessing == "unit"  # pixel / 255
    net = keras.models.load_model(DEMO_MODEL_FILE)
    # the sample at the model's input size, as the app resizes it (the input, not the result)
    loaded = Workbench(disk_dir=cache, allow_download=False).builtin_model("demo")
    pixels = loaded.view(load_image(sample_bytes(image), image)).pixels
    inputs = np.asarray(pixels, dtype="float32")[None] / 255.0
    return np.asarray(keras.Model(net.inputs, net.get_layer(layer).output)(inputs))[0]


def cell_point(page, key: str, y: int, x: int) -> tuple[float, float]:
    """The page coordinates of cell (y, x) of the plotly figure drawn under ``key``."""
    plot = page.locator(f".st-key-{key} .js-plotly-plot")
    plot.wait_for()
    box = plot.bounding_box()
    dx, dy = plot.evaluate(
        """(gd, [x, y]) => {
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
            return [xa._offset + xa.l2p(x), ya._offset + ya.l2p(y)];
        }""", [x, y])
    return box["x"] + dx, box["y"] + dy


def outlined_cell(page, key: str) -> tuple[float, float]:
    """The centre (y, x) of the orange frame drawn on the figure under ``key``."""
    return tuple(page.locator(f".st-key-{key} .js-plotly-plot").evaluate(
        """gd => { const s = gd.layout.shapes[0];
                   return [(s.y0 + s.y1) / 2, (s.x0 + s.x1) / 2]; }"""))


def number(page, key: str) -> int:
    return int(page.locator(f".st-key-{key} input").input_value())


def test_a_click_on_the_map_redoes_that_positions_number_by_hand(page, server, artifacts,
                                                                  tmp_path):
    output = keras_activation(LAYER, IMAGE, tmp_path)[:, :, CHANNEL]
    # the strongest position away from the border (not the default 0, 0)
    inner = output[5:-5, 5:-5]
    y, x = (int(v) + 5 for v in np.unravel_index(np.argmax(inner), inner.shape))
    assert output[y, x] > 0
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{server}/lesson?image={IMAGE}&lesson_layer={LAYER}&lesson_channel={CHANNEL}")
    settle(page)
    assert_no_crash(page)
    assert (number(page, "lesson_y"), number(page, "lesson_x")) == (0, 0)

    page.mouse.click(*cell_point(page, "lesson_map", y, x))
    page.wait_for_function(
        """([y, x]) => {
            const value = key => document.querySelector(`.st-key-${key} input`)?.value;
            return value('lesson_y') === String(y) && value('lesson_x') === String(x);
        }""", arg=[y, x], timeout=WAIT_MS)
    settle(page)
    assert_no_crash(page)
    assert (number(page, "lesson_y"), number(page, "lesson_x")) == (y, x)
    assert outlined_cell(page, "lesson_map") == (y, x)
    page.wait_for_url(re.compile(f"lesson_y={y}.*lesson_x={x}|lesson_x={x}.*lesson_y={y}"))
    check = page.get_by_text(HAND).inner_text()
    by_hand, models = (float(v) for v in HAND.search(check).groups())
    # the page prints 6 significant digits
    assert by_hand == pytest.approx(float(output[y, x]), rel=2e-5, abs=1e-6), check
    assert models == pytest.approx(float(output[y, x]), rel=2e-5, abs=1e-6), check
    page.screenshot(path=str(artifacts / "lesson_click.png"))


def params(page) -> dict[str, str]:
    """The address bar's query parameters (one value each)."""
    return {k: v[-1] for k, v in parse_qs(urlparse(page.url).query).items()}


def lesson_params(page, wanted: dict[str, str] | None = None) -> dict[str, str]:
    """The address bar's ``lesson_*`` parameters, once they are ``wanted`` (if given)."""
    for _ in range(40):
        shown = {k: v for k, v in params(page).items() if k.startswith("lesson_")}
        if wanted is None or shown == wanted:
            return shown
        page.wait_for_timeout(250)
    raise AssertionError(f"{wanted} not in the address bar: {page.url}")


def test_a_link_opens_the_same_unit_and_another_page_and_back_keeps_it(page, server, artifacts,
                                                                       tmp_path):
    """A link naming the layer, channel, position, input channel and colours opens that unit:
    the number redone by hand is the backend's (``vc.unit``) and Keras's own; another page's
    link holds none of it; back on How it computes all of it is there again."""
    import viz_core as vc
    from viz_core.inputs.intake import load_image
    from viz_core.inputs.samples import sample_bytes
    from viz_core.runtime.workbench import Workbench

    output = keras_activation(LAYER, IMAGE, tmp_path)[:, :, CHANNEL]
    inner = output[5:-5, 5:-5]  # the strongest position away from the border
    y, x = (int(v) + 5 for v in np.unravel_index(np.argmax(inner), inner.shape))
    loaded = Workbench(disk_dir=tmp_path, allow_download=False).builtin_model("demo")
    unit = vc.unit(loaded, load_image(sample_bytes(IMAGE), IMAGE), LAYER, CHANNEL, (y, x))
    sums = np.abs(unit.products.sum(axis=(0, 1)))
    weakest = int(np.argmin(sums))  # not the input channel shown by default
    assert output[y, x] > 0 and unit.activation == pytest.approx(float(output[y, x]), rel=1e-4)
    link = {"lesson_layer": LAYER, "lesson_channel": str(CHANNEL), "lesson_y": str(y),
            "lesson_x": str(x), "lesson_conv_input": str(weakest), "lesson_cmap": "magma"}
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{server}/lesson?image={IMAGE}&" + "&".join(f"{k}={v}" for k, v in link.items()))
    settle(page)
    assert_no_crash(page)

    def check() -> None:
        assert (number(page, "lesson_channel"), number(page, "lesson_y"),
                number(page, "lesson_x")) == (CHANNEL, y, x)
        assert outlined_cell(page, "lesson_map") == (y, x)
        shown_input = page.locator(".st-key-lesson_conv_input input").input_value()
        assert shown_input.startswith(f"input channel {weakest}:"), shown_input
        assert page.locator(".st-key-lesson_cmap input").input_value() == "magma"
        text = page.get_by_text(HAND).inner_text()
        by_hand, models = (float(v) for v in HAND.search(text).groups())
        assert by_hand == pytest.approx(unit.activation, rel=2e-5, abs=1e-6), text
        assert models == pytest.approx(unit.model_activation, rel=2e-5, abs=1e-6), text

    check()
    assert lesson_params(page) == link, page.url
    go_to(page, "heatmaps", "Class heatmaps")
    assert lesson_params(page, {}) == {}, page.url  # another page's link holds none of it
    page.locator('[data-testid="stTopNavSection"]').filter(has_text=MENU).first.click()
    page.locator('[data-testid="stTopNavDropdownLink"]').filter(
        has_text="How it computes").first.click()
    page.get_by_role("heading", name="How it computes", exact=True).wait_for(timeout=WAIT_MS)
    settle(page)
    assert_no_crash(page)
    check()
    assert lesson_params(page, link) == link, page.url
    page.screenshot(path=str(artifacts / "lesson_link_back.png"))


def open_view(page, label: str) -> None:
    """Switch the page to the view ``label`` (in presenter mode its control is folded)."""
    choice = page.locator('[data-testid="stButtonGroup"]').get_by_text(label, exact=True)
    if not choice.is_visible():
        page.get_by_text("View and layer", exact=True).click()
    choice.click()
    settle(page)
    assert_no_crash(page)


def slider_value(page, key: str) -> int:
    return int(page.locator(f'.st-key-{key} [data-testid="stSliderThumbValue"]').inner_text())


def test_the_sandbox_output_size_follows_the_sliders(page, server, artifacts):
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{server}/lesson?image={IMAGE}")
    settle(page)
    open_view(page, "Sandbox")
    formula = page.get_by_text(re.compile(r"^Output size = ⌊\(\d"))
    for label, presses in (("Stride s", 1), ("Padding p", 2), ("Dilation d", 1)):
        page.get_by_role("slider", name=label).focus()
        for _ in range(presses):
            page.keyboard.press("ArrowRight")
        settle(page)
        assert_no_crash(page)
        n, k, s, p, d = (slider_value(page, f"lesson_sb_{name}") for name in (
            "size", "kernel", "stride", "padding", "dilation"))
        expected = (n + 2 * p - d * (k - 1) - 1) // s + 1  # worked out here, not by the app
        shown = formula.inner_text()
        assert shown.endswith(f"= {expected}"), (label, shown)
        assert f"⌊({n} + 2·{p} − {d}·({k} − 1) − 1) / {s}⌋" in shown, shown
        title = page.locator(".st-key-lesson_sb_output .js-plotly-plot").evaluate(
            "gd => gd.querySelector('.gtitle').textContent")
        assert title == f"output {expected}×{expected}", title
    # the last setting: n 7, k 3, stride 2, padding 2, dilation 2 -> floor(6 / 2) + 1 = 4
    assert (n, k, s, p, d, expected) == (7, 3, 2, 2, 2, 4)
    page.screenshot(path=str(artifacts / "lesson_sandbox.png"))


@pytest.mark.parametrize("mode", list(SCREENS))
@pytest.mark.parametrize("view", ["One number of a layer", "Sandbox"])
def test_the_first_picture_is_on_the_first_screen(browser, server, artifacts, view, mode):
    viewport, extra, limit = SCREENS[mode]
    context = browser.new_context(viewport=viewport)
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server}/lesson?image={IMAGE}{extra}")
        settle(page)
        if view != "One number of a layer":
            open_view(page, view)
            page.locator(".st-key-lesson_sb_output .js-plotly-plot").wait_for()
        else:
            page.locator(".st-key-lesson_map .js-plotly-plot").wait_for()
        top = first_picture_top(page)
        page.screenshot(path=str(artifacts / f"lesson_{view.split()[0].lower()}_{mode}.png"))
        assert top <= limit, f"first picture at {top:.0f} px ({view}, {mode}, limit {limit})"
        if view == "Sandbox":  # the sliders that shape the grids and the size: on that screen
            for key in ("lesson_sb_size", "lesson_sb_kernel", "lesson_sb_stride"):
                box = page.locator(f".st-key-{key}").bounding_box()
                assert box is not None and box["y"] + box["height"] < viewport["height"], key
            formula = page.get_by_text(re.compile(r"^Output size = ⌊\(\d")).bounding_box()
            assert formula["y"] + formula["height"] < viewport["height"], formula
        else:  # the map itself (not only its chart's box) starts near the chart's top
            inner = page.locator(".st-key-lesson_map .js-plotly-plot .nsewdrag").bounding_box()
            assert inner["y"] <= top + 60, (inner, top)
    finally:
        context.close()
