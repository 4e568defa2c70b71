"""viz_core: compute what a convolutional network sees; no Streamlit here.

The dashboard (``app.py`` and ``pages/``), the command line (``python -m viz_core``),
the tests and the benchmarks all call this package. Notebooks and scripts use its public
API (:mod:`viz_core.api`)::

    import viz_core as vc

    model = vc.load_model("demo")            # a built-in name, a .keras/.h5 file or a keras.Model
    result = vc.explain(model, "cat.png")    # .map, .class_index, .label, .method, .layer

The names below are imported on first use, so ``import viz_core`` (and the command line's
``--help``) loads neither TensorFlow nor NumPy.
"""
from __future__ import annotations

import importlib

# public name -> module that defines it
_PUBLIC = {
    "load_model": "viz_core.api",
    "load_image": "viz_core.api",
    "explain": "viz_core.api",
    "feature_maps": "viz_core.api",
    "filter_patterns": "viz_core.api",
    "lime": "viz_core.api",
    "evaluate": "viz_core.api",
    "atlas": "viz_core.api",
    "unit": "viz_core.api",
    "Atlas": "viz_core.api",
    "concepts": "viz_core.api",
    "Concepts": "viz_core.api",
    "tcav": "viz_core.api",
    "Tcav": "viz_core.api",
    "Explanation": "viz_core.api",
    "Explanations": "viz_core.api",
    "show": "viz_core.notebook",
    "VizError": "viz_core.errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value  # looked up once
        return value
    raise AttributeError(f"module 'viz_core' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
