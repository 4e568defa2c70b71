"""Presenter mode: large type for a projector, colour-blind-safe colour maps, short error
messages, and the demo model's results computed ahead so a class demo never waits (every
page's defaults for every sample scene, Compare and Sanity last; see viz_core.runtime.warmup)."""
from __future__ import annotations

import atexit
import threading

import streamlit as st

from viz_core.runtime.warmup import warm_up

from .state import workbench

PRESENTER_KEY = "presenter"
#: How much larger presenter mode draws everything: the root font size below, and the explicit
#: font sizes of charts (ui.charts), which do not follow the root.
PRESENTER_SCALE = 1.25
# Perceptually uniform maps that stay readable with the common colour-vision deficiencies.
SAFE_COLORMAPS = ("viridis", "cividis", "magma", "inferno", "plasma", "gray")

_LARGE_TYPE = """
<style>
/* Streamlit sizes its type, spacing and widgets in rem: a larger root scales all of it
   together (setting font sizes on its elements instead shrank titles and metric values). */
html { font-size: 125%; }
/* page links at the usual size (0.7 x 125% = 14 px), so all of them fit in one row at
   1280 px instead of the last ones going into a "more" menu */
[data-testid="stTopNavLink"] * { font-size: 0.7rem; }
/* that alone left "Sanity check" and "Dataset" in a "2 more" menu beside the sidebar at
   1280 px: on screens that narrow the links also drop their icons and some padding */
@media (max-width: 1500px) {
  [data-testid="stTopNavLink"] > span:has([data-testid="stIconMaterial"]) { display: none; }
  [data-testid="stTopNavLink"] { padding-left: 0.4rem; padding-right: 0.4rem; }
}
/* metric values a little smaller than 1.25x, so "150×150×3" fits a third of a column */
[data-testid="stMetricValue"] { font-size: 1.6rem; }
/* less empty space above the title (Streamlit leaves 6rem for its header, 120 px here, where
   the top bar needs about 60: 60 px here), so a page's first picture starts on a 1280x720
   screen */
[data-testid="stMainBlockContainer"] { padding-top: 3rem; }
/* and above the title's own text (1.25rem), which the larger type makes 25 px */
[data-testid="stMainBlockContainer"] h1 { padding-top: 0.25rem; padding-bottom: 0; }
/* the space between elements and inside folded boxes at the usual size, not 1.25x: with the
   title, the introduction, the note and the folded controls the first picture starts above
   360 px on a 1280x720 projector */
[data-testid="stMain"] [data-testid="stVerticalBlock"] { gap: 0.6rem; }
[data-testid="stMain"] [data-testid="stExpander"] summary { padding-top: 0.4rem;
                                                            padding-bottom: 0.4rem; }
</style>
"""


def presenter_on() -> bool:
    return bool(st.session_state.get(PRESENTER_KEY, False))


def controls(label: str, *, normal: str = "box", into=None, beside: bool = False):
    """Where a page puts its controls.

    Outside presenter mode the page looks as it always did: ``normal`` is ``"box"`` (a bordered
    box), ``"plain"`` (an invisible container, for controls that were not boxed),
    ``"expander"`` (an expander titled ``label``, open) or ``"folded"`` (the same, collapsed:
    controls that would push the picture down, issue 28). In presenter mode they are a collapsed
    expander titled ``label``, so the page's picture starts on the first screen of a 1280x720
    projector instead of below a screen and a half of widgets (the widgets keep working and
    keep their values while collapsed); ``into`` (an earlier ``controls(...)`` of the page)
    puts them in that expander instead of a second one.
    Controls ``beside`` the picture they shape (a column next to it) stay open in presenter
    mode too: they do not push the picture down.
    Use as ``with controls("Class and method"):`` or ``controls("Display").columns(4)``.
    """
    if normal not in ("box", "plain", "expander", "folded"):
        raise ValueError(f"normal must be 'box', 'plain', 'expander' or 'folded', not "
                         f"{normal!r}")
    if presenter_on() and not beside:
        if into is not None:
            return into
        return st.expander(label, expanded=False, icon=":material/tune:")
    if normal in ("expander", "folded"):
        return st.expander(label, expanded=normal == "expander", icon=":material/tune:")
    return st.container(border=normal == "box")


def control_columns(where, count: int, *, widest: int = 3) -> list:
    """``count`` columns for a row of controls in ``where`` (a container, or ``st``).

    Outside presenter mode one row, as ``where.columns(count)``; in presenter mode's larger
    type rows of at most ``widest`` (the last row keeps the same widths), as four or five side
    by side cut their labels at 1280 px ("Also agains...").
    """
    if not presenter_on() or count <= widest:
        return list(where.columns(count))
    columns = []
    while len(columns) < count:
        columns += where.columns(widest)
    return columns[:count]


def colormap_choices(all_maps) -> tuple[str, ...]:
    """The colour maps to offer: only colour-blind-safe ones in presenter mode (viridis first)."""
    if presenter_on():
        return tuple(m for m in SAFE_COLORMAPS if m in all_maps)
    return tuple(all_maps)


class _Preparation:
    """The background thread that prepares the demo results (one per server process)."""

    def __init__(self, bench):
        self.done = 0
        self.fraction = 0.0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(bench,), daemon=True,
                                       name="presenter-warm-up")
        self.thread.start()
        # Stop between two steps (or inside a long one) when the process exits: a daemon
        # thread killed inside TensorFlow aborts the interpreter ("terminate called ...
        # exception not rethrown").
        atexit.register(self.stop)

    def _run(self, bench) -> None:
        def progress(fraction: float, message: str) -> None:
            self.fraction = fraction

        self.done = warm_up(bench, progress=progress, should_stop=self.stopping.is_set)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=60)


@st.cache_resource(show_spinner=False)
def _preparation() -> _Preparation:
    return _Preparation(workbench())


def apply_presenter_style() -> None:
    """Large type and ahead-of-time demo results while presenter mode is on."""
    if presenter_on():
        st.html(_LARGE_TYPE)
        if _preparation().thread.is_alive():
            with st.sidebar:
                _preparation_progress()


@st.fragment(run_every=2)
def _preparation_progress() -> None:
    """The warm-up's progress, redrawn every 2 s on its own (not only when something is
    clicked); nothing once it is done."""
    preparation = _preparation()
    if preparation.thread.is_alive():
        st.caption(f"Preparing the demo pictures… {preparation.fraction:.0%}")
