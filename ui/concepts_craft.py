"""The Concepts page's CRAFT tab: pick the images, a class and a layer, find the class's concepts
(through the job queue, with progress and Stop), then see each concept as a row: its importance,
its best crops and its map on the images where it is strongest; open one image to see every
concept's map on it."""
from __future__ import annotations

import numpy as np
import streamlit as st

from viz_core.dataset.atlas import exemplar_pixels
from viz_core.dataset.concepts import (DEFAULT_LIMIT, cached_concepts, check_concepts_options,
                                       class_entries, concepts_key)
from viz_core.dataset.readers import UPLOAD_LIMITS, sample_dataset
from viz_core.errors import VizError
from viz_core.methods.craft import DEFAULT_DESIGNS, DEFAULT_TOP_CROPS, craft_cost
from viz_core.render.concepts import all_concepts, concept_colour, concept_overlay, crops_strip
from viz_core.runtime.plan import Step

from .concepts_export import CRAFT_CSV_KEY, CRAFT_ZIP_KEY, concepts_bundle_button, concepts_plan
from .cost import cost_text
from .dataset_listing import listed_dataset
from .feedback import run_button, show_error
from .page import remember
from .presenter import controls, presenter_on
from .settings import LINKED, named
from .state import workbench
from .text import literal

SOURCES = {
    "shapes": "Sample: shapes scenes (the sidebar's model)",
    "shortcut": "Sample: shortcut scenes (the shortcut demo model, which cheats)",
    "upload": "Upload a ZIP (class folders, images with labels.csv, or one class's images)",
}
SAMPLE_COUNTS = (48, 96, 200, 400)
CONCEPT_CHOICES = (3, 4, 5, 6, 8, 10, 12)
LIMITS = (24, 50, 100, 200)
IMAGES_PER_ROW = 4  # images showing a concept's map in its row
CROPS_PER_ROW = 6
# the row's images in this many equal cells (the rest left empty): as wide as they can be
# without overflowing the row, their captions and "All concepts" buttons fitting under them
CELLS = {False: 6, True: IMAGES_PER_ROW}  # presenter mode -> cells across the row

NOTE = """
**What CRAFT does.** It cuts the class's images into small crops, runs each crop through the
model up to the layer, and looks for a few *concepts*: typical mixtures of the layer's channels
that, added up, rebuild the crops' activations (non-negative matrix factorisation). A concept is
shown by the crops that hold most of it: look at them and name what they share, a texture, a
part, a colour, or a tag in a corner.

**Importance** says how much the class's score depends on each concept. Each concept's share is
turned up and down at random in every image (all concepts at once), the rest of the model
scores the class, and the *Sobol total index* measures how much of the score's variation goes
away when only that concept is held still, its interactions with the others included. The bars
add up to 1. **The map** on an image shows where the layer's activations hold that concept.

**What it does not say.** Concepts are found in *this* class's images, so a concept may just as
well be present in other classes; the names are yours to give, not the model's; and concepts
that rebuild the activations only partly (see "left out" below the rows) can miss what the model
uses. A concept being important means the model's score *moves* with it here, not that the model
is right to use it: a corner tag that decides "star" is a shortcut, found.
"""


def _model_for(source: str, page):
    """The shortcut scenes go with the model trained on them, as on the Dataset page."""
    bench = workbench()
    return bench.builtin_model("shortcut_demo", "imagenet") if source == "shortcut" \
        else page.model


def _uploaded(model):
    """The uploaded ZIP's dataset, listed in the job queue once per upload; None until a ZIP is
    given (the tab says so), while it is read, or when it was refused (the tab says why)."""
    c1, c2 = st.columns(2)
    archive = c1.file_uploader("Dataset (.zip)", type=["zip"], key=CRAFT_ZIP_KEY,
                               max_upload_size=UPLOAD_LIMITS.max_total_bytes // 2**20)
    labels_file = c2.file_uploader("Labels (.csv, optional: filename,label)", type=["csv"],
                                   key=CRAFT_CSV_KEY,
                                   max_upload_size=max(1, UPLOAD_LIMITS.max_csv_bytes // 2**20))
    if archive is None:
        st.info("Upload a ZIP of images to continue.", icon=":material/upload:")
        return None
    return listed_dataset(archive, labels_file, model.labels, key="concepts_list")


def _choice(key: str, options: list, default) -> dict:
    """Keyword arguments of a choice linked by name whose options follow the model: the link's
    option on the first draw, else the kept one, else ``default``."""
    kwargs = named(key, options)
    if st.session_state.get(key) not in options:
        st.session_state[key] = default
    return kwargs


def find_concepts(model, data, class_name, layer, concepts, limit, progress=None,
                  should_stop=None):
    """CRAFT through the disk cache (a second visit, even after a restart, is a read)."""
    return cached_concepts(model, data, class_name, layer, disk=workbench().disk,
                           concepts=concepts, limit=limit, progress=progress,
                           should_stop=should_stop)


def concepts_on_disk(model, data, class_name, layer, concepts, limit) -> bool:
    """Whether :func:`find_concepts` with these arguments reads its run back from the disk."""
    key = concepts_key(model, data, model.class_index(class_name), layer, concepts,
                       DEFAULT_DESIGNS, DEFAULT_TOP_CROPS, None, 0, limit)
    return workbench().disk.get(key) is not None


def image_pixels(model, data, entries):
    """``{entry: (H, W, 3) uint8}`` of dataset images as the model sees them."""
    return exemplar_pixels(model, data, entries)


def craft_tab(page) -> None:
    """Draw the CRAFT tab for the sidebar's selection ``page`` (:class:`ui.page.Page`)."""
    bench = workbench()
    # pictures first (issue 29): the settings fold away, the first concept's crops start on
    # the first screen (the cost and the run button stay in sight)
    settings = controls("CRAFT: images, class and layer", normal="folded")
    top, second = settings.columns(2), settings.columns(4)
    source = top[0].radio("Images", list(SOURCES), format_func=SOURCES.get,
                          **named("concepts_source", SOURCES))
    count = top[1].select_slider("Number of images in the sample", SAMPLE_COUNTS, value=96,
                                 key="concepts_count", **LINKED,
                                 help="Generated scenes, drawn on demand (the same every time);"
                                 " CRAFT uses the chosen class's images among them.")
    try:
        model = _model_for(source, page)
    except VizError as exc:
        show_error(exc)
        return
    labels = list(model.labels)
    default_class = "star" if source == "shortcut" and "star" in labels else labels[0]
    previous = remember("_concepts_source_seen", source)
    if previous is not None and previous != source:  # new images: their own default class
        st.session_state["concepts_class"] = default_class
    class_kwargs = _choice("concepts_class", labels, default_class)
    class_name = second[0].selectbox("Class", labels, **class_kwargs)
    layers = [p for p in model.info.spatial_layers if model.info.layer(p).type != "InputLayer"]
    last = model.info.last_conv_layer
    layer_kwargs = _choice("concepts_layer", layers, last if last in layers else layers[0])
    layer = second[1].selectbox("Layer", layers, **layer_kwargs,
                                help="A layer after a ReLU (its activations are never "
                                "negative); deeper layers give larger, more object-like "
                                "concepts.")
    concepts = second[2].select_slider("Concepts", CONCEPT_CHOICES, value=6, key="concepts_k",
                                       **LINKED)
    limit = second[3].select_slider("Images of the class", LIMITS, value=DEFAULT_LIMIT,
                                    key="concepts_limit", **LINKED,
                                    help="At most this many of the class's images, spread "
                                    "over the dataset.")
    try:
        if source == "upload":
            data = _uploaded(model)
            if data is None:
                return
        else:
            data = sample_dataset(source, model.labels, count=count)
        check_concepts_options(model, layer, concepts, limit)
        picked, chosen = class_entries(data, model.class_index(class_name), limit)
    except VizError as exc:
        show_error(exc)
        return

    args = (model, data, class_name, layer, concepts, limit)
    plan = concepts_plan(Step(find_concepts, args, stored=lambda: concepts_on_disk(*args)),
                         source, count=count)
    if not plan.ready(bench):
        whole, back = craft_cost(len(picked), tuple(model.info.input_shape[:2]), concepts)
        which = (f"{len(picked)} images labelled {literal(class_name)}" if chosen == "label"
                 else f"all {len(picked)} images (the dataset has no labels)")
        st.caption(f"CRAFT on {which} at {literal(layer)}: {cost_text(model, whole)} for the "
                   f"crops and images, then {back:,} passes through the layers after "
                   f"{literal(layer)} for the importance (cheaper the deeper the layer).")
        # the same run asked for by several sessions is one job
        run_button("Find concepts", "Finding concepts", "concepts_run",
                   lambda bar: plan.run(bench, bar), job_key=plan.key())
        return
    try:
        run = plan.steps[0].result(bench)
    except VizError as exc:
        show_error(exc)
        return
    show_concepts(model, data, run)
    concepts_bundle_button(plan, source, count=count)


def show_concepts(model, data, run) -> None:
    """The rows of concepts and one image's concept maps."""
    bench, craft = workbench(), run.craft
    rows = st.container()  # first: the pictures, then what they were computed from
    st.caption(f"Model: {literal(model.title)} · layer {literal(craft.layer)} · "
               f"{craft.images} images of {literal(run.class_name)} from "
               f"{literal(run.dataset)} · {len(craft)} concepts leave out "
               f"{100 * craft.relative_error:.0f}% of the crops' activations · importance of "
               f"the class's {craft.score}")
    if run.skipped:
        st.caption(f"{len(run.skipped)} files skipped, e.g. {literal(run.skipped[0].file)}: "
                   f"{literal(run.skipped[0].reason)}")
    strength = craft.coefficients.sum(axis=(1, 2))  # (N, K): how much of each concept per image
    shown_images = {int(i) for k in range(len(craft))
                    for i in np.argsort(-strength[:, k], kind="stable")[:IMAGES_PER_ROW]}
    pixels = bench.run(image_pixels, model, data, [int(run.entries[i]) for i in shown_images])

    def picture(i):
        return pixels[int(run.entries[i])]

    def open_image(i: int) -> None:
        st.session_state["concepts_image"] = run.names[i]

    # in presenter mode a rule between rows instead of a box round each: the box's padding
    # pushed the first crops below a 1280x720 projector's first screen
    boxed = not presenter_on()
    for k in range(len(craft)):
        if k and not boxed:
            rows.divider()
        with rows.container(border=boxed):
            left, middle = st.columns([1, 3])
            colour = "#%02x%02x%02x" % concept_colour(k)
            left.markdown(f"**Concept {k}** <span style='color:{colour}'>■</span>",
                          unsafe_allow_html=True)
            left.progress(float(np.clip(craft.importance[k], 0, 1)),
                          text=f"importance {craft.importance[k]:.2f}")
            middle.image(crops_strip(craft.top_crop_pixels[k][:CROPS_PER_ROW], height=64),
                         caption=f"Crops holding most of concept {k}")
            best = np.argsort(-strength[:, k], kind="stable")[:IMAGES_PER_ROW]
            # a line of their own under the crops: the row's full width, not a third of it
            cells = st.columns(CELLS[presenter_on()])
            for cell, i in zip(cells, best):
                cell.image(concept_overlay(picture(i), craft.coefficients[i, ..., k], k),
                           width="stretch", caption=run.names[i])
                cell.button("All concepts", key=f"concepts_open_{k}_{int(i)}",
                            on_click=open_image, args=(int(i),), width="stretch")

    st.subheader("All concepts on one image")
    names = list(run.names)
    image_kwargs = _choice("concepts_image", names, names[0])
    name = st.selectbox("Image", names, **image_kwargs)
    i = names.index(name)
    whole = bench.run(image_pixels, model, data, [int(run.entries[i])])[int(run.entries[i])]
    maps = craft.coefficients[i].transpose(2, 0, 1)
    share = maps.sum(axis=(1, 2)) / max(float(maps.sum()), 1e-12)
    st.image(all_concepts(whole, maps, columns=min(6, len(craft))),
             caption=f"{name}: concepts 0 to {len(craft) - 1}, left to right, each on its own "
             "scale")
    st.markdown(" · ".join(f"concept {k}: {share[k]:.0%}" for k in range(len(craft))))
    st.caption("The share of each concept in this image's activations at "
               f"{literal(craft.layer)}; on a tagged star, the tag's concept sits in the corner.")
