"""viz_core: compute what a convolutional network sees; no Streamlit here.

The dashboard (``app.py`` and ``pages/``), the command line (``python -m viz_core``),
the tests and the benchmarks all call this package.
"""
