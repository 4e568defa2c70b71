"""Whether a Streamlit server runs this script, or AppTest's simulation of one (light: no
TensorFlow, so ``app.py`` may ask before anything heavy is imported)."""
from __future__ import annotations

import streamlit as st


def served() -> bool:
    """True under ``streamlit run``; False in AppTest's simulated runs, which have no timed
    fragment reruns (pages follow a job in their own run there) and share the test process
    (``app.py`` leaves its memory settings alone). AppTest marks its session with Streamlit's
    testing key (an internal, checked by ``tests/app/test_streamlit_internals.py``; if it
    moves, every run counts as served)."""
    try:
        from streamlit.runtime.state.common import TESTING_KEY
    except ImportError:  # pragma: no cover - a Streamlit without it: the served way
        return True
    return TESTING_KEY not in st.session_state
