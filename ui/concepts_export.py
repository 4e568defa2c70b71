"""The Concepts page's "Export bundle" buttons: the ``concepts`` (CRAFT) and ``tcav`` commands
with the page's settings, and copies of the images they read that the command could not name.

A sample is named ``sample:NAME:COUNT`` (the page's first COUNT scenes); an uploaded ZIP travels
as ``data/<its name>.zip`` (TCAV's concept and random ZIPs as ``data/concept/...`` and
``data/random/...``); the TCAV examples and a folder on the server travel as a ZIP of their
images, decoded, losslessly. The bundle is made by running the command in-process with the
dashboard's workbench, so a CRAFT run the page already made is read from the disk cache.
"""
from __future__ import annotations

import io
import zipfile
from typing import Sequence

import streamlit as st

from viz_core.render import png_bytes
from viz_core.runtime.plan import Plan, Step

from .atlas_export import data_options, upload_files, zip_name
from .export import bundle_button, model_options

CRAFT_ZIP_KEY, CRAFT_CSV_KEY = "concepts_zip_file", "concepts_csv_file"  # the CRAFT tab's uploads
TCAV_UPLOAD_KEYS = {"class": "tcav_class_zip", "concept": "tcav_concept_zip",
                    "random": "tcav_random_zip"}  # the TCAV tab's uploads


def _dataset_words(model_words: Sequence[str]) -> list[str]:
    """The model's words for a dataset command: an uploaded model's class names there are
    ``--labels FILE``, which these commands call ``--class-names`` (``--labels`` is the
    dataset's labels CSV)."""
    return ["--class-names" if w == "--labels" else w for w in model_words]


def set_zip_name(kind: str, upload_name: str) -> str:
    """Where TCAV's concept (``kind="concept"``) or random images go in the bundle:
    ``data/<kind>/<name>.zip``, the name reduced as :func:`ui.atlas_export.zip_name` does."""
    return f"data/{kind}/{zip_name(upload_name)[len('data/'):]}"


def images_zip(data) -> bytes:
    """A ZIP of every image of ``data`` (a :class:`~viz_core.dataset.readers.Dataset`) at its
    path in the dataset, decoded and written as PNG (lossless: the command reads the pixels
    the page read); files that cannot be read are left out, as the page skips them."""
    from viz_core.errors import ImageError

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in data.entries:
            try:
                pixels = data.load(entry).pixels
            except ImageError:
                continue
            stem = entry.path.rsplit(".", 1)[0] if "." in entry.path else entry.path
            archive.writestr(f"{stem}.png", png_bytes(pixels))
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# CRAFT
# --------------------------------------------------------------------------------------------
def concepts_options(model_words: Sequence[str], source: str, *, class_name: str, layer: str,
                     concepts: int, limit: int, count: int | None = None,
                     upload_name: str | None = None, with_labels: bool = False) -> list[str]:
    """The ``concepts`` command's options for the CRAFT tab's settings.

    Parameters
    ----------
    model_words : sequence of str
        :func:`ui.export.model_options` of the model.
    source : str
        ``"shapes"`` or ``"shortcut"`` (a sample, with ``count``) or ``"upload"`` (with
        ``upload_name``, and ``with_labels`` when a labels CSV came beside it).
    class_name, layer, concepts, limit
        As on the page (the other options are the page's and the command's defaults).
    """
    words = _dataset_words(model_words)
    words += data_options(source, count=count, upload_name=upload_name, with_labels=with_labels)
    return words + ["--class", str(class_name), "--layer", layer, "--concepts",
                    str(int(concepts)), "--limit", str(int(limit))]


def concepts_plan(step: Step, source: str, *, count: int | None = None) -> Plan:
    """The CRAFT tab's plan: its ``step`` (a call ``(model, data, class_name, layer, concepts,
    limit)``) and the concepts command that finds the same concepts, its model, class, layer,
    concepts and limit read from the step (so they cannot drift from what the tab computed);
    an uploaded ZIP and labels CSV are named by the tab's uploaders."""
    model, _, class_name, layer, concepts, limit = step.args
    archive = st.session_state.get(CRAFT_ZIP_KEY) if source == "upload" else None
    labels_file = st.session_state.get(CRAFT_CSV_KEY) if source == "upload" else None
    return Plan((step,), "concepts", concepts_options(
        model_options(model), source, class_name=class_name, layer=layer, concepts=concepts,
        limit=limit, count=count, upload_name=getattr(archive, "name", None),
        with_labels=labels_file is not None))


def concepts_bundle_button(plan: Plan, source: str, *, count: int | None = None,
                           key: str = "concepts_bundle", where=st) -> None:
    """Draw the CRAFT result's "Export bundle" download button for :func:`concepts_plan`'s
    ``plan`` (the bundle is made when clicked); an uploaded ZIP and labels CSV are taken
    from the tab's uploaders."""
    archive = st.session_state.get(CRAFT_ZIP_KEY) if source == "upload" else None
    labels_file = st.session_state.get(CRAFT_CSV_KEY) if source == "upload" else None
    model, _, class_name, layer, concepts, limit = plan.steps[0].args
    parameters = {"page": "Concepts", "tab": "CRAFT", "model": model.title,
                  "class": class_name, "layer": layer, "concepts": concepts, "images": limit,
                  "data": source if source == "upload" else f"sample:{source}:{count}"}

    bundle_button(plan.command, list(plan.options), [], parameters, key=key, where=where,
                  extra_files=lambda: upload_files(archive, labels_file),
                  help="A ZIP with the concepts (concepts.json, every crop, mean map and "
                       "per-image maps), the settings, the python -m viz_core concepts command "
                       "that makes them again, and a copy of an uploaded ZIP.")


# --------------------------------------------------------------------------------------------
# TCAV
# --------------------------------------------------------------------------------------------
def tcav_options(model_words: Sequence[str], source: str, *, class_name: str, layer: str,
                 runs: int, count: int, concept_zip: str, random_zip: str | None,
                 sample_count: int | None = None, upload_name: str | None = None) -> list[str]:
    """The ``tcav`` command's options for the TCAV tab's settings.

    ``source`` is ``"shapes"`` / ``"shortcut"`` (a sample of ``sample_count`` scenes) or
    ``"upload"`` (``upload_name``); ``concept_zip`` and ``random_zip`` are the sets' paths in
    the bundle (``random_zip`` None: random images drawn from the class's dataset); ``count``
    the class images read at most.
    """
    words = _dataset_words(model_words)
    words += ["--data", zip_name(upload_name or "dataset.zip") if source == "upload"
              else f"sample:{source}:{int(sample_count)}"]
    words += ["--concept", concept_zip]
    if random_zip is not None:
        words += ["--random", random_zip]
    return words + ["--class", str(class_name), "--layer", layer, "--random-runs",
                    str(int(runs)), "--images", str(int(count))]


def _set_file(kind: str, source: str, data) -> tuple[str | None, object]:
    """Where TCAV's ``kind`` set goes in the bundle and how to make its bytes: an upload's own
    bytes, or a ZIP of the images (examples, a folder); (None, None) for random images drawn
    from the dataset."""
    if source == "dataset" or data is None:
        return None, None
    upload = st.session_state.get(TCAV_UPLOAD_KEYS[kind]) if source == "upload" else None
    if upload is not None:
        return set_zip_name(kind, upload.name), upload.getvalue
    return set_zip_name(kind, f"{data.name}.zip"), lambda: images_zip(data)


def tcav_plan(step: Step, source: str, *, concept_source: str, random_source: str,
              sample_count: int) -> Plan:
    """The TCAV tab's plan: its ``step`` (a call ``(model, data, class_index, concept,
    random, layer)`` with ``runs`` and ``class_images``) and the tcav command that repeats
    it, its model, class, layer, runs and images read from the step (so they cannot drift
    from what the tab computed).

    ``concept`` and ``random`` are the tab's image sets (Datasets; ``random`` None with
    ``random_source="dataset"``): an upload is named by its file, an example set or a folder
    on the server by the ZIP of its images that goes in the bundle (:func:`tcav_bundle_button`).
    """
    model, _, class_index, concept, random, layer = step.args
    upload = st.session_state.get(TCAV_UPLOAD_KEYS["class"]) if source == "upload" else None
    return Plan((step,), "tcav", tcav_options(
        model_options(model), source, class_name=model.labels[class_index], layer=layer,
        runs=step.kwargs["runs"], count=step.kwargs["class_images"],
        concept_zip=_set_file("concept", concept_source, concept)[0],
        random_zip=_set_file("random", random_source, random)[0], sample_count=sample_count,
        upload_name=getattr(upload, "name", None)))


def tcav_bundle_button(plan: Plan, source: str, *, concept_source: str, random_source: str,
                       key: str = "tcav_bundle", where=st) -> None:
    """Draw a TCAV result's "Export bundle" download button for :func:`tcav_plan`'s ``plan``
    (the bundle is made when clicked), with the files its command reads: an upload travels
    as its own bytes, an example set or a folder on the server as a ZIP of its images.
    """
    model, _, class_index, concept, random, layer = plan.steps[0].args
    upload = st.session_state.get(TCAV_UPLOAD_KEYS["class"]) if source == "upload" else None
    concept_zip, concept_bytes = _set_file("concept", concept_source, concept)
    random_zip, random_bytes = _set_file("random", random_source, random)
    parameters = {"page": "Concepts", "tab": "TCAV", "model": model.title,
                  "class": model.labels[class_index], "layer": layer,
                  "random_runs": plan.steps[0].kwargs["runs"],
                  "class_images": plan.steps[0].kwargs["class_images"],
                  "concept": getattr(concept, "name", None),
                  "random": "drawn from the data" if random_zip is None else random.name}

    def files() -> dict[str, bytes]:
        found = {}
        if upload is not None:
            found[zip_name(upload.name)] = upload.getvalue()
        found[concept_zip] = concept_bytes()
        if random_zip is not None:
            found[random_zip] = random_bytes()
        return found

    bundle_button(plan.command, list(plan.options), [], parameters, key=key, where=where,
                  extra_files=files,
                  help="A ZIP with the TCAV result (tcav.json), the settings, the python -m "
                       "viz_core tcav command that makes it again, and the concept and random "
                       "images it read.")
