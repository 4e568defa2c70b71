"""The Neuron atlas's "Export bundle" button: the atlas command with the page's settings, and a
copy of an uploaded ZIP (and its labels CSV) in the bundle, so the command runs from it.

The bundle's command is the page's atlas exactly: a sample is named ``sample:NAME:COUNT`` (the
page's first COUNT scenes), an upload travels as ``data/<its name>.zip``; run in-process with
the dashboard's workbench, so an atlas the page already built is read from the disk cache.
"""
from __future__ import annotations

import re
from typing import Sequence

import streamlit as st

from viz_core.runtime.plan import Plan, Step

from .export import bundle_button, model_options

LABELS_CSV = "data/labels.csv"


def zip_name(upload_name: str) -> str:
    """Where an uploaded ZIP goes in the bundle: ``data/<name>.zip``, the name reduced to
    letters, digits, ``.``, ``_`` and ``-`` (it is a path in the bundle and a word of the
    command)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", upload_name.rsplit(".", 1)[0]).strip("._") or "dataset"
    return f"data/{stem[:60]}.zip"


def data_options(source: str, *, count: int | None = None, upload_name: str | None = None,
                 with_labels: bool = False) -> list[str]:
    """``--data`` (and ``--labels``) for a page's dataset: ``sample:<source>:<count>``, or an
    upload's copy in the bundle (:func:`zip_name`, and :data:`LABELS_CSV` when a labels CSV
    came beside it)."""
    if source != "upload":
        return ["--data", f"sample:{source}:{int(count)}"]
    return (["--data", zip_name(upload_name or "dataset.zip")]
            + (["--labels", LABELS_CSV] if with_labels else []))


def atlas_options(model_words: Sequence[str], source: str, *, layer: str, k: int, score: str,
                  count: int | None = None, upload_name: str | None = None,
                  with_labels: bool = False) -> list[str]:
    """The ``atlas`` command's options for the page's settings.

    Parameters
    ----------
    model_words : sequence of str
        :func:`ui.export.model_options` of the model (an uploaded model's class names there
        are ``--labels FILE``, which the atlas command calls ``--class-names``: ``--labels``
        is its dataset's labels CSV).
    source : str
        ``"shapes"`` or ``"shortcut"`` (a sample, with ``count``) or ``"upload"`` (with
        ``upload_name``, and ``with_labels`` when a labels CSV came beside it).
    layer, k, score
        As on the page.
    """
    words = ["--class-names" if w == "--labels" else w for w in model_words]
    words += data_options(source, count=count, upload_name=upload_name, with_labels=with_labels)
    return words + ["--layer", layer, "--k", str(int(k)), "--score", score]


def upload_files(archive, labels_file) -> dict[str, bytes]:
    """An uploaded dataset ZIP and its labels CSV (Streamlit uploads, or None) as the bundle's
    files, at the paths the dataset options name (:func:`zip_name`, :data:`LABELS_CSV`)."""
    if archive is None:
        return {}
    found = {zip_name(archive.name): archive.getvalue()}
    if labels_file is not None:
        found[LABELS_CSV] = labels_file.getvalue()
    return found


def atlas_plan(step: Step, source: str, *, count: int | None = None, archive=None,
               labels_file=None) -> Plan:
    """The page's plan: its atlas ``step`` (a call ``(model, data, layer, k, score)``) and the
    atlas command that makes the same atlas, its model, layer, k and score read from the step
    (so they cannot drift from what the page computed).

    ``source``, ``count``, ``archive`` and ``labels_file`` name the images as
    :func:`atlas_options` does (an upload by its Streamlit file, read when the bundle is made).
    """
    model, _, layer, k, score = step.args
    return Plan((step,), "atlas", atlas_options(
        model_options(model), source, layer=layer, k=k, score=score, count=count,
        upload_name=getattr(archive, "name", None), with_labels=labels_file is not None))


def atlas_bundle_button(plan: Plan, source: str, *, count: int | None = None, archive=None,
                        labels_file=None, key: str = "atlas_bundle", where=st) -> None:
    """Draw the atlas's "Export bundle" download button for :func:`atlas_plan`'s ``plan``
    (the bundle is made when clicked).

    ``archive`` and ``labels_file`` are the page's uploaded ZIP and CSV (Streamlit uploads)
    for ``source="upload"``; their bytes are read when the bundle is made.
    """
    model, _, layer, k, score = plan.steps[0].args
    parameters = {"page": "Neuron atlas", "model": model.title, "layer": layer, "k": k,
                  "score": score, "images": source if source == "upload" else
                  f"sample:{source}:{count}"}

    bundle_button(plan.command, list(plan.options), [], parameters, key=key, where=where,
                  extra_files=lambda: upload_files(archive if source == "upload" else None,
                                                   labels_file),
                  help="A ZIP with the atlas (atlas.json and every crop), its settings, the "
                       "python -m viz_core atlas command that makes it again, and a copy of "
                       "an uploaded ZIP.")
