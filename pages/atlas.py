"""Neuron atlas: each unit (channel) of a layer shown by the dataset images that excite it most
and least, with its class selectivity; a unit's full card shows the whole images with the
channel's map over them and the histogram of its responses."""
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui.atlas_export import atlas_bundle_button, atlas_plan
from ui.charts import plotly_chart
from ui.feedback import run_button, show_error
from ui.notes import show as show_note
from ui.page import page_setup
from ui.presenter import controls
from ui.settings import LINKED, named
from ui.state import workbench
from ui.dataset_listing import image_strip, upload_listing
from ui.text import literal
from viz_core.dataset.atlas import (atlas_key, cached_atlas, cached_unit_patterns, channel_maps, check_atlas_options,
                                    exemplar_pixels, parse_channels)
from viz_core.dataset.readers import UPLOAD_LIMITS, sample_dataset
from viz_core.errors import VizError
from viz_core.render import overlay_heatmap
from viz_core.render.atlas import crop_picture, outlined
from viz_core.runtime.plan import Step

SOURCES = {
    "shapes": "Sample: shapes scenes (the sidebar's model)",
    "shortcut": "Sample: shortcut scenes (the shortcut demo model, which cheats)",
    "upload": "Upload a ZIP (class folders, or images with labels.csv)",
}
SAMPLE_COUNTS = (24, 48, 96, 200)
K_CHOICES = (4, 6, 8, 12)
SORTS = {"selectivity": "most selective first", "class": "by class, then selectivity",
         "channel": "channel number"}
PER_PAGE = 12  # three rows of four: the full card stays near the grid
CROPS_ON_CARD = 3
TILE = 120
CARD_TILE = 112  # eight whole images in one row

NOTE = """
**How to read a card.** Each card is one unit (a channel of the layer). Its pictures are the
parts of the dataset's images that made it fire most: the *receptive field* around the
strongest position, the square of input pixels that unit can see. The bar says how
*selective* the unit is: its mean activation for its favourite class against the mean over
the other classes, `(a_max - a_rest) / (a_max + a_rest)`: 0 responds to every class alike,
1 to one class only (labels, or the predicted class when the images have none). Open a card
to see the whole images with the channel's map over them, the images that silence it, and
how often it responds how strongly (the histogram).

**Exemplars and synthetic patterns tell different things.** *Filter patterns* are pictures
made to excite a unit as much as possible: they show what it *could* respond to, often
exaggerated, out of context. Exemplars show what it *does* respond to in your data, with the
context it relies on. People predict a unit's behaviour better from natural exemplars: 92 %
against 82 % from synthetic visualisations in Borowski et al. (ICLR 2021). Exemplars are
limited by the dataset, though: a unit can look like a "circle detector" only because the
dataset holds nothing else that is round. Look at the bottom images too.
"""

page = page_setup(
    "Neuron atlas",
    "What does each unit of a layer respond to? For every channel, the images of a dataset "
    "that excite it most (cropped to what the unit sees) and least, and which class it "
    "prefers. Computed in one pass over the dataset in batches, keeping only the best few "
    "images per unit.",
    needs="model",
)
show_note(NOTE, page.note)
bench = workbench()
settings = controls("Atlas", normal="plain")
top_row, second_row = settings.columns(2), settings.columns(3)
source = top_row[0].radio("Images", list(SOURCES), format_func=SOURCES.get,
                          **named("atlas_source", SOURCES))
count = top_row[1].select_slider("Number of images", SAMPLE_COUNTS, value=48, key="atlas_count",
                                 **LINKED, disabled=source == "upload",
                                 help="Generated scenes, drawn on demand (the same every "
                                 "time); an upload uses all its images.")
try:
    # the shortcut scenes go with the model trained on them, as on the Dataset page
    model = (bench.builtin_model("shortcut_demo", "imagenet") if source == "shortcut"
             else page.model)
except VizError as exc:
    show_error(exc)
    st.stop()
layers = [p for p in model.info.spatial_layers if model.info.layer(p).type != "InputLayer"]
last = model.info.last_conv_layer
layer = second_row[0].selectbox("Layer", layers,
                                index=layers.index(last) if last in layers else 0,
                                key="atlas_layer", **LINKED)
k = second_row[1].select_slider("Images per unit", K_CHOICES, value=8, key="atlas_k", **LINKED,
                                help="The top and the bottom images kept for each unit.")
score = second_row[2].radio("Rank images by", ("max", "mean"),
                            **named("atlas_score", ("max", "mean")),
                            horizontal=True, format_func={"max": "strongest position",
                                                          "mean": "whole-image mean"}.get)


def make_atlas(model, data, layer, k, score, progress=None, should_stop=None):
    """The atlas through the disk cache (a second visit, even after a restart, is a read)."""
    return cached_atlas(model, data, layer, disk=bench.disk, k=k, score=score,
                        progress=progress, should_stop=should_stop)


def atlas_on_disk(model, data, layer, k, score) -> bool:
    """Whether :func:`make_atlas` with these arguments reads its atlas back from the disk."""
    channels = parse_channels(None, int(model.info.layer(layer).output_shape[-1]))
    return bench.disk.get(atlas_key(model, data, layer, k, score, channels)) is not None


def image_of(model, data, entry):
    """One dataset image as the model sees it, (H, W, 3) uint8."""
    return exemplar_pixels(model, data, [entry])[int(entry)]


def uploaded_listing():
    """The uploaded ZIP's listing, made in the job queue once per upload (a rerun reads it, or
    its refusal, back); stops the page until a ZIP is given and while it is read."""
    c1, c2 = st.columns(2)
    archive = c1.file_uploader("Dataset (.zip)", type=["zip"], key="atlas_zip_file",
                               max_upload_size=UPLOAD_LIMITS.max_total_bytes // 2**20)
    labels_file = c2.file_uploader("Labels (.csv, optional: filename,label)", type=["csv"],
                                   key="atlas_csv_file",
                                   max_upload_size=max(1, UPLOAD_LIMITS.max_csv_bytes // 2**20))
    if archive is None:
        st.info("Upload a ZIP of images to continue.", icon=":material/upload:")
        st.stop()
    listing = upload_listing(archive, labels_file, model.labels, key="atlas_list")
    if listing is None:  # being read in the job queue; the page is drawn again after
        st.stop()
    return listing


listing = uploaded_listing() if source == "upload" else None
if listing is not None and listing.error is not None:  # shown, not raised: the cache keeps it
    show_error(listing.error)
    st.stop()
try:
    data = listing.dataset if listing is not None else sample_dataset(source, model.labels,
                                                                       count=count)
    check_atlas_options(model, layer, k, score, 32)
except VizError as exc:
    show_error(exc)
    st.stop()

channels = parse_channels(None, int(model.info.layer(layer).output_shape[-1]))
archive, labels_file = (st.session_state.get("atlas_zip_file"),
                        st.session_state.get("atlas_csv_file"))
atlas_args = (model, data, layer, k, score)
plan = atlas_plan(Step(make_atlas, atlas_args, stored=lambda: atlas_on_disk(*atlas_args)),
                  source, count=count, archive=archive, labels_file=labels_file)
if not plan.ready(bench):
    st.caption(f"{len(channels)} units of {literal(layer)} over {len(data)} images: one pass "
               "through the model up to the layer.")
    # the same atlas asked for by several sessions is one job
    run_button("Build the atlas", "Building the atlas", "atlas_run",
               lambda bar: plan.run(bench, bar), job_key=plan.key())
    if listing is not None:  # an upload's images, seen before the run
        image_strip(listing)
    st.stop()
try:
    atlas = plan.steps[0].result(bench)
except VizError as exc:
    show_error(exc)
    st.stop()

selective, selectivity = atlas.selective_for, atlas.selectivity
st.caption(f"Model: {literal(model.title)} · layer {literal(atlas.layer)} · {len(atlas)} units "
           f"· {atlas.images} images of {literal(atlas.dataset)} · classes by "
           f"{atlas.grouped_by} · receptive field {atlas.field.size[0]}x{atlas.field.size[1]} px"
           f", {atlas.field.jump[0]} px apart")
atlas_bundle_button(plan, source, count=count, archive=archive, labels_file=labels_file)

# -- the grid of unit cards ----------------------------------------------------------------------
c1, c2, c3 = st.columns(3)
sort = c1.selectbox("Sort units", list(SORTS), format_func=SORTS.get,
                    **named("atlas_sort", SORTS))
wanted = c2.selectbox("Units selective for", ["any class", *atlas.classes],
                      key="atlas_class", **LINKED)
rows = np.arange(len(atlas))
if wanted != "any class":
    rows = rows[selective == atlas.classes.index(wanted)]
if sort == "selectivity":
    rows = rows[np.argsort(-selectivity[rows], kind="stable")]
elif sort == "class":
    rows = rows[np.lexsort((-selectivity[rows], selective[rows]))]
pages = max(1, -(-len(rows) // PER_PAGE))
shown_page = c3.number_input("Page", 1, pages, 1, key="atlas_page", **LINKED,
                             help=f"{PER_PAGE} units per page; {len(rows)} units match.")
shown = rows[(shown_page - 1) * PER_PAGE: shown_page * PER_PAGE]
if not len(shown):
    st.info(f"No unit of this layer is most selective for {literal(wanted)}.")


def open_card(channel: int) -> None:
    st.session_state["atlas_unit"] = int(channel)


# each unit's fourier pattern when Filter patterns has drawn it (read from the cache, never made)
patterns = cached_unit_patterns(model, atlas.layer, [int(atlas.channels[r]) for r in shown],
                                disk=bench.disk)
columns = st.columns(4)
for slot, r in enumerate(shown):
    channel = int(atlas.channels[r])
    top = atlas.exemplars(channel, "top")[:CROPS_ON_CARD]
    with columns[slot % 4].container(border=True):
        st.markdown(f"**Unit {channel}**")
        if channel in patterns:
            st.image(patterns[channel].pattern, width=TILE // 2, caption="fourier pattern")
        crops = [crop_picture(bench.run(image_of, model, data, t["entry"]), t["box"])
                 for t in top]
        st.image(crops, width=TILE // 2)
        favourite = atlas.classes[selective[r]] if selective[r] >= 0 else "none"
        st.progress(float(np.clip(selectivity[r], 0, 1)),
                    text=f"{literal(favourite)} · selectivity {selectivity[r]:.2f}")
        st.button("Open card", key=f"atlas_open_{channel}", on_click=open_card,
                  args=(channel,), icon=":material/open_in_full:")

# -- a unit's full card --------------------------------------------------------------------------
st.subheader("A unit's card")
choices = [int(c) for c in atlas.channels]
unit_kwargs = named("atlas_unit", choices, None)  # a link's unit, once the atlas has it
if st.session_state.get("atlas_unit") not in choices:
    st.session_state["atlas_unit"] = int(atlas.channels[rows[0] if len(rows) else 0])
unit = st.selectbox("Unit", choices, **unit_kwargs)
r = atlas.row(unit)
top, bottom = atlas.exemplars(unit, "top"), atlas.exemplars(unit, "bottom")
favourite = atlas.classes[selective[r]] if selective[r] >= 0 else "none"
m1, m2, m3 = st.columns(3)
m1.metric("Top activation", f"{top[0]['activation']:.3g}" if top else "-")
m2.metric("Selective for", favourite)
m3.metric("Selectivity", f"{selectivity[r]:.2f}")


def with_maps(exemplars: list[dict], peak: float, boxes: bool) -> list[np.ndarray]:
    """Whole images with the channel's map over them, all on one scale (0 to ``peak``), and
    the receptive field of the strongest position framed (``boxes``)."""
    if not exemplars:
        return []
    pictures = np.stack([bench.run(image_of, model, data, e["entry"]) for e in exemplars])
    maps = bench.run(channel_maps, model, atlas.layer, pictures, unit)
    scaled = np.clip(maps / (peak if peak > 0 else 1.0), 0, 1)
    shown = [overlay_heatmap(p, m) for p, m in zip(pictures, scaled)]
    return [outlined(p, e["box"]) for p, e in zip(shown, exemplars)] if boxes else shown


peak = max((t["activation"] for t in top), default=1.0)
st.markdown(f"**Top {len(top)}**: the images that excite unit {unit} most, with its map "
            "over them; the white frame is what the unit sees around its strongest position")
st.image(with_maps(top, peak, boxes=True), width=CARD_TILE,
         caption=[f"{t['image']}: {t['activation']:.3g} at {t['position']}, box {t['box']}"
                  for t in top])
st.markdown(f"**Bottom {len(bottom)}**: the images that silence it (same colour scale)")
st.image(with_maps(bottom, peak, boxes=False), width=CARD_TILE,
         caption=[f"{b['image']}: {b['activation']:.3g}" for b in bottom])
g1, g2 = st.columns(2)
counts, edges = atlas.histogram(unit)
hist = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges),
                        marker_color="#4c78a8"))
hist.update_layout(title=f"How strongly unit {unit} responds ({atlas.score} per image)",
                   xaxis_title="activation", yaxis_title="images", height=320,
                   margin=dict(t=50, b=40))
plotly_chart(hist, g1, width="stretch", key="atlas_hist_chart")
means = atlas.class_means[r]
bars = go.Figure(go.Bar(x=list(atlas.classes), y=np.nan_to_num(means),
                        marker_color=["#e45756" if i == selective[r] else "#9d9d9d"
                                      for i in range(len(means))]))
bars.update_layout(title=f"Mean activation per {atlas.grouped_by} class", height=320,
                   yaxis_title="mean activation", margin=dict(t=50, b=40))
plotly_chart(bars, g2, width="stretch", key="atlas_class_chart")
