"""The page-level guard: an unexpected error becomes a short message, never a traceback.

Domain errors (:class:`viz_core.errors.VizError`) are the pages' to show; anything else is a
bug or a model the app does not handle. The user reads "Something went wrong with this model:
<short reason>" without server paths; the whole traceback goes to the server's log.
Streamlit's own control flow (``st.stop``, ``st.rerun``, ``st.switch_page``) raises
``BaseException`` subclasses, which pass through untouched.
"""
from __future__ import annotations

import logging
import re
from contextlib import contextmanager

import streamlit as st
from streamlit.errors import FragmentHandledException

from viz_core.errors import VizError

from .text import literal

LOG = logging.getLogger("cnn_explorer")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# An absolute path with at least two parts (/srv/app/x.py, C:\app\x.py): the server's business.
_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?[/\\](?:[^\s/\\'\"<>:]+[/\\])+[^\s/\\'\"<>:,)]*")


def short_reason(exc: BaseException, limit: int = 160) -> str:
    """The first line of ``exc``'s message without colour codes or file paths, at most
    ``limit`` characters; the exception's type when it has no message."""
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    reason = _PATH.sub("…", lines[0]) if lines else type(exc).__name__
    return reason if len(reason) <= limit else reason[: limit - 1].rstrip() + "…"


def unexpected_message(exc: BaseException) -> str:
    """What the user reads for an unexpected error (Markdown-safe)."""
    return f"Something went wrong with this model: {literal(short_reason(exc))}"


@contextmanager
def page_guard(where=st):
    """Show an exception raised inside the block as a message in ``where`` and log it.

    A :class:`~viz_core.errors.VizError` that no page caught is shown as it is (its message is
    written for users); any other ``Exception`` as :func:`unexpected_message`, with the
    traceback logged server-side.
    """
    try:
        yield
    except FragmentHandledException:  # a fragment already showed it
        raise
    except VizError as exc:
        LOG.info("Domain error reached the page guard: %s", exc)
        where.error(literal(str(exc)), icon=":material/error:")
    except Exception as exc:  # noqa: BLE001 - the point of the guard: nothing reaches the user raw
        LOG.exception("Unexpected error while drawing the page")
        where.error(unexpected_message(exc), icon=":material/error:")
