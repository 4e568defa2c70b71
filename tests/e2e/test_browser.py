"""The dashboard in a real browser: headless Chromium driving ``streamlit run app.py``.

A user's path through the app: open it, pick a sample image, upload an image file, see a clear
error for a bad upload, visit every page, switch the layer and the class, download a PNG and
check its bytes; and six users at once, each on their own image and page. Every test leaves a
screenshot in ``artifacts/e2e/``.
"""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Error as PlaywrightError

from viz_core.models.catalog import DEMO_MODEL_FILE

pytestmark = pytest.mark.e2e

if DEMO_MODEL_FILE.exists():  # the app's default: the bundled demo model and its shapes
    QUERY = ""
    FIRST, SECOND, SECOND_TITLE = "circle", "square", "Square"
    OTHERS = ("triangle", "star", "circle_and_star", "square_and_triangle")
else:  # before the demo model is built: VGG16 with random weights and the photos
    QUERY = "model=vgg16&weights=none&"
    FIRST, SECOND, SECOND_TITLE = "chelsea", "coffee", "Coffee cup (coffee)"
    OTHERS = ("astronaut", "rocket", "circle", "square")
UPLOAD = "Upload an image…"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WAIT_MS = 180_000

PAGES = (  # URL path, title (h1)
    ("", "Overview"),
    ("feature_maps", "Feature maps"),
    ("filters", "Filter patterns"),
    ("heatmaps", "Class heatmaps"),
    ("lime", "LIME"),
    ("compare", None),
    ("sanity", None),
    ("dataset", None),
)
# The bar's one menu (app.py): URL path, title (h1)
MENU, MENU_PAGES = "Go deeper", (
    ("atlas", "Neuron atlas"),
    ("concepts", "Concepts"),
    ("lesson", "How it computes"),
    ("quiz", "Class quiz"),
)
# "top-4" for the demo model, "top-2" for a single sigmoid unit: the count the picker lists
CLASS_PICKER = re.compile(r"^Class to explain \(top-\d+ predictions\)$")
ROOT = Path(__file__).resolve().parents[2]


def open_app(page, server: str, path: str = "", image: str = FIRST) -> None:
    page.goto(f"{server}/{path}?{QUERY}image={image}")
    settle(page)


def settle(page) -> None:
    """Wait until the script has not been running for a second and every picture arrived."""
    app = page.locator('[data-testid="stApp"]')
    done = page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')
    quiet = 0
    while quiet < 4:  # a rerun starts a moment after the event that caused it
        page.wait_for_timeout(250)
        if app.get_attribute("data-test-script-state") == "notRunning":
            quiet += 1
        else:
            quiet = 0
            done.wait_for(timeout=WAIT_MS)
    page.locator("h1").first.wait_for(timeout=WAIT_MS)
    # every picture on the page arrived and decodes (a broken image is a broken page)
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('[data-testid=stMain] img'))"
        ".every(img => img.complete && img.naturalWidth > 0)", timeout=30_000)


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label``."""
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def options_of(page, label: str) -> list[str]:
    page.get_by_role("combobox", name=label, exact=True).click()
    listbox = page.get_by_role("listbox")
    listbox.wait_for()
    names = [o.inner_text().strip() for o in listbox.get_by_role("option").all()]
    page.keyboard.press("Escape")
    return names


def caption(page):
    return page.locator('[data-testid="stImageCaption"]')


def sidebar_errors(page):
    return page.locator('[data-testid="stSidebar"] [data-testid="stAlert"]')


def assert_no_crash(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, "a traceback is shown"


def upload(page, path: Path) -> None:
    choose(page, "Image", UPLOAD)
    uploader = page.locator('[data-testid="stSidebar"] [data-testid="stFileUploader"]')
    uploader.locator('input[type="file"]').set_input_files(str(path))


def drawn_picture(path: Path, size=(120, 90)) -> Path:
    img = Image.new("RGB", size, (250, 250, 250))
    ImageDraw.Draw(img).ellipse((30, 15, 90, 75), fill=(40, 90, 200))
    img.save(path)
    return path


def test_open_the_app_and_pick_a_sample_image(page, server, artifacts):
    open_app(page, server)
    page.get_by_role("heading", name="Overview").wait_for()
    page.get_by_text(f"{FIRST}:").first.wait_for()
    choose(page, "Image", SECOND_TITLE)
    caption(page).filter(has_text=f"{SECOND}:").wait_for(timeout=WAIT_MS)
    settle(page)
    assert_no_crash(page)
    page.wait_for_url(re.compile(f"image={SECOND}"))  # the view is in the address bar
    page.screenshot(path=str(artifacts / "overview_sample.png"), full_page=True)


def test_upload_an_image_file(page, server, tmp_path):
    picture = drawn_picture(tmp_path / "my_photo.png")
    open_app(page, server)
    upload(page, picture)
    caption(page).filter(has_text="my_photo: 120×90 px").wait_for(timeout=WAIT_MS)
    settle(page)
    assert_no_crash(page)
    assert sidebar_errors(page).count() == 0


def test_a_bad_upload_shows_a_clear_error_and_the_app_recovers(page, server, tmp_path, artifacts):
    fake = tmp_path / "holiday.png"
    fake.write_bytes(b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>")
    open_app(page, server)
    upload(page, fake)
    error = sidebar_errors(page).filter(has_text="is a web page (HTML)")
    error.wait_for(timeout=WAIT_MS)
    assert "The file 'holiday' is a web page (HTML), not a supported image" in error.inner_text()
    page.get_by_text("Choose or upload an image in the sidebar.").wait_for()
    assert_no_crash(page)
    page.screenshot(path=str(artifacts / "bad_upload.png"), full_page=True)
    # the same uploader then takes a good file
    uploader = page.locator('[data-testid="stSidebar"] [data-testid="stFileUploader"]')
    uploader.locator('input[type="file"]').set_input_files(str(drawn_picture(tmp_path / "ok.png")))
    caption(page).filter(has_text="ok: 120×90 px").wait_for(timeout=WAIT_MS)
    settle(page)
    assert sidebar_errors(page).count() == 0


def test_every_page_renders(page, server, artifacts):
    """Every page of the navigation, reached by its link as a user would."""
    open_app(page, server)
    links = page.locator('a[data-testid="stTopNavLink"], [data-testid="stSidebarNav"] a')
    links.first.wait_for()
    visited = []
    for path, title in PAGES + MENU_PAGES:
        if (path, title) in MENU_PAGES:  # open the bar's menu, then its link
            page.locator('[data-testid="stTopNavSection"]').filter(has_text=MENU).first.click()
            link = page.locator('[data-testid="stTopNavDropdownLink"]').filter(has_text=title)
            link.first.wait_for()
        else:
            link = links.and_(page.locator(f'a[href$="/{path}"]'))
        if not link.count():
            continue
        link.first.click()
        if title:
            page.get_by_role("heading", name=title, exact=True).wait_for(timeout=WAIT_MS)
        page.wait_for_url(re.compile(rf"/{path}(\?|$)"))
        settle(page)
        assert_no_crash(page)
        main_errors = page.locator('[data-testid="stMain"] [data-testid="stAlertContentError"]')
        assert main_errors.count() == 0, main_errors.all_inner_texts()
        assert sidebar_errors(page).count() == 0
        page.screenshot(path=str(artifacts / f"page_{path or 'overview'}.png"), full_page=True)
        visited.append(path)
    assert len(visited) >= 5 + len(MENU_PAGES), visited


def add_every_method(page) -> None:
    """Pick every method the Compare page offers (a Streamlit multiselect lists only what is
    not chosen yet; the first option may be its "Select all")."""
    box = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Methods").first
    listbox = page.get_by_role("listbox")
    while True:
        box.get_by_role("combobox").click()
        listbox.wait_for()
        options = listbox.get_by_role("option")
        if options.count() == 0 or options.first.inner_text().strip().startswith("No "):
            page.keyboard.press("Escape")
            return
        options.first.click()
        page.keyboard.press("Escape")
        settle(page)


def test_stop_a_long_run(page, server, artifacts):
    """Stop a long comparison half-way: the page says so, draws no curve, starts nothing on
    its own, keeps working, and the button to start again is back.

    The default fast methods (then 7) on the demo model finished in 1-3 s here, sometimes
    before a Stop click landed; every method (RISE, Score-CAM, LIME...) at 50 curve steps is
    some 20 s on this machine (under load), so Stop, clicked once work is under way, always
    has work to stop."""
    from viz_core.metrics.maps import compare_methods

    open_app(page, server, "compare", image=OTHERS[0])
    add_every_method(page)
    steps = page.get_by_role("slider", name="Curve steps")
    steps.focus()
    steps.press("End")  # the most curve steps (50)
    settle(page)
    compare = page.get_by_role("button", name=re.compile(r"^Compare \d+ methods$"))
    count = int(compare.inner_text().split()[1])
    assert count > len(compare_methods()), compare.inner_text()  # more than the fast ones
    compare.click()
    # .first: while the page reruns, the follower's last drawing may still be on screen beside
    # the new one for a moment (two Stop buttons, one job)
    stop = page.get_by_role("button", name="Stop")
    stop.first.wait_for(timeout=WAIT_MS)
    # some of the work done: the bar names the part it is on ("Comparing methods: RISE: ...")
    page.get_by_text(re.compile(r"^Comparing methods: .+: ")).first.wait_for(timeout=WAIT_MS)
    stopped = page.get_by_text("Comparing methods: stopped.")
    for _ in range(20):  # a click on the stale drawing's Stop does nothing: click the live one
        if stop.count():
            with contextlib.suppress(PlaywrightError):
                stop.last.click(timeout=2000)
        with contextlib.suppress(PlaywrightError):
            stopped.wait_for(timeout=5000)
            break
    stopped.wait_for(timeout=WAIT_MS)
    settle(page)
    assert_no_crash(page)
    assert compare.is_enabled() and compare.inner_text() == f"Compare {count} methods"
    assert page.get_by_role("button", name="Stop").count() == 0
    # no curve was kept (maps finished before the click are whole, and may be shown)
    assert page.get_by_text(re.compile("^deletion AUC")).count() == 0
    page.screenshot(path=str(artifacts / "compare_stopped.png"), full_page=True)


def test_switch_layer_and_class(page, server, artifacts):
    open_app(page, server, "feature_maps")
    first_caption = page.get_by_text(re.compile(rf"^{FIRST} · layer \d+: ")).first
    first_caption.wait_for(timeout=WAIT_MS)
    before = first_caption.inner_text()
    layers = options_of(page, "Layer")
    current = page.get_by_role("combobox", name="Layer", exact=True).input_value()
    other = next(name for name in layers if name != current)
    choose(page, "Layer", other)
    other_path = other.split(" · ")[0]
    page.get_by_text(re.compile(rf"^{FIRST} · layer \d+: {re.escape(other_path)}")).first.wait_for(
        timeout=WAIT_MS)
    assert other_path not in before
    settle(page)
    assert_no_crash(page)
    page.screenshot(path=str(artifacts / "feature_maps_other_layer.png"), full_page=True)

    open_app(page, server, "heatmaps")
    classes = page.get_by_role("radiogroup", name=CLASS_PICKER)
    classes.wait_for(timeout=WAIT_MS)
    runner_up = classes.get_by_role("radio").nth(1)
    label = classes.locator("label").nth(1).inner_text()  # "square (1) · p = 20.0%"
    name = label.split(" · ")[0]
    runner_up.check(force=True)
    page.locator('[data-testid="stMain"] [data-testid="stMarkdownContainer"]').filter(
        has_text=re.compile(rf"^{re.escape(name)}$")).first.wait_for(timeout=WAIT_MS)
    settle(page)
    assert_no_crash(page)
    page.screenshot(path=str(artifacts / "heatmaps_runner_up.png"), full_page=True)


def test_upload_the_tutorials_kind_of_model_and_explain_both_classes(page, server, tmp_path,
                                                                      artifacts):
    """The tutorial's cats-vs-dogs shape: a conv base nested in a Sequential with one sigmoid
    unit, saved as .h5. Uploaded with class names, it explains "cat" (class 0) and "dog"."""
    from tests.conftest import nested_cnn

    path = tmp_path / "cats_and_dogs.h5"
    nested_cnn(size=48, classes=1, seed=3).save(path)
    open_app(page, server)
    choose(page, "Model", "Upload a model file (.keras / .h5)")
    uploader = page.locator('[data-testid="stSidebar"] [data-testid="stFileUploader"]').first
    uploader.locator('input[type="file"]').set_input_files(str(path))
    names = page.get_by_label("Class names (one per line, optional)")
    names.fill("cat\ndog")
    names.press("Control+Enter")
    page.get_by_text("Output: one sigmoid unit").wait_for(timeout=WAIT_MS)
    settle(page)
    assert sidebar_errors(page).count() == 0
    page.locator('a[data-testid="stTopNavLink"][href$="/heatmaps"]').first.click()
    classes = page.get_by_role("radiogroup", name=CLASS_PICKER)
    classes.wait_for(timeout=WAIT_MS)
    settle(page)
    assert_no_crash(page)
    labels = classes.locator("label").all_inner_texts()
    assert sorted(label.split(" · ")[0] for label in labels[:2]) == ["cat (0)", "dog (1)"]
    shares = [float(re.search(r"p = ([\d.]+)%", label).group(1)) for label in labels[:2]]
    assert abs(sum(shares) - 100.0) <= 0.2  # class 0 = 1 - p, class 1 = p
    main = page.locator('[data-testid="stMain"]')
    assert main.locator('[data-testid="stAlertContentError"]').count() == 0
    assert main.locator("img").count() >= 2  # both classes' overlays
    page.screenshot(path=str(artifacts / "upload_binary_heatmaps.png"), full_page=True)


def test_download_a_png(page, server, tmp_path):
    open_app(page, server, "heatmaps")
    button = page.get_by_role("button", name="Download PNG").first
    button.wait_for(timeout=WAIT_MS)
    with page.expect_download(timeout=WAIT_MS) as info:
        button.click()
    download = info.value
    data = Path(download.path()).read_bytes()
    assert data[:8] == PNG_SIGNATURE
    picture = Image.open(io.BytesIO(data))
    picture.load()
    original = Image.open(io.BytesIO(_sample(FIRST)))
    assert picture.size == original.size  # the overlay is drawn at the image's resolution
    assert picture.mode == "RGB"
    assert download.suggested_filename.startswith(f"{FIRST}_gradcam_")
    assert download.suggested_filename.endswith(".png")


def _sample(name: str) -> bytes:
    from viz_core.inputs.samples import sample_bytes

    return sample_bytes(name)


SESSIONS = (  # image, page, text the page shows for that image (None: checked in the URL)
    (FIRST, "", "{image}: "),
    (SECOND, "feature_maps", "{image} · layer "),
    (OTHERS[0], "", "{image}: "),
    (OTHERS[1], "feature_maps", "{image} · layer "),
    (OTHERS[2], "heatmaps", None),
    (OTHERS[3], "lime", None),
)


def test_six_sessions_at_once(browser, server, artifacts):
    """Six users open the app at the same moment, each with their own image and page."""
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000})
                for _ in SESSIONS]
    try:
        pages = [context.new_page() for context in contexts]
        for page, (image, path, _) in zip(pages, SESSIONS):
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{server}/{path}?{QUERY}image={image}", wait_until="commit")
        for n, (page, (image, path, text)) in enumerate(zip(pages, SESSIONS)):
            settle(page)
            if text:
                page.get_by_text(text.format(image=image)).first.wait_for(timeout=WAIT_MS)
                others = [s[0] for s in SESSIONS if s[0] != image]
                shown = " ".join(caption(page).all_inner_texts()) + " ".join(
                    page.locator('[data-testid="stCaptionContainer"]').all_inner_texts())
                assert not any(re.search(rf"(?<!\w){other}(:| · layer)", shown)
                               for other in others), (image, shown)
            page.wait_for_url(re.compile(f"image={image}"))
            assert_no_crash(page)
            assert sidebar_errors(page).count() == 0
            page.screenshot(path=str(artifacts / f"session_{n}_{path or 'overview'}.png"),
                            full_page=True)
    finally:
        for context in contexts:
            context.close()


def test_a_shared_link_is_the_first_request_of_a_fresh_server(page, fresh_server, artifacts):
    """A class server just started, and the first visitor opens a shared link to a page: the
    page comes with its navigation bar, wide layout and the linked view (Streamlit runs a
    ``pages/`` folder on its own until the first navigation call)."""
    page.goto(f"{fresh_server}/feature_maps?{QUERY}image={FIRST}&second={SECOND}")
    settle(page)
    assert_no_crash(page)
    assert page.locator('a[data-testid="stTopNavLink"]').count() == len(PAGES)
    page.get_by_role("heading", name="Feature maps", exact=True).wait_for()
    for name in (FIRST, SECOND):  # both grids: the second image turns the comparison on
        page.get_by_text(re.compile(rf"^{name} · layer 1: ")).first.wait_for(timeout=WAIT_MS)
    main = page.locator('[data-testid="stMain"] [data-testid="stMainBlockContainer"]')
    assert main.bounding_box()["width"] > 900  # the wide layout, as app.py sets it
    page.screenshot(path=str(artifacts / "shared_link_fresh_server.png"), full_page=True)


def test_presenter_mode_makes_everything_larger(page, server, artifacts):
    """Presenter mode scales the type as a whole: titles, labels and metric values grow (an
    earlier style shrank the titles), and the model card's values still fit their columns.
    Last in the file: presenter mode starts the demo warm-up in the background."""
    sizes = {}
    for mode in ("normal", "presenter"):
        page.goto(f"{server}/?{QUERY}image={FIRST}" + ("&presenter=1" if mode == "presenter"
                                                         else ""))
        settle(page)
        assert_no_crash(page)
        # polled until every element is there: a rerun (presenter mode's warm-up reports)
        # can replace the sidebar between the settle and the measurement
        sizes[mode] = page.wait_for_function("""() => {
            // the size the text is drawn at: that of the element holding the text itself
            const px = el => {
              const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT,
                  {acceptNode: n => n.textContent.trim() ? NodeFilter.FILTER_ACCEPT
                                                         : NodeFilter.FILTER_SKIP});
              const text = walk.nextNode();
              return parseFloat(getComputedStyle(text ? text.parentElement : el).fontSize);
            };
            const main = document.querySelector('[data-testid=stMain]');
            const values = [...main.querySelectorAll('[data-testid=stMetricValue]')];
            const label = document.querySelector('[data-testid=stSidebar] label p');
            if (!main.querySelector('h1') || !label || !values.length) return null;
            return {
              title: px(main.querySelector('h1')),
              label: px(label),
              metric: px(values[0]),
              clipped: values.filter(v => v.scrollWidth > v.clientWidth + 1).length,
            };
        }""", timeout=WAIT_MS).json_value()
        page.screenshot(path=str(artifacts / f"overview_{mode}.png"), full_page=True)
    normal, presenter = sizes["normal"], sizes["presenter"]
    assert presenter["title"] >= 1.2 * normal["title"], sizes
    assert presenter["label"] >= 1.2 * normal["label"], sizes
    assert presenter["metric"] >= 0.85 * normal["metric"], sizes
    assert normal["clipped"] == 0 and presenter["clipped"] == 0, sizes
