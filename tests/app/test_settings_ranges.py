"""A setting kept across pages is clamped to the range its widget has for the current image:
"superpixels shown" set to 30 on an image with many superpixels stays usable after the
superpixel count drops to 8 (Streamlit refuses a value above a slider's maximum)."""
from __future__ import annotations

from tests.app.test_lime_page import app  # noqa: F401 - the page on the stand-in model


def test_superpixels_shown_is_clamped_when_there_are_fewer(app):  # noqa: F811
    at, _, _ = app
    at.slider(key="lime_superpixels").set_value(60).run()
    at.button(key="lime_run").click().run()
    many = at.slider(key="lime_features").max
    at.slider(key="lime_features").set_value(many).run()
    at.switch_page("pages/overview.py").run()  # kept while another page is shown
    at.switch_page("pages/lime.py").run()
    at.slider(key="lime_superpixels").set_value(8).run()
    at.button(key="lime_run").click().run()
    assert not at.exception, at.exception
    few = at.slider(key="lime_features").max
    assert few < many
    assert at.slider(key="lime_features").value == few
