"""Give memory back when nobody uses the dashboard: the workbench's caches are emptied after a
quiet spell.

The workbench is shared by every session of the server (``ui.state.workbench``); its caches
are bounded (hundreds of MB of results, a few models) but never shrink on their own, so after
a burst of sessions the server kept their results for good. :class:`IdleTrim` watches the
caches' own hit and miss counters (every script run reads a model and an image through them);
when they have not moved for :data:`IDLE_SECONDS`, it empties the in-memory caches (the disk
cache of filter patterns stays), runs what else it was given to let go (the server renews its
job queue's worker threads, and with them TensorFlow's kernels kept per thread), collects
garbage and hands freed heap pages back to the system. The next visitor's first run reloads
the model and recomputes what it shows.
"""
from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import threading
import time
import tracemalloc
import weakref
from typing import Callable, Sequence

from ui.script_runs import collect_everything
from ui.server_memory import huge_pages_off
from viz_core.runtime.workbench import Workbench

IDLE_SECONDS = 60.0  # longer than server.disconnectedSessionTTL, so closed sessions are gone
CHECK_SECONDS = 10.0
#: When set, a file that gets one JSON line per trim: the memory before and after (benches read
#: it to tell what held the memory; nothing is written otherwise).
REPORT_ENV = "CNN_VIZ_TRIM_REPORT"


def _activity(bench: Workbench) -> tuple[int, ...]:
    """A value that changes whenever any session reads or fills a cache."""
    caches = (bench.models, bench.images, bench.results)
    return tuple(n for c in caches for n in (c.stats.hits, c.stats.misses, len(c)))


def release_memory() -> None:
    """Collect garbage, then return free heap pages to the system (glibc; elsewhere a no-op).

    Objects frozen by ``ui.script_runs`` (what imports made) are collected too
    (:func:`ui.script_runs.collect_everything`)."""
    collect_everything()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def resident_mb() -> float | None:
    """This process's resident memory (MB), from ``/proc`` (None where there is none)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (2.33+): sizes in bytes, summed over every malloc arena."""
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def malloc_mb() -> dict[str, float] | None:
    """What glibc's malloc holds (MB, all arenas; None without glibc 2.33+).

    ``heap``: arena bytes from the system (sbrk and arena heaps), ``in_use`` and ``free`` of it
    (free chunks a trim can hand back only as whole pages: fragmentation), ``top_free`` (the
    free top of the main heap), ``mmapped``: large blocks mapped one by one (returned on free).
    """
    try:
        fn = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2
    info = fn()
    mb = {"heap": info.arena, "in_use": info.uordblks, "free": info.fordblks,
          "top_free": info.keepcost, "mmapped": info.hblkhd}
    return {k: round(v / 2**20, 1) for k, v in mb.items()}


def smaps_mb() -> dict[str, float] | None:
    """Resident memory by kind (MB) from ``/proc/self/smaps_rollup`` (None where there is none):
    ``rss``, ``anonymous`` (heap, stacks, mappings of the process's own) and ``file`` (pages of
    mapped files: libraries' code, which the kernel may drop and read again)."""
    fields = {}
    try:
        with open("/proc/self/smaps_rollup") as fh:
            for line in fh:
                name, _, rest = line.partition(":")
                if rest.strip().endswith("kB"):
                    fields[name] = int(rest.split()[0]) / 1024
    except OSError:
        return None
    rss, anon = fields.get("Rss", 0.0), fields.get("Anonymous", 0.0)
    return {"rss": round(rss, 1), "anonymous": round(anon, 1), "file": round(rss - anon, 1)}


def _native_threads() -> int | None:
    """Threads of the process, TensorFlow's own included (``threading`` counts Python's)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _sessions() -> int | None:
    """Sessions the Streamlit server holds (connected or not yet dropped); None outside one."""
    try:
        from streamlit import runtime

        return runtime.get_instance()._session_mgr.num_sessions() if runtime.exists() else None
    except Exception:  # a private attribute of Streamlit's: a report does without it
        return None


def _media_files() -> list[int] | None:
    """Pictures and downloads Streamlit holds for the browsers: [files, bytes]; None outside a
    server. A download is kept one clean-up longer than the session that showed it."""
    try:
        from streamlit import runtime

        if not runtime.exists():
            return None
        files = dict(runtime.get_instance().media_file_mgr._storage._files_by_id)
        return [len(files), sum(len(f.content) for f in files.values())]
    except Exception:  # private attributes of Streamlit's: a report does without them
        return None


def _tf_functions() -> int | None:
    """Functions (traced graphs) TensorFlow's eager context holds; None before TF is imported.
    A model's compiled steps go with it; a count that grows class after class would not."""
    if "tensorflow" not in sys.modules:
        return None
    try:
        from tensorflow.python.eager import context

        return len(context.context().list_function_names())
    except Exception:  # a private module of TensorFlow's: a report does without it
        return None


def memory_report(bench: Workbench, *, top: int = 8) -> dict:
    """What holds memory now: resident MB (and by kind: :func:`smaps_mb`), malloc's heap
    (:func:`malloc_mb`), whether huge pages are off (``ui.server_memory``), the caches' entries
    and bytes, threads, sessions and Python objects
    (those the collector tracks, and those frozen apart), and (when :mod:`tracemalloc` traces)
    the largest allocation sites."""
    report = {
        "rss_mb": resident_mb(),
        "results": [len(bench.results), bench.results.total_bytes],
        "images": [len(bench.images), bench.images.total_bytes],
        "models": len(bench.models),
        "threads": threading.active_count(),
        "native_threads": _native_threads(),
        "sessions": _sessions(),
        "tf_functions": _tf_functions(),
        "media_files": _media_files(),
        "smaps_mb": smaps_mb(),
        "malloc_mb": malloc_mb(),
        "huge_pages_off": huge_pages_off(),  # khugepaged refills trimmed pages otherwise
        "python_objects": len(gc.get_objects()),
        "frozen_objects": gc.get_freeze_count(),  # what imports made (ui.script_runs)
    }
    if tracemalloc.is_tracing():
        current, peak = tracemalloc.get_traced_memory()
        report["traced_mb"] = round(current / 2**20, 1)
        report["top"] = [f"{stat.size / 2**20:.1f} MB {stat.traceback[0]}" for stat in
                         tracemalloc.take_snapshot().statistics("lineno")[:top]]
    return report


def trim(bench: Workbench, also: Sequence[Callable[[], object]] = ()) -> int:
    """Empty the in-memory caches of ``bench``, call each of ``also``, then give the freed
    memory back (:func:`release_memory`); returns the bytes of results dropped."""
    dropped = bench.results.total_bytes + bench.images.total_bytes
    for cache in (bench.results, bench.images, bench.models):
        cache.clear()
    for let_go in also:
        let_go()
    release_memory()
    return dropped


class IdleTrim:
    """A daemon thread that trims ``bench`` once it has been idle for ``idle`` seconds.

    ``also``: more to let go at each trim (:func:`trim`), such as
    :meth:`viz_core.runtime.jobs.JobQueue.renew_workers`. It holds the workbench weakly and
    ends when the workbench is gone (``workbench.clear()``).
    """

    def __init__(self, bench: Workbench, *, idle: float = IDLE_SECONDS,
                 check: float = CHECK_SECONDS, also: Sequence[Callable[[], object]] = ()):
        self._bench = weakref.ref(bench)
        self._also = tuple(also)
        self.idle = float(idle)
        self.check = float(check)
        self.trims = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="workbench-idle-trim",
                                        daemon=True)

    def start(self) -> "IdleTrim":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        last, quiet, trimmed = None, 0.0, False
        while not self._stop.wait(self.check):
            bench = self._bench()
            if bench is None:
                return
            now = _activity(bench)
            if now != last:
                last, quiet, trimmed = now, 0.0, False
            else:
                quiet += self.check
            if quiet >= self.idle and not trimmed:
                path = os.environ.get(REPORT_ENV)
                before = memory_report(bench) if path else None
                trim(bench, self._also)
                if path:
                    _append(path, {"time": time.time(), "before": before,
                                   "after": memory_report(bench)})
                self.trims += 1
                trimmed = True
                last = _activity(bench)  # clearing changed the sizes; that is not activity
            del bench


def _append(path: str, record: dict) -> None:
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
    except OSError:
        pass  # a report is a bench's aid; the trim itself happened
