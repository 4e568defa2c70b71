"""Shareable state: the view lives in the URL, so opening a link restores it.

The page is the URL path (``/heatmaps``), which ``st.navigation`` restores; each widget keeps
its own value in the URL (:mod:`ui.settings`). What no widget holds is added here: an upload
cannot travel in a link, its name can: ``?model=upload&model_name=cats.h5`` opens a page that
asks for that file (:func:`ui.page.needs_text`) and keeps the rest of the view.
"""
from __future__ import annotations

import streamlit as st

from .settings import every_page_params, link_value, set_param
from .sidebar import DATASET_CHOICE, DATASET_IMAGE_KEY, UPLOAD, uploaded_name

UPLOAD_NAMES = {"model": "model_name", "image": "image_name", "second": "second_name"}
UPLOADERS = {"model": "model_file", "image": "image_file", "second": "second_file"}
MAX_NAME = 200  # characters of a file name kept from a link


def url_value(key: str) -> str | None:
    """The text the session's link gave for ``key`` (or None)."""
    return link_value(key)


def upload_name(choice: str) -> str | None:
    """The name of the file uploaded for ``choice`` (model, image, second), else the one the
    session's link named (so a link stays whole until the file is uploaded), else None."""
    named = (link_value(UPLOAD_NAMES[choice]) or "").strip()[:MAX_NAME]
    return uploaded_name(UPLOADERS[choice]) or named or None


def opened_from_dataset() -> str | None:
    """The path of the image the Dataset page opened in the other pages, if any."""
    opened = st.session_state.get(DATASET_IMAGE_KEY)
    return opened[0] if opened else None


def write_to_url() -> None:
    """After the sidebar: name an upload in the URL (``model=upload&model_name=cats.h5``), as
    its bytes cannot travel, and an image the Dataset page opened (another session has not
    this dataset: its link asks for the file by name). The widgets link themselves."""
    if st.session_state.get("image") == DATASET_CHOICE and opened_from_dataset():
        set_param("image", UPLOAD)
        set_param(UPLOAD_NAMES["image"], opened_from_dataset())
        named_here = {"model", "second"}
    else:
        named_here = set(UPLOAD_NAMES)
    for choice in named_here:
        uploading = st.session_state.get(choice) == UPLOAD
        set_param(UPLOAD_NAMES[choice], upload_name(choice) if uploading else None)


def switch_page(page: str) -> None:
    """``st.switch_page`` keeping the sidebar's part of the link (model, images, presenter
    mode, uploads' names); the page left takes its own settings with it."""
    names = {k: st.query_params[k] for k in UPLOAD_NAMES.values() if k in st.query_params}
    st.switch_page(page, query_params=every_page_params() | names)
