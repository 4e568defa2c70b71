"""The "Export bundle" button: a ZIP with the view's pictures, parameters and command."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import streamlit as st

from viz_core.bundle import export_bundle
from viz_core.catalog import LoadedModel
from viz_core.intake import LoadedImage

from .sidebar import MODEL_FILE_KEY, MODEL_LABELS_KEY, class_names
from .state import workbench


LABELS_FILE = "model/labels.txt"


def _uploaded_model_name() -> str:
    """Where an uploaded model goes in a bundle: ``model/model.keras`` or ``model/model.h5``."""
    file = st.session_state.get(MODEL_FILE_KEY)
    suffix = Path(file.name).suffix.lower() if file is not None else ".keras"
    return f"model/model{suffix}"


def _uploaded_labels() -> list[str]:
    return class_names(st.session_state.get(MODEL_LABELS_KEY) or "")


def model_options(model: LoadedModel) -> list[str]:
    """``--model ...`` options that name this model on the command line (an uploaded model
    by its copy in the bundle, see :func:`bundle_button`)."""
    if model.name == "upload":
        options = ["--model", _uploaded_model_name(), "--preprocess", model.preprocessing]
        if _uploaded_labels():
            options += ["--labels", LABELS_FILE]
        return options
    options = ["--model", model.name]
    if model.name != "demo":
        options += ["--weights", model.weights]
    return options


def _model_files(options: Sequence[str]) -> dict[str, bytes]:
    """The uploaded model (and its class names) when ``options`` name them; read only when a
    bundle is made, since a model file can be hundreds of megabytes."""
    files = {}
    file = st.session_state.get(MODEL_FILE_KEY)
    if file is not None and _uploaded_model_name() in options:
        files[_uploaded_model_name()] = file.getvalue()
    if LABELS_FILE in options:
        files[LABELS_FILE] = "".join(f"{name}\n" for name in _uploaded_labels()).encode("utf-8")
    return files


def bundle_button(command: str, options: Sequence[str], images: Sequence[LoadedImage],
                  parameters: dict, *, key: str, where=st) -> None:
    """Draw the download button; the bundle is made only when it is clicked."""
    bench = workbench()
    where.download_button(
        "Export bundle", data=lambda: export_bundle(command, list(options), list(images),
                                                    parameters, bench=bench,
                                                    files=_model_files(options)),
        file_name=f"cnn_explorer_{command}.zip", mime="application/zip", key=key,
        icon=":material/archive:", on_click="ignore",
        help="A ZIP with every picture of this view, its parameters, and the "
             "python -m viz_core command that makes them again (with a copy of an "
             "uploaded model).")
