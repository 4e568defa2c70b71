"""The Concepts page's TCAV tab: bring a concept as example images, pick a class and a layer, and
see whether the class's score rises along the concept (through the job queue, with progress
and Stop), with its significance against random directions and what that does and does not
mean."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from viz_core.dataset.readers import UPLOAD_LIMITS, open_dataset, sample_dataset
from viz_core.dataset.tcav_run import EXAMPLES, example_images, tcav_run
from viz_core.errors import ParameterError, VizError
from viz_core.methods.tcav_options import DEFAULT_RUNS, RUNS, SIGNIFICANCE
from viz_core.runtime.plan import Step

from .charts import plotly_chart
from .concepts_export import tcav_bundle_button, tcav_plan
from .cost import cost_text
from .dataset_listing import upload_listing
from .feedback import run_button, show_error
from .presenter import controls
from .settings import KEPT, LINKED, named
from .state import workbench
from .text import literal, plotly_text

CLASS_SOURCES = {
    "shortcut": "Sample: shortcut scenes (the shortcut demo model, which cheats)",
    "shapes": "Sample: shapes scenes (the sidebar's model)",
    "upload": "Upload a ZIP (class folders, images with labels.csv, or one class's images)",
}
CONCEPT_SOURCES = {
    "example": f"Example: {EXAMPLES['tag']} (shortcut demo)",
    "upload": "Upload a ZIP of concept images",
    "folder": "A folder on the server",
}
RANDOM_SOURCES = {
    "example": f"Example: {EXAMPLES['plain']} (shortcut demo)",
    "dataset": "Drawn from the class's images' dataset",
    "upload": "Upload a ZIP of random images",
    "folder": "A folder on the server",
}
CLASS_COUNTS = (20, 50, 100)
SAMPLE_COUNT = 200
PREVIEW = 8  # concept images shown

NOTE = """
**What TCAV does.** You bring a *concept* as example images (stripes, a corner tag, a
texture). At a layer, a linear classifier learns to tell the concept's activations from those
of random images; the direction it separates them along is the concept's *activation vector*
(CAV). For every image of the class, TCAV asks: if the activations moved a little towards the
concept, would the class's score go up? The **TCAV score** is the fraction of the class's
images where it would. Because a CAV depends on which random images it was fitted against,
this is repeated against several random sets, and also with random images in the concept's
place: **random directions** score whatever chance gives. A two-sided t-test of the concept's
scores against those says whether the difference is more than chance (**significant** when
p < 0.05).

**What it does not mean.** TCAV *counts directions, not sizes*: a concept that moves the score
by a hair, but always upwards, scores 1.0 and can be significant, while the model barely uses
it. A score near 0 is also an answer: the concept pushes the class *down*. The concept is what
your images have in common *to this layer*, which may not be what you meant (photos of stripes
that are all blue also teach "blue"). And a significant score says the model's score is
sensitive to the concept here, not that the concept causes the prediction, nor that using it is
right: a corner tag that raises "star" is a shortcut, found.
"""


def _model_for(source: str, model):
    """The shortcut scenes (and the examples) go with the model trained on them."""
    return workbench().builtin_model("shortcut_demo", "imagenet") if source == "shortcut" \
        else model


def _upload(label: str, key: str, labels=(), unlisted: dict | None = None):
    """An uploaded ZIP listed in the job queue once per upload (a rerun reads it, or its
    refusal, back), its labels matched to ``labels``; None until given.

    An upload not listed yet goes into ``unlisted`` (``key -> "reading"``, or ``"refused"``
    with the refusal said here) and None is returned. Its uploader is always drawn (a widget
    left out of a run loses its file); its listing starts only when no other upload is being
    read, since a session runs one job at a time.
    """
    archive = st.file_uploader(label, type=["zip"], key=key,
                               max_upload_size=UPLOAD_LIMITS.max_total_bytes // 2**20)
    if archive is None:
        return None
    unlisted = {} if unlisted is None else unlisted
    what = label.split(" (", 1)[0].lower()  # "concept images"
    listing = None if "reading" in unlisted.values() else upload_listing(
        archive, None, labels, key=f"{key}_list", progress_label=f"Reading the {what}")
    if listing is None:
        unlisted[key] = "reading"
        return None
    if listing.error is not None:
        show_error(listing.error)
        unlisted[key] = "refused"
        return None
    return listing.dataset


def _folder(label: str, key: str):
    """A folder on the server named by the user; None until named."""
    text = st.text_input(label, key=key, **KEPT, placeholder="/data/concepts/striped",
                         help="A folder of images on the machine running this dashboard.")
    if not text.strip():
        return None
    path = Path(text.strip()).expanduser()
    if not path.is_dir():
        raise ParameterError(f"There is no folder {text.strip()!r} on the server.")
    return open_dataset(path, ())


def _image_set(source: str, kind: str, data, classes, unlisted: dict):
    """The concept's or the random images chosen by ``source``; None until given (or while an
    upload is listed: see :func:`_upload`)."""
    if source == "example":
        return example_images("tag" if kind == "concept" else "plain", classes)
    if source == "dataset":
        return None
    if source == "upload":
        return _upload(f"{kind.capitalize()} images (.zip)", f"tcav_{kind}_zip",
                       unlisted=unlisted)
    return _folder(f"Folder of {kind} images on the server", f"tcav_{kind}_folder")


def score_counts(scores, decimals: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The distinct scores of ``scores`` (rounded to ``decimals``, ascending) and how many runs
    gave each: runs that score the same would hide behind one dot."""
    values, counts = np.unique(np.round(np.asarray(scores, dtype=float), decimals),
                               return_counts=True)
    return values, counts


def _scores_chart(result) -> go.Figure:
    """Each run's TCAV score of the concept beside the random directions' scores: one dot per
    distinct score, as large as the runs on it and labelled with their count."""
    figure = go.Figure()
    most = max(int(score_counts(s)[1].max()) for s in (result.concept_scores,
                                                       result.random_scores))
    # rows at y = 0 and 1 with room above each for the counts (a category axis clipped them)
    for scores, row, name, colour in ((result.concept_scores, 0,
                                       plotly_text(result.concept), "#e45756"),
                                      (result.random_scores, 1, "random directions",
                                       "#9d9d9d")):
        values, counts = score_counts(scores)
        figure.add_trace(go.Scatter(
            x=values.tolist(), y=[row] * len(values), mode="markers+text", name=name,
            marker=dict(size=[10 + 18 * float(np.sqrt(c / most)) for c in counts], color=colour,
                        line=dict(color="white", width=1)),
            text=[f"×{c}" for c in counts], textposition="top center", textfont=dict(size=13),
            hovertext=[f"{c} of {len(scores)} runs score {v:.2f}" for v, c in zip(values, counts)],
            hoverinfo="text"))
    figure.add_vline(x=0.5, line_dash="dot", line_color="#bbbbbb")
    figure.update_layout(title="TCAV score of each run (×: how many runs)", height=260,
                         showlegend=False,
                         yaxis=dict(range=[-0.5, 1.6], tickvals=[0, 1],
                                    ticktext=["concept", "random"], zeroline=False),
                         xaxis=dict(range=[-0.05, 1.05], title="fraction of the class's images "
                                    "whose score rises"), margin=dict(t=40, b=40, l=10, r=10))
    return figure


def tcav_tab(page=None) -> None:
    """Draw the TCAV tab (inside the Concepts page's tab); ``page`` is the page's
    :class:`ui.page.Page` (None: the sidebar's selection)."""
    if page is None:
        from .page import selection

        page = selection()
    bench = workbench()
    st.caption("Does the class's score rise along a concept you bring? Give images that show "
               "the concept, random images to tell it from, and the class's images.")
    with st.expander("What TCAV does, and what its score does not mean", expanded=False,
                     icon=":material/school:"):
        st.markdown(NOTE)
    box = controls("TCAV")
    with box:
        top = st.columns(2)
        source = top[0].radio("Images of the class", list(CLASS_SOURCES),
                              format_func=CLASS_SOURCES.get,
                              **named("tcav_class_source", CLASS_SOURCES))
        try:
            model = _model_for(source, page.model)
        except VizError as exc:
            show_error(exc)
            return
        if model is None:
            st.info("Choose a model in the sidebar that loads, or the shortcut scenes.")
            return
        layers = [p for p in model.info.spatial_layers
                  if model.info.layer(p).type != "InputLayer"]
        last = model.info.last_conv_layer
        # a layer or class of another model falls back to this model's default
        last = last if last in layers else layers[0]
        if st.session_state.get("tcav_layer") not in layers:
            st.session_state.pop("tcav_layer", None)
        layer = top[1].selectbox("Layer", layers, **named("tcav_layer", layers, last,
                                                           initial=last))
        default_class = "star" if "star" in model.labels else model.labels[0]
        if st.session_state.get("tcav_class") not in model.labels:
            st.session_state.pop("tcav_class", None)
        class_name = top[1].selectbox("Class", list(model.labels),
                                      **named("tcav_class", model.labels, default_class,
                                              initial=default_class))
        middle = st.columns(2)
        concept_source = middle[0].radio("Concept images", list(CONCEPT_SOURCES),
                                         format_func=CONCEPT_SOURCES.get,
                                         **named("tcav_concept_source", CONCEPT_SOURCES))
        random_source = middle[1].radio("Random images", list(RANDOM_SOURCES),
                                        format_func=RANDOM_SOURCES.get,
                                        **named("tcav_random_source", RANDOM_SOURCES),
                                        help="Images that do not show the concept in "
                                        "particular; the concept is what sets its images apart "
                                        "from these.")
        bottom = st.columns(2)
        runs = bottom[0].slider("Random runs", RUNS.low, RUNS.high, DEFAULT_RUNS, key="tcav_runs",
                                **LINKED,
                                help="Each run fits a concept vector against a different "
                                "random set, and one random set against another.")
        count = bottom[1].select_slider("Class images (at most)", CLASS_COUNTS, value=50,
                                        key="tcav_count", **LINKED)
    unlisted = {}  # uploads being read in the job queue, or refused
    refused = []  # each input is drawn even when another is refused: what was given stays

    def given(read, *args):
        try:
            return read(*args)
        except VizError as exc:
            refused.append(exc)
            return None

    data = (given(_upload, "Class images (.zip)", "tcav_class_zip", model.labels, unlisted)
            if source == "upload"
            else given(sample_dataset, source, model.labels, SAMPLE_COUNT))
    concept = given(_image_set, concept_source, "concept", data, model.labels, unlisted)
    random = given(_image_set, random_source, "random", data, model.labels, unlisted)
    for exc in refused:
        show_error(exc)
    if refused:
        return
    if unlisted:  # drawn again when they are read (a refusal was said under its uploader)
        return
    missing = [what for what, got, src in (("the class's images", data, source),
                                           ("concept images", concept, concept_source),
                                           ("random images", random, random_source))
               if got is None and src != "dataset"]
    if missing:
        st.info(f"Give {' and '.join(missing)} to continue.", icon=":material/upload:")
        return
    if "example" in (concept_source, random_source) and model.name != "shortcut_demo":
        st.caption("The examples are the shortcut demo's 64 x 64 scenes; with another model "
                   "they are resized to its input.")
    if len(concept.entries):
        picks = np.linspace(0, len(concept.entries), min(PREVIEW, len(concept.entries)),
                            endpoint=False).astype(int)  # spread over the set, not its start
        chosen = [concept.entries[i] for i in picks]
        # the names in one line below, not under each 64 px image (they broke mid-word there)
        st.image([concept.load(e).pixels for e in chosen], width=64)
        st.caption(f"The concept, {literal(concept.name)}: {len(picks)} of its "
                   f"{len(concept.entries)} images, "
                   + ", ".join(literal(Path(e.path).name) for e in chosen))
    plan = tcav_plan(Step(tcav_run, (model, data, model.class_index(class_name), concept,
                                     random, layer), dict(runs=runs, class_images=count)),
                     source, concept_source=concept_source, random_source=random_source,
                     sample_count=SAMPLE_COUNT)
    if not plan.ready(bench):
        images = min(count, len(data)) + min(len(concept), 100) + 200
        st.caption(f"{literal(class_name)} at {literal(layer)}: {runs} runs, "
                   f"{cost_text(model, images + 2 * min(count, len(data)))}.")
        # the same run asked for by several sessions is one job
        run_button("Run TCAV", "Running TCAV", "tcav_run", lambda bar: plan.run(bench, bar),
                   job_key=plan.key())
        return
    try:
        run = plan.steps[0].result(bench)
    except VizError as exc:
        show_error(exc)
        return
    tcav_bundle_button(plan, source, concept_source=concept_source, random_source=random_source)
    _show(run)


def _show(run) -> None:
    r = run.result
    m1, m2, m3 = st.columns(3)
    m1.metric("TCAV score", f"{r.score:.2f}",
              help="Mean over the runs of the fraction of the class's images whose score rises "
              "along the concept.")
    m2.metric("Random directions", f"{r.random_score:.2f}",
              help="The same with random images in the concept's place: what chance gives.")
    m3.metric("p-value", f"{r.p_value:.3g}", help=f"Two-sided t-test; below {SIGNIFICANCE} "
              "is called significant.")
    if r.significant and r.score > r.random_score:
        st.success(f"**Significant**: for {r.score:.0%} of the images of "
                   f"{literal(r.class_name)} the score rises along {literal(r.concept)}, against "
                   f"{r.random_score:.0%} for random directions (p = {r.p_value:.2g}). At "
                   f"{literal(r.layer)} the class's score goes up with this concept; how much, "
                   "TCAV does not say (below).", icon=":material/check_circle:")
    elif r.significant:
        st.warning(f"**Significant, downwards**: only {r.score:.0%} of the images of "
                   f"{literal(r.class_name)} have a score that rises along {literal(r.concept)}, "
                   f"against {r.random_score:.0%} for random directions (p = {r.p_value:.2g}). At "
                   f"{literal(r.layer)} this concept pushes the class's score down.",
                   icon=":material/trending_down:")
    else:
        st.info(f"**Not significant**: {r.score:.0%} of the images of {literal(r.class_name)} "
                f"against {r.random_score:.0%} for random directions (p = {r.p_value:.2g}): no "
                f"more than chance gives at {literal(r.layer)}. Try another layer, more runs, "
                "or concept images that share less besides the concept.", icon=":material/info:")
    plotly_chart(_scores_chart(r), width="stretch", key="tcav_scores_chart")
    st.caption(f"Directions, not sizes: the mean change of the score per step along the concept "
               f"was {float(np.mean(r.derivatives)):.3g} ({r.score_kind}). The classifier told "
               f"the concept from random images with {float(np.mean(r.cav_accuracies)):.0%} "
               f"accuracy on held-out images. {r.images} class images of "
               f"{literal(run.dataset)}, {r.concept_images} concept images, random sets of "
               f"{r.random_set_size} from {run.random_images} images of "
               f"{literal(run.random_source)}.")
    if run.skipped:
        st.caption(f"{len(run.skipped)} files skipped, e.g. {literal(run.skipped[0].file)}: "
                   f"{literal(run.skipped[0].reason)}")
