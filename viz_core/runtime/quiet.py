"""TensorFlow loaded without its start-up noise, for every program entry (the command line,
the dashboard, the benches).

TensorFlow 2.21 writes its C++ start-up messages (absl's "All log messages before
absl::InitializeLog()...", oneDNN, CUDA) straight to file descriptor 2 whatever
``TF_CPP_MIN_LOG_LEVEL`` says, so the descriptor points at /dev/null while it loads.
"""
from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def stderr_silenced(silenced: bool = True) -> Iterator[None]:
    """File descriptor 2 points at /dev/null inside the block: libraries' C++ cores
    (TensorFlow's, Ray's) write there whatever Python's logging says.

    The descriptor is the process's: in a server, another thread's line written meanwhile is
    lost too.
    """
    if not silenced:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow once with file descriptor 2 silenced (about two seconds, once per
    process); nothing if it is loaded."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    with stderr_silenced():
        import tensorflow  # noqa: F401


def quiet_library_logs() -> None:
    """TensorFlow's, Keras', absl's and h5py's Python loggers report errors only."""
    for name in ("tensorflow", "keras", "absl", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # absl comes with TensorFlow; nothing to quiet without it
        pass
