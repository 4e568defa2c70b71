"""AppTest for the progress bar's Stop button and the note on the run after a stop."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _long_job():
    import streamlit as st

    from ui.feedback import ProgressBar, stopped_note

    stopped_note("Running LIME")
    if st.button("Run", key="run"):
        bar = ProgressBar("Running LIME", stoppable=True)
        bar(0.25, "seed 0")
        st.session_state["progress_seen"] = True
        if not st.session_state.get("finish"):
            st.stop()  # the run is still going: the bar and its Stop button are on screen
        bar.done()
        st.write("done")


def test_stop_button_under_the_bar_and_a_note_after_a_stop():
    at = AppTest.from_function(_long_job)
    at.run()
    assert not at.caption and not at.get("progress")
    at.button(key="run").click().run()
    bar = at.get("progress")[0]
    assert bar.proto.value == 25 and bar.proto.text.startswith("Running LIME: seed 0")
    stop = at.button(key="stop_running_lime")
    assert stop.label == "Stop"
    stop.click().run()  # Streamlit ends the running job at its next update, then reruns
    assert [c.value for c in at.caption] == [
        "Running LIME: stopped. Nothing half-done was kept; press the button to start again."]
    assert not at.get("progress")  # nothing runs until the button is pressed again
    at.session_state["finish"] = True
    at.button(key="run").click().run()
    assert not at.caption
    assert not at.get("progress") and not any(b.key == "stop_running_lime" for b in at.button)
    assert [m.value for m in at.markdown] == ["done"]
