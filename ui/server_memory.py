"""How the dashboard's process takes memory, set by ``app.py`` before TensorFlow loads.

A class server runs all day, and its idle trim (:mod:`ui.idle`) hands free memory back to the
system. Two things kept memory it could not hand back, measured by ``bench allocator`` and
``bench class_day``:

- With oneDNN on (TensorFlow's default on x86), tensors of 4 KB and more come from oneDNN's
  pool, which grows in doubling regions and never shrinks: an idle class server held 254 MB of
  it. ``TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1`` takes them from malloc instead.
- Taken from glibc's malloc as it comes, that cost 14% more time: a tensor above its mmap
  threshold is mapped afresh (page faults) on every call, and a large free at the top of the
  heap gives pages back only to fault them in again. So malloc keeps large blocks in its heap
  (``M_MMAP_THRESHOLD`` 256 MB) and does not trim on a free (``M_TRIM_THRESHOLD`` 1 GB): a
  tensor reuses pages as it did in the pool (3% slower than the pool), and the idle trim gives
  them back when nobody uses the dashboard.
- Transparent huge pages undid the trim at rest. numpy asks for huge pages on every array of
  4 MB or more (``madvise``), and Linux's ``khugepaged`` later fills any 2 MB stretch of such a
  region where one 4 KB page is still in use back to a whole huge page, zeros and all: after a
  trim the server grew 16 MB every 10 s with no session and no job (a probe: 300 MB of
  arrays freed and trimmed, then refilled sparsely, went from +30 to +94 MB in 50 s, and stayed
  at +30 with huge pages off). So the process turns them off (``prctl(PR_SET_THP_DISABLE)``;
  its children inherit it); what a class server computes is not bound by the TLB.

A value the environment sets (``TF_ONEDNN_USE_SYSTEM_ALLOCATOR``, ``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``) is kept. Outside glibc only the first applies.
"""
from __future__ import annotations

import ctypes
import os

TENSORS_FROM_MALLOC = ("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")
# glibc's mallopt parameters (malloc.h) and their environment variables
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
PR_SET_THP_DISABLE, PR_GET_THP_DISABLE = 41, 42  # linux/prctl.h
NO_HUGE_PAGES = "PR_SET_THP_DISABLE"
MALLOC_SETTINGS = (
    (M_MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_", 256 * 2**20),
    (M_TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_", 2**30),
)


def take_memory_as_a_server() -> dict[str, bool]:
    """Apply the settings above to this process; call it before TensorFlow is imported (the
    allocator choice is read once, on TensorFlow's first tensor).

    Returns
    -------
    dict of str to bool
        Each setting's environment variable name and whether this call set it (False: the
        environment had its own value, or this is not glibc), and :data:`NO_HUGE_PAGES`: whether
        transparent huge pages are now off for this process (False outside Linux).
    """
    name, value = TENSORS_FROM_MALLOC
    applied = {name: name not in os.environ}
    os.environ.setdefault(name, value)
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt, prctl = libc.mallopt, libc.prctl
    except (OSError, AttributeError):
        mallopt = prctl = None
    for param, env, value in MALLOC_SETTINGS:
        applied[env] = bool(mallopt and env not in os.environ and mallopt(param, value) == 1)
    applied[NO_HUGE_PAGES] = bool(prctl and prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0)
    return applied


def huge_pages_off() -> bool | None:
    """Whether transparent huge pages are off for this process (None where Linux cannot say)."""
    try:
        prctl = ctypes.CDLL("libc.so.6").prctl
    except (OSError, AttributeError):
        return None
    state = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0)
    return None if state < 0 else state == 1
