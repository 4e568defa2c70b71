"""Which browser sessions are still open, so the job queue can drop the work of those that
ended (a tab closed): 70 sessions that pressed Run and closed held the queue for 27 minutes.

Streamlit has no public "session ended" hook (1.67). The runtime's session manager knows which
sessions have a websocket (``Runtime.is_active_session``, documented thread-safe); a session
that lost it may come back within ``server.disconnectedSessionTTL`` (a network blip), so work
is given up only after :data:`GRACE_S` without one. ``tests/app/test_session_jobs.py`` fails
loudly if Streamlit changes what this relies on.
"""
from __future__ import annotations

import threading
import time
import uuid
from typing import Callable

GRACE_S = 15.0  # seconds a session may be without its websocket before its jobs are given up
_FORGET_AFTER = 100  # gone sessions remembered before the oldest are forgotten


def session_id() -> str:
    """This script run's Streamlit session id (a fresh name outside a Streamlit run)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.session_id if ctx is not None else uuid.uuid4().hex


def client_address() -> str | None:
    """The address this session connects from, for the per-address job limit; None from the
    server's own machine (Streamlit reports loopback as None), which is not limited: behind a
    reverse proxy on the same machine every student would share one address, and the
    classroom bench's students all connect over loopback."""
    import streamlit as st

    return st.context.ip_address


def runtime_says_active(session: str) -> bool | None:
    """Whether Streamlit's runtime holds a websocket for ``session``; None without a runtime
    (AppTest, a plain script), where sessions never end."""
    from streamlit import runtime

    if not runtime.exists():
        return None
    return runtime.get_instance().is_active_session(session)


class OpenSessions:
    """``owner_alive`` for :class:`viz_core.runtime.jobs.JobQueue`: a session is open while it
    has its websocket, and for ``grace`` seconds after it lost it.

    Parameters
    ----------
    grace : float
    is_active : callable
        ``is_active(session) -> bool | None``; None means "cannot tell" (kept open).
    clock : callable
    """

    def __init__(self, grace: float = GRACE_S,
                 is_active: Callable[[str], bool | None] = runtime_says_active,
                 clock: Callable[[], float] = time.monotonic):
        self.grace, self._is_active, self._clock = float(grace), is_active, clock
        self._gone_since: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, session: str) -> bool:
        active = self._is_active(session)
        with self._lock:
            if active is None or active:
                self._gone_since.pop(session, None)
                return True
            now = self._clock()
            since = self._gone_since.setdefault(session, now)
            while len(self._gone_since) > _FORGET_AFTER:  # oldest first (insertion order)
                del self._gone_since[next(iter(self._gone_since))]
            return now - since < self.grace
