"""The session's selection (model, images) and the process-wide workbench."""
from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass

import streamlit as st

from viz_core.catalog import LoadedModel
from viz_core.errors import ParameterError
from viz_core.intake import LoadedImage
from viz_core.jobs import JobQueue
from viz_core.settings import Settings, read_settings
from viz_core.workbench import Workbench

SELECTION_KEY = "_selection"


@st.cache_resource(show_spinner=False)
def workbench() -> Workbench:
    """One workbench (and so one set of bounded caches) per server process, shared by sessions.

    Its memory bounds come from the environment (:mod:`viz_core.settings`, as
    ``compose.yaml`` sets them); a bad value is reported in the server's log and the defaults
    are used, so the class can still work. Its in-memory caches are emptied
    after a minute in which no session used them (:class:`ui.idle.IdleTrim`), so memory comes
    back after sessions close.
    """
    from .idle import IdleTrim

    try:
        settings = read_settings()
    except ParameterError as exc:
        print(f"warning: {exc} The default bounds are used.", file=sys.stderr, flush=True)
        settings = Settings()
    bench = Workbench.from_settings(settings)
    IdleTrim(bench).start()
    return bench


@st.cache_resource(show_spinner=False)
def job_queue() -> JobQueue:
    """One queue of heavy work per server process, shared fairly by sessions."""
    return JobQueue()


def session_owner() -> str:
    """This browser session's name in the job queue (one unfinished heavy job each)."""
    return st.session_state.setdefault("_owner", uuid.uuid4().hex)


@dataclass(frozen=True, eq=False)
class Selection:
    """What the sidebar selected on this rerun.

    ``model`` is None when the chosen model could not be loaded (the sidebar shows why);
    ``image`` likewise. ``second`` is the optional image for side-by-side views.
    """

    model: LoadedModel | None
    image: LoadedImage | None
    second: LoadedImage | None = None


def ensure_app_shell() -> None:
    """Make sure the shell (sidebar, URL state) ran, also for a first request to a page URL.

    Streamlit treats a folder called ``pages/`` as its old multipage layout until the first
    ``st.navigation`` call in the process (``PagesManager.uses_pages_directory``), so the very
    first request for ``/heatmaps`` (and every AppTest run after ``switch_page``) runs that page
    alone, without ``app.py``. Then the shell is drawn here, in the same run, and the flag is
    cleared so later runs go through ``app.py``. On a session's first run (a browser opening
    a shared link to a page) the run then starts again through ``app.py``, so the page gets
    its navigation bar and wide layout; later runs are not restarted, as that would lose a
    button click.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        from .shell import draw_shell

        ctx = get_script_run_ctx()
        first_run = SELECTION_KEY not in st.session_state
        # Drawn as app.py draws it (the main script's hash), so the sidebar widgets keep the
        # same identity, and so their values, as in every other run.
        with ctx.run_with_active_hash(ctx.pages_manager.main_script_hash):
            draw_shell()
        if first_run:
            st.rerun()


def set_selection(selection: Selection) -> None:
    st.session_state[SELECTION_KEY] = selection


def selection() -> Selection:
    ensure_app_shell()
    return st.session_state.get(SELECTION_KEY) or Selection(None, None, None)


def require_model_and_image() -> tuple[LoadedModel, LoadedImage]:
    """The selected model and image, or stop the page with a friendly note."""
    sel = selection()
    if sel.model is None:
        st.info("Choose a model in the sidebar that loads, to see this page.")
        st.stop()
    if sel.image is None:
        st.info("Choose or upload an image in the sidebar.")
        st.stop()
    return sel.model, sel.image
