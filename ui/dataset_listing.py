"""A page's uploaded dataset ZIP, listed in the job queue once per upload, and a strip of the
dataset's first images (issue 30: a 2,000,000-entry ZIP was parsed in the page's thread, again
on every rerun; issue 28: no picture before a run).

Every page that takes a ZIP of images (Dataset, Neuron atlas, Concepts' CRAFT and TCAV tabs)
lists it here, each upload under its own button key.
"""
from __future__ import annotations

import streamlit as st

from viz_core.dataset.listing import SIDE, DatasetListing, UploadedZip, list_upload
from viz_core.runtime.plan import Plan, Step

from .feedback import run_button, show_error
from .state import workbench
from .presenter import presenter_on
from .text import breakable_path

PRESENTER_SIDE = 96  # px: eight thumbnails in the presenter's 780 px wide page

LIST_KEY = "ds_list"  # the Dataset page's listing button (shown only after a stop or a failure)


def uploaded_zip(archive, labels_file, key: str = LIST_KEY) -> UploadedZip:
    """The uploaded ZIP (and CSV, or None) as one value keyed by its content; the bytes are
    hashed once per upload (kept in the session under the listing's button ``key``), not on
    every rerun."""
    mark, held = (archive.file_id, getattr(labels_file, "file_id", None)), f"_{key}_upload"
    kept = st.session_state.get(held)
    if kept is None or kept[0] != mark:
        kept = (mark, UploadedZip.of(archive.getvalue(), archive.name,
                                     None if labels_file is None else labels_file.getvalue()))
        st.session_state[held] = kept
    return kept[1]


def listing_plan(upload: UploadedZip, classes) -> Plan:
    """The upload's listing as a plan: one cached call, keyed by the upload's digests."""
    return Plan((Step(list_upload, (upload, tuple(classes))),))  # the bar says what it is


def upload_listing(archive, labels_file, classes, *, key: str = LIST_KEY,
                   label: str = "Read the ZIP",
                   progress_label: str = "Reading the ZIP") -> DatasetListing | None:
    """The listing of an uploaded ZIP (``archive``, with ``labels_file`` or None: Streamlit
    uploads) matched to ``classes``: read back from the workbench, or made in the job queue
    under the button ``key`` (one per uploader on a page), started on arrival (``auto``) and
    followed under a bar labelled ``progress_label``.

    Returns
    -------
    DatasetListing or None
        None while it is made (the page then draws no more, and is drawn again when the job
        ends). A refused upload is a listing with ``error`` set, said again on every rerun
        without opening the archive again.
    """
    bench = workbench()
    plan = listing_plan(uploaded_zip(archive, labels_file, key), classes)
    if plan.ready(bench):
        (listing,) = plan.results(bench)
        return listing
    run_button(label, progress_label, key, lambda bar: plan.run(bench, bar),
               job_key=plan.key(), auto=True)
    return None


def listed_dataset(archive, labels_file, classes, *, key: str, where=st, **labels):
    """:func:`upload_listing`'s dataset; None while it is made, or when the upload was refused
    (the refusal is shown, in ``where``).

    Returns
    -------
    Dataset or None
    """
    listing = upload_listing(archive, labels_file, classes, key=key, **labels)
    if listing is None:
        return None
    if listing.error is not None:
        show_error(listing.error, where=where)
        return None
    return listing.dataset


def image_strip(listing: DatasetListing, where=st) -> None:
    """The listing's thumbnails in one row, each captioned with its path (in presenter mode,
    whose larger text would wrap a path over three lines and the strip over two rows: with its
    folder, the class, and a little smaller, so the eight fit the presenter's narrower page)."""
    if not listing.thumbnails:
        return
    if presenter_on():
        captions = [p.rsplit("/", 1)[0] if "/" in p else p for p in listing.paths]
        where.image(list(listing.thumbnails), width=PRESENTER_SIDE, caption=captions)
    else:
        where.image(list(listing.thumbnails), width=SIDE,
                    caption=[breakable_path(p) for p in listing.paths])
