"""Page settings the Streamlit way: each widget keeps its own state.

Every value widget of a page with a key takes one of these keyword sets:

- ``**LINKED`` (``bind="query-params", persist_state="session"``): Streamlit keeps the value
  across page switches and in the address bar under the widget's key, from the first run
  the page is drawn; an invalid value in a link (unknown option, outside the range) is
  dropped, and the widget's default value is left out of the link. Streamlit also removes a
  page's parameters from the address bar when another page is shown, so a link carries only
  its own page's settings. For sliders, number inputs, toggles and choices shown as they are.
- ``**named(key, options)``: a choice shown by a label (``format_func``) is linked by its
  *name* (``cam_layer=conv2d_3``, ``model=demo``), not by its label ("conv2d_3 · 16×16×32
  (last conv)", which Streamlit's binding would put in the link); kept across pages by
  Streamlit (``persist_state``), put in the link by :func:`named` as the widget is drawn;
  :func:`named_many` for a multiselect (``cmp_methods=gradcam,saliency``).
- ``**KEPT`` (``persist_state="session"``): kept across pages, not linked (free text).

A clamp is kept only where a range depends on the model or the image (:func:`within`).
"""
from __future__ import annotations

from typing import Iterable

import streamlit as st

LINKED = {"bind": "query-params", "persist_state": "session"}
KEPT = {"persist_state": "session"}
LINK_KEY = "_link"  # the query parameters the session was opened with
NAMED_KEY = "_named"  # named choices: key -> the page that draws it (EVERY_PAGE, None: unknown)
EVERY_PAGE = "*"  # the sidebar's named choices
PAGE_KEY = "_page"  # the page this run shows (its URL path), set by app.py
FIRST = object()  # a named choice's default: its first option


def start_run(page: str | None = None) -> None:
    """At the start of every run: keep the link the session was opened with (first run), note
    the ``page`` shown, and take another page's named choices out of the address bar (as
    Streamlit does for bound widgets)."""
    if LINK_KEY not in st.session_state:
        st.session_state[LINK_KEY] = {k: st.query_params.get(k) for k in st.query_params}
    st.session_state[PAGE_KEY] = page  # None: a page run alone (ui.page.ensure_app_shell)
    if page is None:
        return
    for key, drawn_on in (st.session_state.get(NAMED_KEY) or {}).items():
        if drawn_on not in (None, EVERY_PAGE, page):
            set_param(key, None)


def set_param(key: str, text: str | None) -> None:
    """Put ``key=text`` in the address bar (None: take ``key`` out), sending nothing when it
    is there already."""
    if text is None:
        if key in st.query_params:
            del st.query_params[key]
    elif st.query_params.get(key) != text:
        st.query_params[key] = text


def every_page_params() -> dict[str, str]:
    """The address bar's parameters of the choices drawn on every page (the sidebar's): what
    ``st.switch_page`` must be given (it clears the others, and refuses to clear a page's
    bound ones itself)."""
    shared = [k for k, page in (st.session_state.get(NAMED_KEY) or {}).items()
              if page == EVERY_PAGE]
    return {k: st.query_params[k] for k in shared if k in st.query_params}


def link_value(key: str) -> str | None:
    """The text the session's link gave for ``key`` (None when it gave none)."""
    return (st.session_state.get(LINK_KEY) or {}).get(key)


def linked_choice(key: str, options: Iterable):
    """The option the session's link names for ``key`` (its :func:`name_of` is the link's
    text), or None when the link names none or one that is not among ``options``."""
    text = link_value(key)
    if text is None:
        return None
    return next((o for o in options if name_of(o) == text), None)


def linked_choices(key: str, options: Iterable) -> list | None:
    """The options a link names for a multiselect (``cmp_methods=gradcam,saliency``), those
    among ``options``; None when the link names none of them."""
    text = link_value(key)
    if not text:
        return None
    names = {name_of(o): o for o in options}
    chosen = [names[t] for t in text.split(",") if t in names]
    return chosen or None


def named(key: str, options: Iterable, default=FIRST, *, every_page: bool = False,
          initial=None) -> dict:
    """Keyword arguments for a choice widget linked by its option's name (``key=...``, kept
    for the session). On the widget's first draw in the session the link's option, if it is
    one of ``options``, becomes its value; then the value is put in the address bar at once
    (a page may stop early, after which nothing reaches the browser), left out when it is
    ``default`` (the first option unless said; None: always put in). ``initial``, if given,
    is the widget's first value (then linked from the first draw). A choice drawn on
    ``every_page`` (the sidebar's) stays in the link on every page."""
    options = list(options)
    if key not in st.session_state:
        wanted = linked_choice(key, options)
        if wanted is not None:
            st.session_state[key] = wanted
        elif initial is not None:  # the widget's first value, linked from the first draw on
            st.session_state[key] = initial
    value = st.session_state.get(key)
    if default is FIRST:
        default = options[0] if options else None
    shown = value is not None and value in options and value != default
    return _drawn(key, name_of(value) if shown else None, every_page)


def named_many(key: str, options: Iterable, default: Iterable = ()) -> dict:
    """:func:`named` for a multiselect: its options are linked by their names, comma-separated
    (left out while they are the ``default`` ones)."""
    options = list(options)
    if key not in st.session_state:
        wanted = linked_choices(key, options)
        if wanted is not None:
            st.session_state[key] = wanted
    value = [v for v in st.session_state.get(key) or () if v in options]
    shown = key in st.session_state and value != list(default)
    return _drawn(key, name_of(value) if shown else None)


def _drawn(key: str, text: str | None, every_page: bool = False) -> dict:
    """Note that the page shown draws the named choice ``key``, and link its ``text``."""
    page = EVERY_PAGE if every_page else st.session_state.get(PAGE_KEY)
    st.session_state.setdefault(NAMED_KEY, {})[key] = page
    set_param(key, text)
    return dict(key=key, **KEPT)


def name_of(value) -> str:
    """An option's name in a link: its ``str``, 1 or 0 for a flag, names joined by commas for
    several."""
    if isinstance(value, (list, tuple)):
        return ",".join(name_of(v) for v in value)
    return str(int(value)) if isinstance(value, bool) else str(value)


def within(key: str, low, high) -> None:
    """Clamp a kept setting to a widget's range for this model or image (Streamlit refuses a
    value outside it): "superpixels shown" kept from an image with more superpixels, say."""
    value = st.session_state.get(key)
    if value is not None and not low <= value <= high:
        st.session_state[key] = min(max(value, low), high)
