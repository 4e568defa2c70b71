"""What Streamlit does after every script run, made affordable for a TensorFlow server.

Streamlit's script runner ends every run of every session by calling
``keras.backend.clear_session()`` (``_clean_problem_modules`` in
``streamlit.runtime.scriptrunner.script_runner``), for apps that build a new Keras model in each
run. This app builds each model once and shares it between sessions (``viz_core.runtime.workbench``),
so the reset only costs. With TensorFlow it clears the whole process's eager kernel cache and
runs a full garbage collection, on every rerun of every student's page, and also while other
sessions' jobs are computing. A page visit whose results were already cached spent most of its
CPU there, and the next TensorFlow call rebuilt the kernels.

Streamlit also runs a full garbage collection after every run (``runner.postScriptGC``), to
keep memory down. With TensorFlow, Keras, plotly and scikit-image imported that is about 450,000
objects to traverse, 0.3-1.7 s of CPU per page visit depending on the machine's load: once the
Keras reset was gone it was half of the server's CPU in a class. Nearly all of those objects are
modules, functions and classes that live as long as the process, so after a run that imported
new modules they are frozen (:func:`gc.freeze`, made for this): the collector skips them and
Streamlit's collection covers only what the runs made. Reference counting still frees frozen
objects; only a cycle among them would wait for the idle trim (``ui.idle.release_memory``),
which unfreezes, collects everything and freezes again.

Measured on the classroom bench (py-spy over one student visiting every page with six images,
server CPU per page visit, the same machine under the same load): 0.83-1.06 s before; 0.45-0.51 s
without the Keras reset and the file watcher (which ``.streamlit/config.toml`` turns off);
0.14 s with the imports frozen as well. The page's wall time went from 2.6-3.0 s to 0.15-0.29 s.

Even on the runs' own objects a full collection holds the GIL, so every other session waits for
it: with a class of 25 and 5 heavy jobs, Streamlit's collection after each run was 30% of the
time any thread held the GIL (py-spy ``--gil``), the largest single share. So
``.streamlit/config.toml`` turns ``runner.postScriptGC`` off, and the hook here collects after a
run only when :data:`COLLECT_EVERY_S` have passed since the last collection (or when new modules
were imported, just before freezing them): one user alone still gets a collection after a
visit, a class gets one every few seconds instead of several per second. Python's own
generational collection runs as always, and the idle trim collects everything once a class
has gone.

:func:`keep_keras_state` puts a hook in place that does the rest of Streamlit's clean-up (closing
matplotlib figures), collects and freezes as above and leaves Keras alone. It is idempotent. If
a later Streamlit renames the hook, nothing is patched and a warning is logged once per process.
"""
from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from typing import Any

LOG = logging.getLogger("cnn_explorer")
HOOK = "_clean_problem_modules"
STREAMLIT_HOOK = "_cnn_explorer_streamlit_hook"  # where the replaced original is kept
_MARK = "_cnn_explorer_keeps_keras"


def _close_matplotlib_figures() -> None:
    """Streamlit's clean-up without the Keras reset: close pyplot's figures if it is loaded."""
    plt: Any = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        try:
            plt.close("all")
        except Exception:  # noqa: BLE001 - as Streamlit's own hook: never fail a run here
            LOG.debug("could not close matplotlib figures", exc_info=True)


COLLECT_EVERY_S = 5.0  # the least time between two post-run full collections, process-wide


class _Tidy:
    """When the collector last ran after a run, and how many modules were loaded when it last
    froze the live objects.

    Process-wide by nature (there is one collector); a lock because sessions' runs end in their
    own threads."""

    lock = threading.Lock()
    modules = 0
    collected = float("-inf")  # time.monotonic() of the last post-run collection


def tidy_after_run(now: float | None = None) -> str:
    """Collect garbage after a run if :data:`COLLECT_EVERY_S` have passed since the last
    collection, and freeze the live objects after a run that imported modules.

    A freeze follows a collection, so what is frozen is alive. A process imports a bounded set
    of modules, so a freeze happens a handful of times (first run, first visit of each kind of
    page), not per run.

    Parameters
    ----------
    now : float, optional
        ``time.monotonic()`` (default: read here).

    Returns
    -------
    str
        ``"froze"`` (collected, then froze), ``"collected"`` or ``"skipped"``.
    """
    now = time.monotonic() if now is None else now
    with _Tidy.lock:
        loaded = len(sys.modules)
        imported = loaded > _Tidy.modules
        if not imported and now - _Tidy.collected < COLLECT_EVERY_S:
            return "skipped"
        gc.collect()
        _Tidy.collected = now
        if not imported:
            return "collected"
        gc.freeze()
        _Tidy.modules = loaded
        return "froze"


def collect_everything() -> None:
    """A full collection that includes the frozen objects: unfrozen for this one collection,
    the survivors frozen again (what the idle trim runs once a class has gone)."""
    with _Tidy.lock:
        frozen = gc.get_freeze_count() > 0
        if frozen:
            gc.unfreeze()
        gc.collect()
        if frozen:
            gc.freeze()
        _Tidy.collected = time.monotonic()


def _after_run() -> None:
    """Streamlit's clean-up without the Keras reset; in a server, a collection now and then
    and new imports frozen.

    Not under ``AppTest``, whose runtime is a mock: the test process holds other tests' models,
    which a freeze would keep from the collector for the rest of the test session."""
    from streamlit import runtime

    _close_matplotlib_figures()
    if runtime.exists() and type(runtime.get_instance()) is runtime.Runtime:
        tidy_after_run()


setattr(_after_run, _MARK, True)


def keep_keras_state() -> bool:
    """Replace Streamlit's end-of-run clean-up with one that leaves Keras alone.

    Returns
    -------
    bool
        True when the hook is (now or already) replaced, False when this Streamlit has no such
        hook, in which case nothing was changed.
    """
    from streamlit.runtime.scriptrunner import script_runner

    current = getattr(script_runner, HOOK, None)
    if current is None:
        if not getattr(script_runner, _MARK, False):
            LOG.warning("Streamlit has no %s hook any more: Keras state may be reset after "
                        "each run", HOOK)
            setattr(script_runner, _MARK, True)
        return False
    if not getattr(current, _MARK, False):
        setattr(script_runner, STREAMLIT_HOOK, current)
        setattr(script_runner, HOOK, _after_run)
    return True
