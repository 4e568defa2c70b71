"""ui.page: the one way pages start (title, introduction, note place, what they need) and the
one way they notice that what they drew for changed."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _page(needs: str) -> None:
    import streamlit as st

    from ui.page import page_setup
    from ui.state import SELECTION_KEY, Selection

    st.session_state.setdefault(SELECTION_KEY, Selection(None, None, None))
    page = page_setup("Title here", "Words under it.", needs=needs)
    st.write(f"reached with model {page.model}")


def test_a_page_without_its_model_says_what_to_choose_and_stops():
    at = AppTest.from_function(_page, kwargs={"needs": "image"}).run()
    assert [t.value for t in at.title] == ["Title here"]
    assert [c.value for c in at.caption] == ["Words under it."]
    assert [i.value for i in at.info] == [
        "Choose a model in the sidebar that loads, to see this page."]
    assert not [m for m in at.markdown if "reached" in m.value]


def test_a_page_that_needs_nothing_goes_on():
    at = AppTest.from_function(_page, kwargs={"needs": "nothing"}).run()
    assert not at.info
    assert [m.value for m in at.markdown if "reached" in m.value] == ["reached with model None"]


def _remembering() -> None:
    import streamlit as st

    from ui.page import remember

    value = st.session_state.get("next", "a")
    st.write(f"before: {remember('seen', value)!r}, now: {value!r}")


def test_remember_returns_what_was_kept_before():
    at = AppTest.from_function(_remembering).run()
    assert at.markdown[0].value == "before: None, now: 'a'"
    at.run()
    assert at.markdown[0].value == "before: 'a', now: 'a'"
    at.session_state["next"] = "b"
    at.run()
    assert at.markdown[0].value == "before: 'a', now: 'b'"
