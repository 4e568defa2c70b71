"""'What am I looking at?' sits in the same place on every page: right under the page's title
and introduction, before its controls and pictures (issue: at the top on some pages, under the
grid on Feature maps, at the end on LIME)."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from viz_core.models.catalog import DEMO_MODEL_FILE

pytestmark = pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not built")
NOTE = "What am I looking at?"


def place_of_note(at) -> int:
    """Index, among the main area's top-level elements, of the note's box."""
    for i, node in enumerate(at.main.children.values()):
        # a note sits in a container of its own (inside its placeholder)
        for child in [node, *getattr(node, "children", {}).values()]:
            if getattr(child, "type", None) == "expander" and child.label == NOTE:
                return i
    raise AssertionError("no note on the page")


def test_the_note_is_right_under_the_introduction_on_every_page():
    from ui.state import workbench

    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=300)
    at.query_params["lime_samples"] = "100"
    at.run()
    places = {}
    for page in ("pages/feature_maps.py", "pages/heatmaps.py", "pages/lime.py",
                 "pages/compare.py", "pages/sanity.py"):
        at.switch_page(page).run()
        if page.endswith("lime.py"):
            at.button(key="lime_run").click().run()
        assert not at.exception, (page, at.exception)
        places[page] = place_of_note(at)
    # title, introduction, then the note: the same third place everywhere
    assert set(places.values()) == {2}, places
    workbench.clear()
