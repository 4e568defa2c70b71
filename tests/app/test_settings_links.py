"""ui.settings' named choices: a choice shown by a label is linked by its name, seeded from the
session's link on its first draw (an unknown name is ignored), left out of the link at its
default, kept while another page is shown, and taken out of the link there."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

LAYERS = ["l1", "l2", "l3"]


def two_pages():
    """Page "a" draws a layer picker (labels in capitals), page "b" a radio; the session
    state's ``which`` says which page is shown, as app.py's navigation does."""
    import streamlit as st

    from ui.settings import named, start_run

    page = st.session_state.get("which", "a")
    start_run(page)
    if page == "a":
        st.selectbox("Layer", ["l1", "l2", "l3"], format_func=str.upper,
                     **named("a_layer", ["l1", "l2", "l3"]))
    else:
        st.radio("Show", ["x", "y"], format_func=str.upper, **named("b_show", ["x", "y"]))


def opened(**link) -> AppTest:
    at = AppTest.from_function(two_pages)
    for key, value in link.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def param(at, key):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) else value


def test_a_links_name_opens_the_choice_and_stays_in_the_link():
    at = opened(a_layer="l2")
    assert at.selectbox(key="a_layer").value == "l2"
    assert param(at, "a_layer") == "l2"  # the name, not the label "L2"


def test_an_unknown_name_is_ignored_and_the_default_is_left_out():
    at = opened(a_layer="L2")  # a label is not a name
    assert at.selectbox(key="a_layer").value == "l1" and param(at, "a_layer") is None
    at.selectbox(key="a_layer").set_value("l3").run()
    assert param(at, "a_layer") == "l3"
    at.selectbox(key="a_layer").set_value("l1").run()
    assert param(at, "a_layer") is None


def test_another_page_takes_the_choice_out_of_the_link_and_keeps_its_value():
    at = opened()
    at.selectbox(key="a_layer").set_value("l3").run()
    at.session_state["which"] = "b"
    at.run()
    at.radio(key="b_show").set_value("y").run()
    assert (param(at, "a_layer"), param(at, "b_show")) == (None, "y")
    at.session_state["which"] = "a"
    at.run()
    assert at.selectbox(key="a_layer").value == "l3"  # kept while page b was shown
    assert (param(at, "a_layer"), param(at, "b_show")) == ("l3", None)
