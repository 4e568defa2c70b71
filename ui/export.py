"""The "Export bundle" button: a ZIP with the view's pictures, parameters and command."""
from __future__ import annotations

from typing import Sequence

import streamlit as st

from viz_core.bundle import export_bundle
from viz_core.catalog import LoadedModel
from viz_core.intake import LoadedImage

from .state import workbench


def model_options(model: LoadedModel) -> list[str]:
    """``--model ...`` options that name this model on the command line."""
    if model.name == "upload":
        # An uploaded model is not copied into the bundle: the command names a placeholder.
        return ["--model", "YOUR_MODEL.keras", "--preprocess", model.preprocessing]
    options = ["--model", model.name]
    if model.name != "demo":
        options += ["--weights", model.weights]
    return options


def bundle_button(command: str, options: Sequence[str], images: Sequence[LoadedImage],
                  parameters: dict, *, key: str, where=st) -> None:
    """Draw the download button; the bundle is made only when it is clicked."""
    bench = workbench()
    where.download_button(
        "Export bundle", data=lambda: export_bundle(command, list(options), list(images),
                                                    parameters, bench=bench),
        file_name=f"cnn_explorer_{command}.zip", mime="application/zip", key=key,
        icon=":material/archive:", on_click="ignore",
        help="A ZIP with every picture of this view, its parameters, and the "
             "python -m viz_core command that makes them again.")
