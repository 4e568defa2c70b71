"""The session's selection (model, images) and the process-wide workbench."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from viz_core.catalog import LoadedModel
from viz_core.intake import LoadedImage
from viz_core.workbench import Workbench

SELECTION_KEY = "_selection"


@st.cache_resource(show_spinner=False)
def workbench() -> Workbench:
    """One workbench (and so one set of bounded caches) per server process, shared by sessions."""
    return Workbench()


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


def selection() -> Selection:
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
