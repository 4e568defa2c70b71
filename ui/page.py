"""What every page does first, in one place: its title and introduction, the note's place under
them, and what it needs selected in the sidebar; and the one way a page notices that the model,
the image or anything else it drew for has changed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

import streamlit as st

from viz_core.models.catalog import LoadedModel
from viz_core.inputs.intake import LoadedImage

from .share import UPLOADERS, upload_name
from .shell import draw_shell
from .sidebar import uploaded_name
from .state import SELECTION_KEY, selected
from .text import literal
from .untrained import say_if_untrained

NEEDS_TEXT = {
    "model": "Choose a model in the sidebar that loads, to see this page.",
    "image": "Choose or upload an image in the sidebar.",
}


WHERE = {"model": "Model", "image": "Image"}


def needs_text(what: Literal["model", "image"]) -> str:
    """What to do when no ``what`` is selected: upload the file a link names (its name, when
    the link has it), upload one, or choose one that loads."""
    if st.session_state.get(what) != "upload" or uploaded_name(UPLOADERS[what]):
        return NEEDS_TEXT[what]
    name = upload_name(what)
    if name is None:
        return f"Upload {'a model' if what == 'model' else 'an image'} file in the sidebar."
    return (f"This view was made with an uploaded {what}, **{literal(name)}**: upload that file "
            f"in the sidebar ({WHERE[what]}) to see it. The rest of the view is kept until then.")


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

    These are Streamlit internals: ``tests/app/test_streamlit_internals.py`` fails loudly when
    they change. Should they be gone, pages run as Streamlit runs them (a newer Streamlit may
    not run a page alone at all).
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        alone = PagesManager.uses_pages_directory
    except (ImportError, AttributeError):
        return
    if alone:
        PagesManager.uses_pages_directory = False
        ctx = get_script_run_ctx()
        first_run = SELECTION_KEY not in st.session_state
        # Drawn as app.py draws it (the main script's hash), so the sidebar widgets keep the
        # same identity, and so their values, as in every other run.
        with ctx.run_with_active_hash(ctx.pages_manager.main_script_hash):
            draw_shell()
        if first_run:
            st.rerun()


def selection():
    """The sidebar's selection (:class:`ui.state.Selection`); draws the app's shell first when
    this run did not (a page opened directly)."""
    ensure_app_shell()
    return selected()


def require_model_and_image() -> tuple[LoadedModel, LoadedImage]:
    """The selected model and image, or stop the page with a line saying what to choose."""
    chosen = selection()
    if chosen.model is None:
        st.info(needs_text("model"))
        st.stop()
    if chosen.image is None:
        st.info(needs_text("image"))
        st.stop()
    return chosen.model, chosen.image


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
    have stops here with a line saying what to choose in the sidebar; one whose model has
    random weights says so (:mod:`ui.untrained`).
    """
    st.title(title)
    if caption:
        st.caption(caption)
    if intro is not None:
        intro()
    note = st.empty()
    chosen = selection()
    if needs != "nothing" and chosen.model is None:
        st.info(needs_text("model"))
        st.stop()
    if needs == "image" and chosen.image is None:
        st.info(needs_text("image"))
        st.stop()
    if needs != "nothing":  # the page shows this model's predictions or maps
        say_if_untrained(chosen.model)
    return Page(chosen.model, chosen.image, chosen.second, note)


def remember(key: str, value: Any) -> Any:
    """Keep ``value`` under ``key`` for the session and return what was kept before (None the
    first time): ``remember(k, v) != v`` is how a page sees that its model, image or request
    changed since its last run, and resets what depended on it."""
    previous = st.session_state.get(key)
    st.session_state[key] = value
    return previous
