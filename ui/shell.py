"""The parts of the app shell every run needs: URL state in, sidebar, presenter style."""
from __future__ import annotations

from .presenter import apply_presenter_style
from .settings import keep_page_settings
from .share import restore_from_url
from .sidebar import draw_sidebar
from .state import Selection


def draw_shell() -> Selection:
    """Restore the view from the URL (first run), keep the pages' settings, draw the sidebar,
    apply presenter mode."""
    restore_from_url()
    keep_page_settings()
    selection = draw_sidebar()
    apply_presenter_style()
    return selection
