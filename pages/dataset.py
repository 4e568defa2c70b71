"""Dataset: a model over a whole folder of images: accuracy, confusion, mistakes, where it looks
for each class, and the shortcut finder (SpRAy clusters of the heatmaps).

Pictures first (issue 28): the controls that choose the images sit in one row above them
(folded in presenter mode); before a run a strip of the dataset's images, after it the
confusion matrix and the confidence chart, come first.
"""
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui.atlas_export import upload_files
from ui.charts import plotly_chart
from ui.dataset_listing import image_strip, upload_listing
from ui.dataset_plan import dataset_options, run_plan, view_plan
from ui.export import bundle_button
from ui.feedback import job_running, run_button, show_error
from ui.page import needs_text, page_setup
from ui.presenter import control_columns, controls
from ui.settings import LINKED, named
from ui.share import switch_page
from ui.sidebar import DATASET_CHOICE, DATASET_IMAGE_KEY, keep_for_page_switch
from ui.state import workbench
from ui.text import breakable_path, literal
from ui.untrained import say_if_untrained
from viz_core.dataset.engine import dataset_methods
from viz_core.dataset.listing import list_sample
from viz_core.dataset.readers import UPLOAD_LIMITS
from viz_core.errors import VizError
from viz_core.render import apply_colormap, overlay_heatmap
from viz_core.maps import resize_map
from viz_core.methods import registry as methods
from viz_core.dataset.shortcuts import CORNER_FRACTION, FLAG_SHARE

SOURCES = {
    "shapes": "Sample: shapes scenes",
    "shortcut": "Sample: shortcut scenes",
    "upload": "Upload a ZIP",
}
SAMPLE_COUNTS = (24, 48, 96, 200)
CLUSTER_CHOICES = ("auto", 1, 2, 3, 4, 5, 6)
GALLERY = 8
TILE = 112
RUN_KEY = "ds_run"

page = page_setup(
    "Dataset",
    # one line: the dataset's images start on a 1280x720 projector's first screen
    "The model over a whole dataset: its mistakes, where it looks, its shortcuts.",
    needs="nothing",
)
bench = workbench()
# The controls that choose the images and their maps, in one row above them (a collapsed
# box in presenter mode); an upload's file pickers stay out, as the page waits on them.
settings = controls("Images and method", normal="plain")
c_source, c_count, c_method = control_columns(settings, 3)
source = c_source.radio(
    "Images", list(SOURCES), format_func=SOURCES.get, **named("ds_source", SOURCES),
    help="Shapes scenes: the sidebar's model on generated one-shape scenes. Shortcut scenes: "
    "the shortcut demo model, which cheats (it learned a tag in a corner). Upload: a ZIP of "
    "class folders, or of images with a labels.csv.")
# every method a dataset run takes (registry.dataset_names), at its default parameters
method = c_method.selectbox(
    "Heatmap method", dataset_methods(), format_func=methods.title,
    **named("ds_method", dataset_methods()),
    help="How each image's heatmap is made (the same maps as Class heatmaps gives at the "
    "default settings). Layer and pixel-gradient methods run in batches; Score-CAM and "
    "AblationCAM run the model again for each image, so they take much longer.")
method_title = methods.title(method)
count = None
if source != "upload":
    count = c_count.select_slider(
        "Number of images", SAMPLE_COUNTS, value=48, key="ds_count", **LINKED,
        help="Generated scenes, drawn on demand (the same every time).")

archive = labels_file = None
try:
    if source == "shortcut":
        model = bench.builtin_model("shortcut_demo", "imagenet")
    else:
        model = page.model
        if model is None:
            st.info(needs_text("model"))
            st.stop()
    if source == "upload":
        c1, c2 = st.columns(2)
        archive = c1.file_uploader("Dataset (.zip)", type=["zip"], key="ds_zip_file",
                                   max_upload_size=UPLOAD_LIMITS.max_total_bytes // 2**20)
        labels_file = c2.file_uploader("Labels (.csv, optional: filename,label)", type=["csv"],
                                       key="ds_csv_file",
                                       max_upload_size=max(1, UPLOAD_LIMITS.max_csv_bytes // 2**20))
        st.caption(f"Up to {UPLOAD_LIMITS.max_files:,} images and "
                   f"{UPLOAD_LIMITS.max_total_bytes // 2**20} MB. The ZIP is read in memory, "
                   "never unpacked to disk; labels are folder names or the CSV's, matched to "
                   "the model's classes.")
        if archive is None:
            st.info("Upload a ZIP of images to continue.", icon=":material/upload:")
            st.stop()
        listing = upload_listing(archive, labels_file, model.labels)
        if listing is None:  # being read in the job queue; the page is drawn again after
            st.stop()
        if listing.error is not None:
            show_error(listing.error)
            st.stop()
    else:
        listing = bench.run(list_sample, source, tuple(model.labels), count)
except VizError as exc:
    show_error(exc)
    st.stop()
data = listing.dataset

about = (f"Model: {literal(model.title)} · dataset {literal(data.name)} · {len(data)} images "
         f"· layout: {data.layout}")
say_if_untrained(model)
if data.unknown_labels:
    st.warning("Labels that match none of the model's classes (these images are predicted but "
               "not scored): " + ", ".join(f"{literal(label)} ({n})"
                                           for label, n in data.unknown_labels),
               icon=":material/label_off:")

options = dataset_options(model, source, method=method, count=count,
                          upload_name=getattr(archive, "name", None),
                          with_labels=labels_file is not None)
plan = run_plan(model, data, options, method=method)
if not plan.ready(bench):
    # the button, compact, above the images it will explain; the job is followed in a
    # fragment, so the strip stays drawn while it runs
    run_button("Run on the dataset", "Explaining the dataset", RUN_KEY,
               lambda bar: plan.run(bench, bar), job_key=plan.key())
    image_strip(listing)
    shown = f"{len(listing.thumbnails)} of them above, spread over the dataset"
    if not job_running(RUN_KEY):
        shown += (f"; press *Run on the dataset* to predict and explain them all with "
                  f"{method_title}")
    st.caption(f"{about}. {shown}.")
    st.stop()
(run,) = plan.results(bench)
index = {entry.path: entry for entry in data.entries}


def picture(i: int, with_map: bool = True) -> np.ndarray:
    """The i-th image as the model sees it, with its small heatmap over it."""
    shown = model.view(data.load(index[run.paths[i]])).display
    return overlay_heatmap(shown, run.maps[i]) if with_map else shown


def caption(i: int) -> str:
    label = run.labels[i] if run.labels[i] is not None else "no label"
    return (f"{breakable_path(run.paths[i])}: {label} → {run.classes[int(run.predicted[i])]} "
            f"({run.confidence[i]:.0%})")


def clicked_cell(event, classes) -> tuple[str, str] | None:
    """(label, predicted) class names of the confusion cell the chart's selection names."""
    points = (event or {}).get("selection", {}).get("points") or []
    for point in points:
        data = point.get("customdata")
        if data is not None and len(data) >= 2:
            return classes[int(data[0])], classes[int(data[1])]
    return None


def open_in_pages(i: int) -> None:
    """Make the i-th image the sidebar's image (and, for the shortcut scenes, the shortcut
    model the sidebar's model): a callback, as widget values can only be set before a run.
    The sidebar's other values (an uploaded model, its class names) are pinned for the switch."""
    keep_for_page_switch()
    st.session_state[DATASET_IMAGE_KEY] = (run.paths[i], data.load(index[run.paths[i]]))
    st.session_state["image"] = DATASET_CHOICE
    if source == "shortcut":
        st.session_state["model"] = "shortcut_demo"


# -- summary: one row of numbers, then the pictures ---------------------------------------------
m1, m2, m3, m4 = st.columns(4)
m1.metric("Images", f"{len(run):,}")
m2.metric("Accuracy", "no labels" if run.accuracy is None else f"{run.accuracy:.1%}")
m3.metric("Skipped files", len(run.skipped))
m4.metric("Time", f"{run.seconds:.1f} s")

# -- confusion and confidence -------------------------------------------------------------------
confusion = run.confusion()
g1, g2 = st.columns(2)
if confusion is not None:
    used = [k for k in range(len(run.classes))
            if confusion[k].sum() or confusion[:, k].sum()]
    names = [run.classes[k] for k in used]
    matrix = confusion[np.ix_(used, used)]
    hover = "label %{y}, predicted %{x}: %{customdata[2]} image(s)<extra>click to see them</extra>"
    figure = go.Figure(go.Heatmap(z=matrix, x=names, y=names, colorscale="Blues",
                                  text=matrix, texttemplate="%{text}", hoverinfo="skip"))
    # Plotly cannot select a heatmap's cells (streamlit#8760), so each cell carries a clear
    # square marker: clicking the cell selects the marker, which names the cell.
    cells = [(r, c) for r in range(len(names)) for c in range(len(names))]
    figure.add_trace(go.Scatter(
        x=[names[c] for _, c in cells], y=[names[r] for r, _ in cells], mode="markers",
        marker=dict(symbol="square", size=max(14, 240 // len(names)),
                    color="rgba(0,0,0,0.01)"),
        customdata=[[used[r], used[c], int(matrix[r, c])] for r, c in cells],
        hovertemplate=hover, showlegend=False))
    figure.update_layout(title="Confusion matrix (click a cell)", xaxis_title="predicted",
                         yaxis_title="label", yaxis_autorange="reversed", height=380,
                         margin=dict(t=50, b=40))
    event = plotly_chart(figure, g1, width="stretch", key="ds_confusion_chart",
                         on_select="rerun", selection_mode="points")
hist = go.Figure()
for title, pick in (("right", run.correct), ("wrong", run.labelled & ~run.correct),
                    ("no label", ~run.labelled)):
    if pick.any():
        hist.add_trace(go.Histogram(x=run.confidence[pick], name=title, xbins=dict(size=0.05),
                                    opacity=0.75))
hist.update_layout(title="Confidence of the predicted class", barmode="overlay", height=380,
                   xaxis_title="probability", yaxis_title="images", margin=dict(t=50, b=40),
                   legend=dict(orientation="h", y=-0.25))
plotly_chart(hist, g2, width="stretch", key="ds_confidence_chart")
st.caption(about)

if confusion is not None:
    clicked = clicked_cell(event, run.classes)
    if clicked is not None and clicked != st.session_state.get("_ds_clicked_cell"):
        # a new click chooses the cell; the boxes below stay the keyboard's way to choose
        st.session_state["_ds_clicked_cell"] = clicked
        st.session_state["ds_cell_label"], st.session_state["ds_cell_pred"] = clicked
    if (st.session_state.get("ds_cell_label") not in names
            or st.session_state.get("ds_cell_pred") not in names):
        # the largest confusion first (the diagonal when there is no mistake)
        off = matrix - np.diag(np.diag(matrix))
        worst = np.unravel_index(int(np.argmax(off if off.any() else matrix)), matrix.shape)
        st.session_state["ds_cell_label"] = names[int(worst[0])]
        st.session_state["ds_cell_pred"] = names[int(worst[1])]
    c1, c2 = st.columns(2)
    cell_label = c1.selectbox("Images labelled", names, key="ds_cell_label", **LINKED)
    cell_pred = c2.selectbox("and predicted as", names, key="ds_cell_pred", **LINKED)
    k_label, k_pred = run.classes.index(cell_label), run.classes.index(cell_pred)
    cell = np.flatnonzero((run.label_indices == k_label) & (run.predicted == k_pred))
    if len(cell):
        order = cell[np.argsort(-run.confidence[cell], kind="stable")][:GALLERY]
        more = f" (the {GALLERY} most confident shown)" if len(cell) > GALLERY else ""
        st.caption(f"{len(cell)} image(s) labelled {literal(cell_label)} and predicted as "
                   f"{literal(cell_pred)}{more}:")
        st.image([picture(i) for i in order], caption=[caption(i) for i in order], width=TILE)
    else:
        st.caption(f"No image labelled {literal(cell_label)} was predicted as "
                   f"{literal(cell_pred)}.")

# -- per class ----------------------------------------------------------------------------------
per_class = run.class_accuracy()
rows = [{"class": name, "labelled images": per_class.get(name, (0, None))[0],
         "accuracy": per_class.get(name, (0, None))[1],
         "predicted as this class": int(np.sum(run.predicted == k))}
        for k, name in enumerate(run.classes)
        if name in per_class or np.any(run.predicted == k)]
st.dataframe(rows, hide_index=True, key="ds_classes_table",
             column_config={"accuracy": st.column_config.NumberColumn(format="percent")})
if run.skipped:
    with st.expander(f"{len(run.skipped)} skipped file(s) and why"):
        st.dataframe([{"file": s.file, "reason": s.reason} for s in run.skipped],
                     hide_index=True, key="ds_skipped_table")

# -- table --------------------------------------------------------------------------------------
with st.expander("All images (sortable table; choose a row to open the image in the other "
                 "pages)", expanded=bool(st.session_state.get("ds_table", {}).get(
                     "selection", {}).get("rows"))):
    picked = st.dataframe(
        [{"image": p, "label": lab, "predicted": run.classes[int(k)],
          "probability": float(c), "correct": (bool(ok) if has else None)}
         for p, lab, k, c, ok, has in zip(run.paths, run.labels, run.predicted, run.confidence,
                                          run.correct, run.labelled)],
        hide_index=True, key="ds_table", on_select="rerun", selection_mode="single-row",
        column_config={"probability": st.column_config.NumberColumn(format="%.3f")})
    rows = picked.selection.rows
    if rows and 0 <= rows[0] < len(run):
        i = int(rows[0])
        st.image(picture(i), caption=caption(i), width=2 * TILE)
        target = "the shortcut demo model" if source == "shortcut" else "the sidebar's model"
        if st.button(f"Open {run.paths[i]} in the other pages", key="ds_open_go",
                     icon=":material/open_in_new:",
                     help=f"It becomes the sidebar's image (with {target}); Class heatmaps opens.",
                     on_click=open_in_pages, args=(i,)):
            switch_page("pages/heatmaps.py")

# -- mistakes -----------------------------------------------------------------------------------
st.subheader("Most confident mistakes")
wrong = np.flatnonzero(run.labelled & ~run.correct)
if len(wrong):
    order = wrong[np.argsort(-run.confidence[wrong], kind="stable")][:GALLERY]
    st.image([picture(i) for i in order], caption=[caption(i) for i in order], width=TILE)
else:
    st.caption("No mistakes among the labelled images." if run.labelled.any()
               else "The images have no labels, so no mistakes can be counted.")

# -- mean heatmaps ------------------------------------------------------------------------------
st.subheader("Where the model looks, per predicted class")
st.caption(f"The mean {method_title} map of all images predicted as the class (yellow = most "
           "heat).")
means = run.mean_maps()
columns = st.columns(min(6, max(1, len(means))))
for slot, (k, mean) in enumerate(sorted(means.items())):
    peak = float(mean.max())
    heat = resize_map(mean / peak if peak > 0 else mean, TILE, TILE)
    columns[slot % len(columns)].image(
        apply_colormap(heat, "viridis"), width=TILE,
        caption=f"{run.classes[k]} ({int(np.sum(run.predicted == k))} images)")

# -- shortcut finder ----------------------------------------------------------------------------
st.subheader("Shortcut finder")
st.caption(
    "For each predicted class the heatmaps are grouped by spectral clustering; *auto* picks the "
    "number of groups from the eigengap. Each group shows its mean map and the images closest "
    f"to it. A group is flagged when at least {FLAG_SHARE:.0%} of its heat falls in one corner "
    f"square (a {CORNER_FRACTION:.0%} side; an even spread puts "
    f"{CORNER_FRACTION ** 2:.0%} there): evidence away from where objects are."
)
c1, c2 = st.columns([1, 2], vertical_alignment="bottom")
clusters = c1.selectbox("Groups per class", CLUSTER_CHOICES, key="ds_clusters", **LINKED)
view = view_plan(plan, clusters)
bundle_button(view.command, view.options, [], {
    "page": "Dataset", "model": model.title, "dataset": data.name, "images": len(data),
    "method": method, "clusters": clusters}, key="ds_bundle", where=c2,
    extra_files=lambda: upload_files(archive, labels_file),
    help="A ZIP with the run's maps, its cluster and mean-map pictures and summary.json, its "
         "settings, and the python -m viz_core dataset command that makes them again (with a "
         "copy of an uploaded ZIP).")
try:
    _, report = view.results(bench)
except VizError as exc:
    show_error(exc)
    st.stop()
for cluster in report.flagged:
    st.warning(
        f"**{literal(cluster.label)}**, group {cluster.id + 1} ({cluster.size} images): "
        f"{cluster.corner_share:.0%} of the heat is in the {cluster.corner} corner. The model "
        f"may recognise {literal(cluster.label)} by something there rather than by the "
        "object itself.", icon=":material/flag:")
if not report.flagged:
    st.success("No group's evidence concentrates in a corner.", icon=":material/check_circle:")
for strategies in report.classes:
    st.markdown(f"**{literal(strategies.label)}**: {len(strategies.clusters)} group(s)")
    for cluster in strategies.clusters:
        mean = resize_map(cluster.mean_map, TILE, TILE)
        tiles = [apply_colormap(mean, "viridis")] + [picture(i) for i in cluster.examples]
        captions = [f"group {cluster.id + 1}: {cluster.size} images, "
                    f"{cluster.corner_share:.0%} {cluster.corner}"] + [
            run.paths[i] for i in cluster.examples]
        st.image(tiles, caption=captions, width=TILE)
