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

from viz_core.errors import ParameterError
from viz_core.runtime.settings import read_settings

GRACE_S = 15.0  # seconds a session may be without its websocket before its jobs are given up
_FORGET_AFTER = 100  # gone sessions remembered before the oldest are forgotten


def session_id() -> str:
    """This script run's Streamlit session id (a fresh name outside a Streamlit run)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.session_id if ctx is not None else uuid.uuid4().hex


def client_address() -> str | None:
    """The address this session connects from, for the per-address job limit.

    Streamlit reports a loopback connection as None. Without a proxy that is the server's own
    machine, which is not limited (the classroom bench's students all connect over
    loopback). Behind reverse proxies on the same machine (the ``proxies`` setting, see
    :mod:`viz_core.runtime.settings`) every student arrives over loopback, and the address
    the nearest proxy saw is taken from ``X-Forwarded-For``: then one client opening many
    sessions is limited like any other."""
    import streamlit as st

    return address_of(st.context.ip_address, st.context.headers.get("X-Forwarded-For"),
                      trusted_proxies())


def trusted_proxies() -> int:
    """The ``proxies`` setting (0 when unset or invalid: the workbench's start reports an
    invalid value in the server's log)."""
    try:
        return read_settings().proxies
    except ParameterError:
        return 0


def address_of(ip: str | None, forwarded: str | None, proxies: int) -> str | None:
    """The client's address: ``ip`` when Streamlit gives one (a direct connection); for a
    loopback connection (None) behind ``proxies`` trusted proxies, the address the nearest
    of them saw, which is ``forwarded``'s ``proxies``-th entry from the right (the entries
    to its left are what the client itself claimed, and are not trusted); else None."""
    if ip is not None or proxies <= 0 or not forwarded:
        return ip
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if not hops:
        return None
    return hops[-proxies] if len(hops) >= proxies else hops[0]


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
