"""Errors and progress, the Streamlit way."""
from __future__ import annotations

import time

import streamlit as st

from viz_core.errors import VizError


def show_error(exc: VizError, where=st) -> None:
    """A domain error as a red box with the message only (never a traceback)."""
    where.error(str(exc), icon=":material/error:")


class ProgressBar:
    """A ``progress(fraction, message)`` callback that drives ``st.progress`` and estimates
    the time left from the pace so far."""

    def __init__(self, label: str):
        self.label = label
        self.bar = st.progress(0.0, text=label)
        self.start = time.monotonic()

    def __call__(self, fraction: float, message: str = "") -> None:
        fraction = max(0.0, min(1.0, float(fraction)))
        elapsed = time.monotonic() - self.start
        eta = ""
        if 0.02 < fraction < 1.0 and elapsed > 1.0:
            left = elapsed * (1.0 - fraction) / fraction
            eta = f" · about {left:.0f} s left"
        self.bar.progress(fraction, text=f"{self.label}: {message}{eta}")

    def done(self) -> None:
        self.bar.empty()
