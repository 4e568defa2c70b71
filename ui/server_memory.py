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

A value the environment sets (``TF_ONEDNN_USE_SYSTEM_ALLOCATOR``, ``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``) is kept. Outside glibc only the first applies.
"""
from __future__ import annotations

import ctypes
import os

TENSORS_FROM_MALLOC = ("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")
# glibc's mallopt parameters (malloc.h) and their environment variables
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
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
        environment had its own value, or this is not glibc).
    """
    name, value = TENSORS_FROM_MALLOC
    applied = {name: name not in os.environ}
    os.environ.setdefault(name, value)
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        mallopt = None
    for param, env, value in MALLOC_SETTINGS:
        applied[env] = bool(mallopt and env not in os.environ and mallopt(param, value) == 1)
    return applied
