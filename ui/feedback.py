"""Errors and progress, the Streamlit way."""
from __future__ import annotations

import logging
import re
import time
from typing import Callable, MutableMapping

import streamlit as st

from viz_core.errors import VizError
from viz_core.runtime.jobs import OwnerBusy

from .presenter import presenter_on
from .served import served
from .sessions import client_address
from .state import job_queue, session_owner
from .text import literal  # messages echo names the user chose (layers, classes, files)

_LOG = logging.getLogger(__name__)


class BackgroundWorkFailed(RuntimeError):
    """Raised to Streamlit by a guarded download callable, so the browser says it failed."""


def short_message(exc: VizError) -> str:
    """The first sentence of an error, without technical details in parentheses."""
    text = str(exc)
    first = text.split(". ", 1)[0].rstrip(".")
    return re.sub(r"\s*\([^)]*\)", "", first).strip() + "."


def show_error(exc: VizError, where=st) -> None:
    """A domain error as a red box with the message only (never a traceback); in presenter
    mode only its first sentence, without details."""
    text = short_message(exc) if presenter_on() else str(exc)
    where.error(literal(text), icon=":material/error:")


def show_message(text: str, where=st) -> None:
    """An error message already in the user's words, as a red box."""
    where.error(text, icon=":material/error:")


def guarded(make: Callable[[], bytes], *, what: str, failures: MutableMapping[str, str],
            key: str) -> Callable[[], bytes]:
    """``make`` for a download button's callable, made safe for the server.

    Streamlit runs the callable in a server thread and catches only ``Exception``: a
    ``SystemExit`` (argparse's way out) from there ends the whole server for every user.
    Here everything is caught: the reason, in the user's words, goes to ``failures[key]`` (shown
    under the button on the page's next run), an unexpected error's trace to the server log, and
    :class:`BackgroundWorkFailed` to Streamlit, which tells the browser the download failed.
    """

    def run() -> bytes:
        try:
            return make()
        except VizError as exc:
            failures[key] = f"{what} could not be made: {exc}"
        except BaseException as exc:  # noqa: BLE001 - SystemExit here would end the server
            _LOG.error("%s failed", what, exc_info=exc)
            failures[key] = (f"{what} could not be made: something went wrong "
                             f"({type(exc).__name__}); the details are in the server's log.")
        raise BackgroundWorkFailed(failures[key])

    return run


_DOWNLOAD_FAILED_KEY = "_download_failed"  # button key -> why its last file was not made


def download_data(make: Callable[[], bytes], *, what: str, key: str,
                  where=st) -> Callable[[], bytes]:
    """``make`` guarded for ``st.download_button(data=...)`` under the button ``key``; says
    under the button, on this run, why the previous click's file could not be made."""
    failures = st.session_state.setdefault(_DOWNLOAD_FAILED_KEY, {})
    if key in failures:
        show_message(failures.pop(key), where=where)
    return guarded(make, what=what, failures=failures, key=key)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _stop_key(label: str) -> str:
    return "stop_" + re.sub(r"\W+", "_", label.lower()).strip("_")


class ProgressBar:
    """A ``progress(fraction, message)`` callback that drives ``st.progress`` and estimates
    the time left from the pace so far.

    With ``stoppable`` a Stop button sits under the bar. Streamlit ends a run at its next
    element update when any widget is clicked, so a click stops the work at the next progress
    report (between batches); the cache keeps nothing of an unfinished result. The rerun
    after the click can say so with :func:`stopped_note`.
    """

    def __init__(self, label: str, *, stoppable: bool = False):
        self.label = label
        self.box = st.empty()
        with self.box.container():
            # one row: the bar, and its Stop button beside it (not a second row pushing the
            # page's pictures down)
            where, stop = st.columns([7, 1], vertical_alignment="bottom") if stoppable else (
                st.container(), None)
            self.bar = where.progress(0.0, text=label)
            if stoppable:
                stop.button("Stop", key=_stop_key(label), icon=":material/stop:",
                            help="Stops at the next step; nothing half-done is kept.")
        self.start = time.monotonic()

    def __call__(self, fraction: float, message: str = "") -> None:
        fraction = max(0.0, min(1.0, float(fraction)))
        elapsed = time.monotonic() - self.start
        eta = ""
        if 0.02 < fraction < 1.0 and elapsed > 1.0:
            left = elapsed * (1.0 - fraction) / fraction
            eta = f" · about {left:.0f} s left"
        self.bar.progress(fraction, text=f"{self.label}: {message}{eta}")

    def queued(self, ahead: int, wait_seconds: float | None) -> None:
        """Show that the work waits for others' (``ahead`` jobs start first)."""
        elapsed = time.monotonic() - self.start
        wait = "" if wait_seconds is None else f", about {_duration(wait_seconds)}"
        others = "1 job" if ahead == 1 else f"{ahead} jobs"
        self.bar.progress(0.0, text=f"{self.label}: queued, {others} ahead of you{wait} "
                          f"· waiting {elapsed:.0f} s")

    def done(self) -> None:
        self.box.empty()


FOLLOW_EVERY_S = 0.5  # how often a running job's bar is redrawn (a fragment rerun)


def run_button(label: str, progress_label: str, key: str, compute, *,
               job_key=None, disabled: bool = False, auto: bool = False,
               tick: Callable[[], bool] | None = None) -> bool:
    """A primary button that queues ``compute(progress)`` as heavy work, follows it under a
    stoppable progress bar, then reruns the page so it is drawn from the caches.

    The work runs in the server's job queue (:func:`ui.state.job_queue`), not in this page's
    run: while others' work runs first the bar says "queued, 2 ahead of you"; leaving the page
    does not stop it, and coming back follows it again (or draws its result). The bar is a
    fragment (:func:`_follow`) redrawn every :data:`FOLLOW_EVERY_S`, so the page's run ends at
    once and the rest of the page stays usable while the work runs (a colour map changed
    meanwhile is redrawn at once). ``job_key`` names the work so that identical requests of
    several sessions share one job (default: this session's own; a
    :meth:`viz_core.runtime.plan.Plan.key`). A failure is shown as a message. Returns False:
    the result is drawn on the rerun after the work ends (after a stop, a note says so).

    With ``auto`` the work is queued without a click (a page that draws on arrival), except
    for the request (``job_key``) this session last stopped or saw fail: that one waits for
    the button. ``tick()`` is called about twice a second while the work runs or waits; when
    it returns True (a part of the result is ready to show) the page is drawn again.
    """
    queue, owner = job_queue(), session_owner()
    held, stopped = f"_job_{key}", f"_stopped_{key}"
    job_key = job_key if job_key is not None else (key, owner)
    job = st.session_state.get(held)
    if job is not None:
        _follow(key, progress_label, tick)
        return False
    failure = st.session_state.pop(f"_failed_{key}", None)
    if failure:
        show_message(f"{progress_label}: {failure}")
    stopped_note(progress_label)
    clicked = st.button(label, type="primary", key=key, disabled=disabled)
    if not (clicked or auto and not disabled and st.session_state.get(stopped) != job_key):
        return False
    try:
        job = queue.submit(job_key, compute, owner=owner, label=progress_label,
                           client=client_address())
    except OwnerBusy as exc:
        if clicked:
            show_error(exc)
        else:  # a page's own start, not the user's: say when it will happen, and do it then
            st.info(f"{exc} This page starts its own once that one has ended.",
                    icon=":material/hourglass:")
            if served():
                _rerun_when_free()
        return False
    except VizError as exc:
        show_error(exc)
        return False
    st.session_state.pop(stopped, None)
    st.session_state[held] = job
    _follow(key, progress_label, tick)
    return False


def job_running(key: str) -> bool:
    """Whether this session has work under the button ``key`` waiting or running (its bar is
    on the page; the page's own message "press the button" would be wrong)."""
    return f"_job_{key}" in st.session_state


def stopped_here(key: str, job_key) -> bool:
    """Whether this session's last job under the button ``key`` was ``job_key`` and it did
    not finish (Stop, or a failure): a page then starts no related work on its own."""
    return st.session_state.get(f"_stopped_{key}") == job_key


def finished_here(key: str, job_key) -> bool:
    """Whether this session's last job under the button ``key`` was ``job_key`` and it
    finished (so a result read back from a cache was made for this user just now)."""
    return st.session_state.get(f"_done_{key}") == job_key


def _follow(key: str, label: str, tick=None) -> None:
    """Follow the job held under the button ``key``: in a fragment redrawn every
    :data:`FOLLOW_EVERY_S` when served (the page's run ends at once), else (AppTest) in this
    run until it ends."""
    if served():
        _follow_in_fragment(key, label, tick)
        return
    with job_queue().pages.waiting():  # this run only waits: jobs need not give way to it
        bar = ProgressBar(label, stoppable=True)
        while not _follow_once(key, label, tick, bar):
            time.sleep(FOLLOW_EVERY_S)


@st.fragment(run_every=FOLLOW_EVERY_S)
def _follow_in_fragment(key: str, label: str, tick=None) -> None:
    _follow_once(key, label, tick, ProgressBar(label, stoppable=True))


@st.fragment(run_every=2 * FOLLOW_EVERY_S)
def _rerun_when_free() -> None:
    """Draw the page again once this session's heavy job (started on another page or tab)
    has ended, so a page that starts its own work on arrival does it then, not only at the
    user's next click."""
    job = job_queue().job_of(session_owner())
    if job is None or job.finished.is_set():
        st.rerun()


def _follow_once(key: str, label: str, tick, bar: ProgressBar) -> bool:
    """One look at the job held under ``key``: draw its place or progress on ``bar``; when it
    ended (or Stop was clicked) note how and rerun the page. Returns False while it runs."""
    queue, owner = job_queue(), session_owner()
    held, started = f"_job_{key}", f"_started_{key}"
    job = st.session_state.get(held)
    if job is None:  # ended, and the page knows it already
        bar.done()
        return True
    if st.session_state.get(_stop_key(label)):
        queue.cancel(job, owner)
        _ended(key, job, stopped_by_user=True)
        st.rerun()
    if job.finished.is_set():
        status = queue.status(job)
        queue.forget(owner)
        if status.state == "done":
            st.session_state[f"_done_{key}"] = job.key
        else:  # failed, or given up by the queue (a server stopping)
            st.session_state[f"_failed_{key}"] = status.error or "stopped."
        _ended(key, job)
        st.rerun()
    status = queue.status(job)
    if status.state == "queued":
        bar.queued(status.ahead, status.wait_seconds)
    else:  # the time left is estimated from the work's own pace
        bar.start = st.session_state.setdefault(started, time.monotonic())
        bar(status.fraction, status.message)
    if tick is not None and tick():
        st.rerun()
    return False


def _ended(key: str, job, stopped_by_user: bool = False) -> None:
    """Forget the job held under ``key``; a job that did not finish is not started again on
    its own (``auto``)."""
    st.session_state.pop(f"_job_{key}", None)
    st.session_state.pop(f"_started_{key}", None)
    if st.session_state.get(f"_done_{key}") != job.key:
        st.session_state[f"_stopped_{key}"] = job.key
    if stopped_by_user:
        st.session_state[_STOP_SAID_KEY] = job.label


_STOP_SAID_KEY = "_stop_said"  # the progress label of the job Stop ended, said once


def stopped_note(label: str, where=st) -> bool:
    """On the run right after the Stop button of ``ProgressBar(label, stoppable=True)`` was
    clicked, say that the work was stopped; returns whether it was."""
    if st.session_state.get(_stop_key(label)) or st.session_state.get(_STOP_SAID_KEY) == label:
        st.session_state.pop(_STOP_SAID_KEY, None)
        where.caption(f"{label}: stopped. Nothing half-done was kept; press the button to "
                      "start again.")
        return True
    return False
