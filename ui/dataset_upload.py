"""A ZIP of images uploaded for a dataset page (Dataset, Neuron atlas): listed once per upload.

A rerun (any click) reads the listing, or its refusal, back from the session instead of
parsing the archive again.
"""
from __future__ import annotations

import streamlit as st

from viz_core.dataset import readers
from viz_core.errors import VizError


def listed_upload(archive, labels_file, labels, state_key: str) -> readers.Dataset:
    """The dataset in ``archive`` (an uploaded ZIP) with ``labels_file`` (an uploaded CSV or
    None), matched to the model's ``labels``; kept under ``state_key`` for this upload.

    Raises
    ------
    VizError
        The archive or CSV was refused (the same refusal on every rerun).
    """
    mark = (archive.file_id, getattr(labels_file, "file_id", None), tuple(labels))
    kept = st.session_state.get(state_key)
    if kept is None or kept[0] != mark:
        try:
            kept = (mark, readers.open_zip(archive.getvalue(), labels, name=archive.name,
                                           labels_csv=None if labels_file is None
                                           else labels_file.getvalue()), None)
        except VizError as exc:  # without its traceback, which holds the upload's bytes
            kept = (mark, None, exc.with_traceback(None))
        st.session_state[state_key] = kept
    if kept[2] is not None:
        raise kept[2]
    return kept[1]
