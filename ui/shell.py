"""The parts of the app shell every run needs: the link's state in, sidebar, presenter style."""
from __future__ import annotations

from .presenter import apply_presenter_style
from .settings import start_run
from .share import write_to_url
from .sidebar import draw_sidebar
from .state import Selection


def draw_shell(page: str | None = None) -> Selection:
    """Note the run's ``page`` (its URL path) and the session's link, draw the sidebar, apply
    presenter mode. Widgets keep their own values (:mod:`ui.settings`)."""
    start_run(page)
    selection = draw_sidebar()
    write_to_url()  # uploads by name; now, as a page may stop early
    apply_presenter_style()
    return selection
