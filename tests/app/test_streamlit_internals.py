"""The Streamlit internals the dashboard still uses (issue 28, item 3), each checked here so a
Streamlit upgrade that changes one fails this file by name instead of breaking a page quietly:

- ``ui.page.ensure_app_shell``: ``PagesManager.uses_pages_directory`` (a page run alone on a
  process's first request), ``ScriptRunContext.run_with_active_hash`` and
  ``PagesManager.main_script_hash`` (the sidebar drawn under app.py's name);
- ``ui.served.served``: AppTest's ``TESTING_KEY`` in session state (jobs followed in
  the run under AppTest, in a fragment when served);
- ``ui.sidebar._forget_upload``: ``Runtime.instance().uploaded_file_mgr.remove_file(session_id,
  file_id)`` (a refused upload's memory freed at once).
"""
from __future__ import annotations

import inspect

from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner_utils.script_run_context import ScriptRunContext
from streamlit.runtime.uploaded_file_manager import UploadedFileRec
from streamlit.testing.v1 import AppTest


def test_the_pages_manager_still_says_when_a_page_runs_alone():
    assert "uses_pages_directory" in vars(PagesManager)  # a class attribute ensure_app_shell resets
    manager = PagesManager("/work/app.py")
    assert manager.main_script_hash and isinstance(manager.main_script_hash, str)
    assert "page_hash" in inspect.signature(ScriptRunContext.run_with_active_hash).parameters


def test_a_page_opened_alone_still_gets_the_sidebar_under_the_apps_name():
    """AppTest's switch_page runs the page alone (the internals above): the sidebar's model
    picker is drawn all the same and keeps the value chosen before."""
    at = AppTest.from_file("../../app.py", default_timeout=300)
    at.run()
    at.sidebar.selectbox(key="image").set_value("square").run()
    at.switch_page("pages/overview.py").run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="image").value == "square"
    assert [s.key for s in at.sidebar.selectbox][:1] == ["model"]


def test_the_upload_store_still_removes_one_file_of_a_session():
    store = MemoryUploadedFileManager("/_stcore/upload_file")
    for file_id in ("a", "b"):
        store.add_file("session", UploadedFileRec(file_id, f"{file_id}.png", "image/png",
                                                  b"x" * 1000))
    store.remove_file("session", "a")  # as ui.sidebar._forget_upload calls it
    assert [f.file_id for f in store.get_files("session", ["a", "b"])] == ["b"]
    assert sum(s.byte_length for stats in store.get_stats().values() for s in stats) == 1000


def _served_or_not():
    import streamlit as st

    from ui.served import served

    st.write(f"served={served()}")


def test_apptest_still_marks_its_sessions_so_jobs_are_followed_in_the_run():
    """``ui.served.served`` reads AppTest's testing key: AppTest has no timed fragment
    reruns, so a job there is followed in the page's own run (the page tests' results)."""
    from streamlit.runtime.state.common import TESTING_KEY

    assert TESTING_KEY.startswith("$$STREAMLIT_INTERNAL")
    at = AppTest.from_function(_served_or_not, default_timeout=60)
    at.run()
    assert [m.value for m in at.markdown] == ["served=False"]
