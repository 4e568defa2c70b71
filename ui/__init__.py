"""Streamlit glue shared by ``app.py`` and the pages: the sidebar, the session's selection,
errors and progress bars. Computation stays in :mod:`viz_core`."""
