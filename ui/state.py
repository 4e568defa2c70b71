"""The session's selection (model, images) and the process-wide workbench."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial

import streamlit as st

from viz_core.models.catalog import LoadedModel
from viz_core.errors import ParameterError
from viz_core.inputs.intake import LoadedImage
from viz_core.runtime.jobs import JobQueue
from viz_core.runtime.settings import Settings, read_settings
from viz_core.runtime.workbench import Workbench

from .idle import IdleTrim
from .sessions import OpenSessions, session_id

SELECTION_KEY = "_selection"
RENEW_WAIT_S = 5.0  # the idle trim waits at most this long for the old job workers to end


@st.cache_resource(show_spinner=False)
def workbench() -> Workbench:
    """One workbench (and so one set of bounded caches) per server process, shared by sessions.

    Its memory bounds come from the environment (:mod:`viz_core.runtime.settings`, as
    ``compose.yaml`` sets them); a bad value is reported in the server's log and the defaults
    are used, so the class can still work. Its in-memory caches are emptied
    after a minute in which no session used them (:class:`ui.idle.IdleTrim`), and the job
    queue's worker threads are renewed then, so memory comes back after sessions close.
    """
    try:
        settings = read_settings()
    except ParameterError as exc:
        print(f"warning: {exc} The default bounds are used.", file=sys.stderr, flush=True)
        settings = Settings()
    bench = Workbench.from_settings(settings)
    IdleTrim(bench, also=(partial(job_queue().renew_workers, wait=RENEW_WAIT_S),)).start()
    return bench


@st.cache_resource(show_spinner=False)
def job_queue() -> JobQueue:
    """One queue of heavy work per server process, shared fairly by sessions; the work of a
    session that ended is dropped (:class:`ui.sessions.OpenSessions`)."""
    return JobQueue(owner_alive=OpenSessions())


def session_owner() -> str:
    """This browser session's name in the job queue (one unfinished heavy job each): its
    Streamlit session id, which the queue asks the runtime about."""
    return st.session_state.setdefault("_owner", session_id())


@dataclass(frozen=True, eq=False)
class Selection:
    """What the sidebar selected on this rerun.

    ``model`` is None when the chosen model could not be loaded (the sidebar shows why);
    ``image`` likewise. ``second`` is the optional image for side-by-side views.
    """

    model: LoadedModel | None
    image: LoadedImage | None
    second: LoadedImage | None = None


def set_selection(selection: Selection) -> None:
    st.session_state[SELECTION_KEY] = selection


def selected() -> Selection:
    """What the sidebar selected on this session's last run (nothing before its first run).
    Pages read it through :func:`ui.page.selection`, which draws the shell first if needed."""
    return st.session_state.get(SELECTION_KEY) or Selection(None, None, None)
