"""From a channel to its unit's card in the Neuron atlas: the link's keys, and the button."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from streamlit.testing.v1 import AppTest

from ui.atlas_links import card_settings, unit_card_url


def test_the_url_names_the_layer_and_the_unit_with_the_sidebars_model():
    url = unit_card_url("base/conv b&x", 7, base="http://host:8501/",
                        extra={"model": "demo"})
    parts = urlsplit(url)
    assert (parts.netloc, parts.path) == ("host:8501", "/atlas")
    assert parse_qs(parts.query) == {"model": ["demo"], "atlas_layer": ["base/conv b&x"],
                                     "atlas_unit": ["7"]}
    assert unit_card_url("conv2d_3", 12) == "atlas?atlas_layer=conv2d_3&atlas_unit=12"


def test_a_card_asked_from_another_page_leaves_the_shortcut_scenes():
    assert card_settings("conv2d_3", 5, "upload") == {"atlas_layer": "conv2d_3",
                                                       "atlas_unit": 5}
    assert card_settings("conv2d_3", 5, "shortcut")["atlas_source"] == "shapes"


MAIN = """
import streamlit as st
st.navigation([st.Page("pages/maps.py", default=True), st.Page("pages/atlas.py")]).run()
"""
MAPS = """
import streamlit as st
from ui.atlas_links import unit_card_button
st.session_state.setdefault("atlas_source", "shortcut")
unit_card_button("base/conv_b", 9, key="fm_atlas_go")
"""
ATLAS = """
import streamlit as st
st.markdown(f"atlas {st.session_state['atlas_layer']} unit {st.session_state['atlas_unit']} "
            f"over {st.session_state['atlas_source']}; link {dict(st.query_params)}")
"""


def test_the_button_opens_the_atlas_page_on_the_units_card(tmp_path):
    (tmp_path / "pages").mkdir()
    (tmp_path / "main.py").write_text(MAIN)
    (tmp_path / "pages" / "maps.py").write_text(MAPS)
    (tmp_path / "pages" / "atlas.py").write_text(ATLAS)
    at = AppTest.from_file(str(tmp_path / "main.py"), default_timeout=60).run()
    assert not at.exception and not at.markdown
    at.button(key="fm_atlas_go").click().run()
    assert not at.exception, at.exception
    assert at.markdown[0].value == ("atlas base/conv_b unit 9 over shapes; link "
                                    "{'atlas_layer': 'base/conv_b', 'atlas_unit': '9'}")
