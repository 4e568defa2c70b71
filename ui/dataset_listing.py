"""The Dataset page's images before a run: an uploaded ZIP listed in the job queue, once per
upload, and a strip of the dataset's first images (issue 30: a 2,000,000-entry ZIP was parsed in
the page's thread, again on every rerun; issue 28: no picture before a run)."""
from __future__ import annotations

import streamlit as st

from viz_core.dataset.listing import SIDE, DatasetListing, UploadedZip, list_upload
from viz_core.runtime.plan import Plan, Step

from .feedback import run_button
from .state import workbench

LIST_KEY = "ds_list"  # the listing's button (shown only after a stop or a failure)
_UPLOAD_KEY = "_ds_upload"  # (the uploads' file ids, their UploadedZip): digested once


def uploaded_zip(archive, labels_file) -> UploadedZip:
    """The uploaded ZIP (and CSV, or None) as one value keyed by its content; the bytes are
    hashed once per upload, not on every rerun."""
    mark = (archive.file_id, getattr(labels_file, "file_id", None))
    kept = st.session_state.get(_UPLOAD_KEY)
    if kept is None or kept[0] != mark:
        kept = (mark, UploadedZip.of(archive.getvalue(), archive.name,
                                     None if labels_file is None else labels_file.getvalue()))
        st.session_state[_UPLOAD_KEY] = kept
    return kept[1]


def listing_plan(upload: UploadedZip, classes) -> Plan:
    """The upload's listing as a plan: one cached call, keyed by the upload's digests."""
    return Plan((Step(list_upload, (upload, tuple(classes))),))  # the bar says what it is


def upload_listing(archive, labels_file, classes) -> DatasetListing | None:
    """The listing of the page's uploaded ZIP: read back from the workbench, or made in the job
    queue, started on arrival (``auto``) and followed under a bar; None while it is made (the
    page then draws no more, and is drawn again when the job ends)."""
    bench = workbench()
    plan = listing_plan(uploaded_zip(archive, labels_file), classes)
    if plan.ready(bench):
        (listing,) = plan.results(bench)
        return listing
    run_button("Read the ZIP", "Reading the ZIP", LIST_KEY,
               lambda bar: plan.run(bench, bar), job_key=plan.key(), auto=True)
    return None


def image_strip(listing: DatasetListing, where=st) -> None:
    """The listing's thumbnails in one row, each captioned with its path."""
    if listing.thumbnails:
        where.image(list(listing.thumbnails), width=SIDE, caption=list(listing.paths))
