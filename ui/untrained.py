"""One line beside a prediction or a map of a model with random weights, on every page that
shows one: its answers and maps carry no learned evidence, and a reader must not take them for
a trained model's."""
from __future__ import annotations

import streamlit as st

from viz_core.models.catalog import BUILTIN_NAMES, LoadedModel, builtin

from .text import literal


def untrained_text(model: LoadedModel) -> str | None:
    """The line for ``model``, or None when its weights were learned (or bundled, uploaded)."""
    if model is None or model.weights != "none":
        return None
    name = builtin(model.name).title if model.name in BUILTIN_NAMES else model.title
    return (f":material/casino: **{literal(name)} has random weights (untrained)**: its "
            "predictions and maps show no learned evidence.")


def say_if_untrained(model: LoadedModel, where=None) -> None:
    """Draw :func:`untrained_text` in ``where`` (a container; here by default), if any."""
    text = untrained_text(model)
    if text is not None:
        (where or st).caption(text)
