"""The "Export bundle" button: a ZIP with the view's pictures, parameters and command."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import streamlit as st

from viz_core.cli.bundle import export_bundle
from viz_core.models.catalog import LoadedModel
from viz_core.inputs.intake import LoadedImage

from .feedback import download_data
from .sidebar import MODEL_FILE_KEY, MODEL_LABELS_KEY, class_names
from .state import workbench


LABELS_FILE = "model/labels.txt"


def _uploaded_model_name(file=None) -> str:
    """Where an uploaded model goes in a bundle: ``model/model.keras`` or ``model/model.h5``."""
    file = st.session_state.get(MODEL_FILE_KEY) if file is None else file
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
    if model.weights in ("imagenet", "none"):  # the bundled models' weights are in their files
        options += ["--weights", model.weights]
    return options


def _model_files(options: Sequence[str]):
    """A callable giving the uploaded model (and its class names) when ``options`` name them.

    The upload and the names are taken from the session now, in the page's run: the download
    runs later in a server thread that has no session. The model's bytes are read only when
    the bundle is made, since a model file can be hundreds of megabytes.
    """
    file = st.session_state.get(MODEL_FILE_KEY)
    model_name = _uploaded_model_name(file)
    labels = _uploaded_labels()
    wants_model = file is not None and model_name in options
    wants_labels = LABELS_FILE in options

    def files() -> dict[str, bytes]:
        found = {}
        if wants_model:
            found[model_name] = file.getvalue()
        if wants_labels:
            found[LABELS_FILE] = "".join(f"{name}\n" for name in labels).encode("utf-8")
        return found

    return files


def bundle_button(command: str, options: Sequence[str], images: Sequence[LoadedImage],
                  parameters: dict, *, key: str, where=st,
                  extra_files: Callable[[], dict[str, bytes]] | None = None,
                  help: str | None = None) -> None:
    """Draw the download button; the bundle is made only when it is clicked.

    ``extra_files`` (called when the bundle is made) gives more files the command reads, by
    their path in the bundle (an uploaded dataset ZIP, image sets); an uploaded model named by
    ``options`` is always copied. The bundle is made in a server thread, outside the page's
    run: whatever goes wrong there (including a ``SystemExit``) is caught by
    :func:`ui.feedback.download_data`, logged, and said next to the button on the page's next
    run; the browser shows "Failed to generate file".
    """
    bench = workbench()
    model_files = _model_files(options)  # an uploaded model, taken from the session now
    options, images = list(options), list(images)

    def files() -> dict[str, bytes]:
        found = model_files()
        if extra_files is not None:
            found.update(extra_files())
        return found

    make = download_data(lambda: export_bundle(command, options, images, parameters,
                                               bench=bench, files=files()),
                         what="The export bundle", key=key, where=where)
    where.download_button(
        "Export bundle", data=make,
        file_name=f"cnn_explorer_{command}.zip", mime="application/zip", key=key,
        icon=":material/archive:", on_click="ignore",
        help=help or "A ZIP with every picture of this view, its parameters, and the "
                     "python -m viz_core command that makes them again (with a copy of an "
                     "uploaded model).")
