"""What every page does first, in one place: its title and introduction, the note's place under
them, and what it needs selected in the sidebar; and the one way a page notices that the model,
the image or anything else it drew for has changed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

import streamlit as st

from viz_core.catalog import LoadedModel
from viz_core.intake import LoadedImage

from .state import selection

NEEDS_TEXT = {
    "model": "Choose a model in the sidebar that loads, to see this page.",
    "image": "Choose or upload an image in the sidebar.",
}


@dataclass(frozen=True)
class Page:
    """What a page works on.

    Attributes
    ----------
    model : LoadedModel or None
        None only for a page set up with ``needs="nothing"``.
    image : LoadedImage or None
        The sidebar's image; None unless the page needs one or one is chosen.
    second : LoadedImage or None
        The sidebar's second image (compare two images), if any.
    note : streamlit placeholder
        Right under the introduction: where the page's "What am I looking at?" note goes
        (:func:`ui.notes.show`), the same place on every page.
    """

    model: LoadedModel | None
    image: LoadedImage | None
    second: LoadedImage | None
    note: Any


def page_setup(title: str, caption: str | None = None,
               needs: Literal["image", "model", "nothing"] = "image",
               intro: Callable[[], None] | None = None) -> Page:
    """Title, introduction (``caption``, then ``intro()`` for more than words) and the note's
    place, then the sidebar's selection.

    The first call of a run also draws the app's shell when a page is opened directly
    (:func:`ui.state.selection`). A page that ``needs`` a model (and an image) it does not
    have stops here with a line saying what to choose in the sidebar.
    """
    st.title(title)
    if caption:
        st.caption(caption)
    if intro is not None:
        intro()
    note = st.empty()
    chosen = selection()
    if needs != "nothing" and chosen.model is None:
        st.info(NEEDS_TEXT["model"])
        st.stop()
    if needs == "image" and chosen.image is None:
        st.info(NEEDS_TEXT["image"])
        st.stop()
    return Page(chosen.model, chosen.image, chosen.second, note)


def remember(key: str, value: Any) -> Any:
    """Keep ``value`` under ``key`` for the session and return what was kept before (None the
    first time): ``remember(k, v) != v`` is how a page sees that its model, image or request
    changed since its last run, and resets what depended on it."""
    previous = st.session_state.get(key)
    st.session_state[key] = value
    return previous
