"""Page settings that survive page switches.

Streamlit forgets a widget's value when a run does not draw it: leave Class heatmaps for LIME
and come back, and its colour map, method, threshold and layer are back at their defaults (the
layer at the first in its list, the model's input, which broke the page). Re-assigning a
widget's own value at the start of every run, before any page draws, keeps it (the way
Streamlit's documentation gives for multipage apps).

Only value widgets can be kept this way: Streamlit refuses a value set for a button, a download
button, a file uploader or a chart's selection, so their keys are told apart by name (the pages
name them so; ``tests/app/test_settings.py`` checks every key the pages use).
"""
from __future__ import annotations

import re

import streamlit as st

# Keys of the pages' widgets start with their page's prefix.
PAGE_PREFIXES = ("fm_", "fp_", "cam_", "lime_", "cmp_", "san_", "pg_", "ds_", "atlas_")
# Widgets whose value cannot be set: buttons, downloads, uploads, charts and tables.
_NOT_SETTABLE = re.compile(
    r"(_run|_bundle|_go|_stop|_draw|_chart|_table|_file)$"
    r"|^(fp_dl_|fm_zip|fm_png_|fm_zoom_|fm_grid_|fp_grid_|cam_download_|lime_download_|stop_"
    r"|atlas_open_)")


def is_setting(key: str) -> bool:
    """Whether ``key`` names a page's value widget (kept across page switches)."""
    return key.startswith(PAGE_PREFIXES) and not _NOT_SETTABLE.search(key)


def within(key: str, low, high) -> None:
    """Clamp a kept setting to a widget's range for this model or image (Streamlit refuses a
    value outside it): "superpixels shown" kept from an image with more superpixels, say."""
    value = st.session_state.get(key)
    if value is not None and not low <= value <= high:
        st.session_state[key] = min(max(value, low), high)


def keep_page_settings() -> None:
    """Keep every page's settings for the session, also while another page is shown."""
    for key in [k for k in st.session_state if isinstance(k, str) and is_setting(k)]:
        st.session_state[key] = st.session_state[key]
