"""Shareable state: the view lives in the URL, so opening a link restores it.

The URL's query parameters are named after the widgets' keys (``?model=demo&image=circle&
cam_method=gradcam``); the page is the URL path (``/heatmaps``), which ``st.navigation``
already restores. On a session's first run the parameters seed the widgets' session state;
at the end of every run the URL is rewritten from the widgets that were drawn. A value that
no longer fits a widget (an unknown layer, say) is ignored by Streamlit and the widget keeps
its default.
"""
from __future__ import annotations

from typing import Callable

import streamlit as st

from viz_core.errors import ParameterError
from viz_core.runtime.limits import COMPACTNESS, Bound

from .sidebar import DATASET_CHOICE, DATASET_IMAGE_KEY, uploaded_name

RESTORED_KEY = "_url_restored"


def _flag(text: str) -> bool:
    return text.lower() in ("1", "true", "yes", "on")


def _unit(text: str) -> float:
    return min(1.0, max(0.0, float(text)))


def _class_index(text: str) -> int:
    return int(text)


def _within(low, high, kind=int):
    """A parser for a slider's value: ``kind(text)`` clamped to the slider's range."""
    def parse(text: str):
        value = kind(text)
        if value != value:  # nan
            raise ValueError(text)
        return min(high, max(low, value))
    return parse


def _bounded(bound: Bound, low: float, high: float):
    """A slider's value: refused (so ignored) outside ``bound``, the range the backend and the
    command line check (``?lime_compactness=0`` is refused there too), then clamped to the
    slider's range."""
    def parse(text: str) -> float:
        try:
            value = bound.check(float(text))
        except ParameterError:
            raise ValueError(text) from None
        return min(high, max(low, value))
    return parse


def _one_of(*choices):
    """A parser for a select slider: a value not among its choices is ignored."""
    def parse(text: str) -> int:
        value = int(text)
        if value not in choices:
            raise ValueError(text)
        return value
    return parse


# widget key -> how to read its value back from the URL text
SHAREABLE: dict[str, Callable[[str], object]] = {
    "model": str,
    "weights": str,
    "image": str,
    "second": str,
    "presenter": _flag,
    "fm_block": str,  # before its layer: a layer outside the block would be reset
    "fm_layer": str,
    "fm_cmap": str,
    "fm_per_row": _within(4, 32),
    "fm_scale": str,
    "fm_sort": str,
    "fp_layer": str,
    "fp_method": str,
    "cam_class": _class_index,
    "cam_class_2": _class_index,
    "cam_method": str,
    "cam_layer": str,
    "cam_colormap": str,
    "cam_opacity": _unit,
    "cam_threshold": _within(0.0, 0.95, float),
    "cam_score": str,
    "lime_class_1": _class_index,
    "lime_class_2": _class_index,
    # the ranges are those of the LIME page's sliders (pages/lime.py)
    "lime_algorithm": str,
    "lime_superpixels": _within(5, 150),
    "lime_compactness": _bounded(COMPACTNESS, 1.0, 100.0),
    "lime_hide": str,
    "lime_samples": _one_of(100, 250, 500, 1000, 2000),
    "lime_seed": _within(0, 2**31 - 1),
    "lime_stability": _flag,
    "lime_style": str,
    "lime_negative": _flag,
    "lime_rest": str,
    "cmp_class": _class_index,
    "cmp_baseline": str,
    "cmp_colormap": str,
    "cmp_opacity": _unit,
    "san_class": _class_index,
    "san_metric": str,
    "san_colormap": str,
    "ds_method": str,  # the Dataset page's heatmap method (unknown names fall to its default)
    # the Neuron atlas: its dataset, layer and ranking, and the unit whose card is open (the
    # ranges are those of pages/atlas.py; a unit the atlas does not have falls to the first)
    "atlas_source": str,
    "atlas_count": _one_of(24, 48, 96, 200),
    "atlas_layer": str,
    "atlas_k": _one_of(4, 6, 8, 12),
    "atlas_score": str,
    "atlas_sort": str,
    "atlas_class": str,
    "atlas_unit": _within(0, 65535),
}


# An upload cannot travel in a link, its name can: ``?model=upload&model_name=cats.h5`` opens
# a page that asks for that file (:func:`ui.page.needs_text`) and keeps the rest of the view.
UPLOAD_NAMES = {"model": "model_name", "image": "image_name", "second": "second_name"}
UPLOADERS = {"model": "model_file", "image": "image_file", "second": "second_file"}
MAX_NAME = 200  # characters of a file name kept from a link


def restore_from_url() -> dict[str, object]:
    """On the session's first run, copy known URL parameters into session state.

    Returns the values restored (empty after the first run), so pages can prefer them over
    their own first-run defaults.
    """
    if st.session_state.get(RESTORED_KEY):
        return {}
    st.session_state[RESTORED_KEY] = True
    restored = {}
    for key, parse in SHAREABLE.items():
        text = st.query_params.get(key)
        if text is None:
            continue
        try:
            restored[key] = parse(text)
        except ValueError:
            continue
        st.session_state[key] = restored[key]
    for name in UPLOAD_NAMES.values():  # kept aside: no widget has these keys
        text = st.query_params.get(name)
        if text and text.strip():
            restored[name] = text.strip()[:MAX_NAME]
    st.session_state["_url_values"] = restored
    return restored


def url_value(key: str):
    """The value the URL asked for ``key`` when the session opened (or None)."""
    return (st.session_state.get("_url_values") or {}).get(key)


def upload_name(choice: str) -> str | None:
    """The name of the file uploaded for ``choice`` (model, image, second), else the one the
    session's link named (so a link stays whole until the file is uploaded), else None."""
    return uploaded_name(UPLOADERS[choice]) or url_value(UPLOAD_NAMES[choice])


def opened_from_dataset() -> str | None:
    """The path of the image the Dataset page opened in the other pages, if any."""
    opened = st.session_state.get(DATASET_IMAGE_KEY)
    return opened[0] if opened else None


def write_to_url() -> None:
    """Mirror the shareable widgets drawn in this run into the URL's query parameters; an
    upload is named (``model=upload&model_name=cats.h5``), as its bytes cannot travel."""
    values = {}
    for key in SHAREABLE:
        if key in st.session_state and st.session_state[key] is not None:
            value = st.session_state[key]
            if key == "second" and value == "none":
                continue
            if key == "image" and value == DATASET_CHOICE and opened_from_dataset():
                # another session has not this dataset: its link asks for the file by name
                value = "upload"
                values[UPLOAD_NAMES[key]] = opened_from_dataset()
            values[key] = str(int(value)) if isinstance(value, bool) else str(value)
            if key in UPLOAD_NAMES and value == "upload" and upload_name(key):
                values.setdefault(UPLOAD_NAMES[key], upload_name(key))
    current = {k: st.query_params.get(k) for k in st.query_params}
    if current != values:
        st.query_params.from_dict(values)
