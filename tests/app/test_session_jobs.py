"""Heavy jobs belong to browser sessions (issue 30: 70 sessions pressed Run and closed, and their
jobs held the queue for 27 minutes). What ``ui.sessions`` relies on in Streamlit is checked here
against Streamlit's own session manager, so a Streamlit upgrade that changes it fails loudly."""
from __future__ import annotations

import asyncio
import concurrent.futures
import time
from unittest import mock

import streamlit.runtime
from streamlit.runtime import Runtime
from streamlit.runtime.memory_session_storage import MemorySessionStorage
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.script_data import ScriptData
from streamlit.runtime.scriptrunner.script_cache import ScriptCache
from streamlit.runtime.websocket_session_manager import WebsocketSessionManager
from streamlit.testing.v1 import AppTest

from ui.sessions import OpenSessions, runtime_says_active
from viz_core.runtime.jobs import CANCELLED, RUNNING, JobQueue


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_session_is_open_until_its_grace_after_the_websocket_went():
    active, clock = {"a": True}, Clock()
    sessions = OpenSessions(grace=15.0, is_active=lambda s: active.get(s, False), clock=clock)
    assert sessions("a")
    active["a"] = False
    assert sessions("a")  # just lost: may come back
    clock.now += 14.0
    assert sessions("a")
    active["a"] = True  # reconnected: the count starts again next time
    clock.now += 5.0
    assert sessions("a")
    active["a"] = False
    assert sessions("a")
    clock.now += 15.0
    assert not sessions("a")
    assert OpenSessions(is_active=lambda s: None)("x")  # no runtime: nothing ends


def test_ten_sessions_that_end_leave_no_job_queued_or_running():
    active, clock = {}, Clock()
    queue = JobQueue(workers=1, give_way=0, owner_alive=OpenSessions(
        grace=15.0, is_active=lambda s: active.get(s, False), clock=clock))
    reports = []

    def lime(progress):
        while True:
            reports.append(1)
            progress(0.1, "perturbing")
            time.sleep(0.01)

    try:
        jobs = []
        for i in range(10):
            active[f"s{i}"] = True
            jobs.append(queue.submit(("lime", i), lime, owner=f"s{i}", client=f"10.0.1.{i}"))
        deadline = time.monotonic() + 10
        while not (jobs[0].state == RUNNING and reports):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        active.clear()  # every tab closed
        time.sleep(0.2)
        assert queue.counts() == {"queued": 9, "running": 1}  # within the grace: kept
        clock.now += 15.0
        assert all(j.finished.wait(2) for j in jobs)
        assert queue.counts() == {"queued": 0, "running": 0}
        assert {j.state for j in jobs} == {CANCELLED}
    finally:
        queue.close()


def test_streamlit_s_session_manager_says_when_a_websocket_goes_and_comes_back(tmp_path):
    """The contract ui.sessions relies on: Runtime.is_active_session(id) is True while the
    session's websocket is connected, False once it disconnected (the session is kept for a
    reconnect), True again after a reconnect with the same id."""
    script = tmp_path / "app.py"
    script.write_text("import streamlit as st\n")

    async def connect_and_leave():
        manager = WebsocketSessionManager(MemorySessionStorage(),
                                          MemoryUploadedFileManager("/_stcore/upload_file"),
                                          ScriptCache(), None)
        runtime = Runtime.__new__(Runtime)  # the real method, over this session manager
        runtime._session_mgr = manager

        def asked(sid):
            with mock.patch.object(streamlit.runtime, "exists", lambda: True), \
                    mock.patch.object(streamlit.runtime, "get_instance", lambda: runtime):
                return runtime_says_active(sid)

        def connect(existing=None):
            return manager.connect_session(client=mock.MagicMock(),
                                           script_data=ScriptData(str(script), False),
                                           user_info={}, existing_session_id=existing)

        sid = connect()
        seen = [asked(sid)]
        manager.disconnect_session(sid)
        seen.append(asked(sid))
        seen.append(connect(sid) == sid and asked(sid))
        manager.close_session(sid)
        seen.append(asked(sid))
        return seen

    # in a thread of its own: a browser test's Playwright (sync API) may hold this thread's
    # event loop for the rest of the worker's session
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        seen = pool.submit(asyncio.run, connect_and_leave()).result(timeout=60)
    assert seen == [True, False, True, False]
    assert runtime_says_active("anything") is None  # no runtime here (AppTest, scripts)


def test_a_page_session_s_owner_is_its_streamlit_session_id():
    at = AppTest.from_string(
        "import streamlit as st\n"
        "from streamlit.runtime.scriptrunner import get_script_run_ctx\n"
        "from ui.state import session_owner\n"
        "same = session_owner() == get_script_run_ctx().session_id\n"
        "st.markdown('same' if same else 'different')\n")
    at.run()
    assert not at.exception, at.exception
    assert at.markdown[0].value == "same"
