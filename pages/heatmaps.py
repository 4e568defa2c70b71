"""Class heatmaps: where the image holds evidence for a class (Grad-CAM and its family)."""
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui import notes
from ui.export import bundle_button, model_options
from ui.feedback import ProgressBar, show_error, stopped_note
from ui.presenter import colormap_choices
from ui.share import url_value
from ui.state import require_model_and_image, selection, workbench
from ui.text import literal, literal_code
from viz_core.cam import (
    LAYER_METHODS,
    METHOD_TITLES,
    METHODS,
    class_heatmap,
    page_params,
    top_classes,
)
from viz_core.errors import VizError
from viz_core.render import apply_colormap, colorbar, overlay_heatmap, png_bytes, resize_map
from viz_core.render.colormaps import lookup_table
from viz_core.targets import Target

COLOUR_MAPS = ("viridis", "jet", "magma", "inferno", "plasma", "cividis", "turbo", "gray")
FAST_METHODS = ("gradcam", "gradcam++")  # computed at once; the others wait for a button
NONE = -1
METHOD_HELP = {
    "gradcam": "Gradient of the class score at a layer, averaged per channel: weights for the "
               "layer's feature maps (Selvaraju et al.). One backward pass.",
    "gradcam++": "Like Grad-CAM, but channels are weighted by where their gradient is positive "
                 "(Chattopadhyay et al.); better with several objects of one class.",
    "scorecam": "No gradients: each channel masks the image and the model scores what is left "
                "(Wang et al.). One forward pass per channel, so it is slow on big models.",
    "saliency": "Gradient of the class score with respect to each pixel (Simonyan et al.).",
    "smoothgrad": "The pixel gradient averaged over noisy copies of the image (Smilkov et al.).",
    "integrated_gradients": "Pixel gradients summed along a path from a black image to the "
                            "image (Sundararajan et al.); the pixels' attributions add up to "
                            "the change of the score.",
}
SCORE_TITLES = {
    "logit": "Logit (before softmax, as in the Grad-CAM paper)",
    "probability": "Probability (after softmax, as in the R tutorial)",
}

st.title("Class heatmaps")
st.caption(
    "Which parts of the image made the model choose a class? Grad-CAM weighs every feature map "
    "of a convolutional layer by how much the class score grows with it, adds them up and keeps "
    "the positive part: bright = evidence for the class."
)
model, image = require_model_and_image()
bench = workbench()
view = model.view(image)
second_image = selection().second
info = model.info

try:
    top = top_classes(model, view, 5)
except VizError as exc:
    show_error(exc)
    st.stop()


def class_title(k: int) -> str:
    return f"{model.label(k)} ({k})"


# A new model or image starts from its own top class, compared with its runner-up; a new
# model also from its last conv layer (widget values of another model may not exist here).
context = (model.identity, view.digest)
if st.session_state.get("cam_context") != context:
    # A shared link's classes win on the page's first visit (see ui.share).
    first_visit = "cam_context" not in st.session_state
    wanted, wanted_2 = (url_value("cam_class"), url_value("cam_class_2")) if first_visit else (
        None, None)
    st.session_state["cam_context"] = context
    st.session_state["cam_class"] = (
        wanted if wanted in [k for k, _, _ in top] else top[0][0])
    st.session_state["cam_class_2"] = (
        wanted_2 if wanted_2 is not None and 0 <= wanted_2 < len(model.labels)
        else (top[1][0] if len(top) > 1 else NONE))
if st.session_state.get("cam_model") != model.identity or (
        st.session_state.get("cam_layer") not in info.spatial_layers):
    # A shared link's layer wins on the page's first visit (see ui.share).
    wanted = url_value("cam_layer") if "cam_model" not in st.session_state else None
    st.session_state["cam_model"] = model.identity
    st.session_state["cam_layer"] = (wanted if wanted in info.spatial_layers
                                     else info.last_conv_layer)
    st.session_state.pop("cam_class_any", None)
    st.session_state.pop("cam_channels", None)


# -- class and method -------------------------------------------------------------------------
with st.container(border=True):
    pick, method_column = st.columns([1, 1])
    with pick:
        options = [k for k, _, _ in top] + [NONE]
        probability_of = {k: p for k, _, p in top}
        choice = st.radio(
            "Class to explain (top-5 predictions)", options, key="cam_class",
            format_func=lambda k: ("Another class…" if k == NONE
                                   else f"{literal(class_title(k))} · p = {probability_of[k]:.1%}"))
        if choice == NONE:
            choice = st.selectbox(f"Search all {len(model.labels)} classes",
                                  range(len(model.labels)), key="cam_class_any",
                                  format_func=class_title, placeholder="Type a class name…")
        compare_options = [NONE] + [k for k in range(len(model.labels)) if k != choice]
        if st.session_state.get("cam_class_2") not in compare_options:
            st.session_state["cam_class_2"] = NONE
        compare = st.selectbox(
            "Second class, side by side", compare_options, key="cam_class_2",
            format_func=lambda k: "(none)" if k == NONE else class_title(k),
            help="Two classes of one picture, as the Grad-CAM paper's cat and dog: on the demo "
                 "model, pick the circle-and-star scene.")
    with method_column:
        method = st.selectbox("Method", METHODS, key="cam_method", format_func=METHOD_TITLES.get,
                              help="\n\n".join(f"**{METHOD_TITLES[m]}**: {METHOD_HELP[m]}"
                                               for m in METHODS))
        layers = list(info.spatial_layers)
        shapes = {entry.path: entry.output_shape for entry in info.layers}
        layer = st.selectbox(
            "Layer", layers, key="cam_layer",
            disabled=method not in LAYER_METHODS,
            format_func=lambda p: f"{p} · {'×'.join(str(d) for d in shapes[p])}"
            + (" (last conv)" if p == info.last_conv_layer else ""),
            help="Deep layers give coarse maps of whole objects; earlier layers finer maps of "
                 "parts. Pixel methods work on the image itself and ignore the layer.")
        score = st.radio("Class score", ("logit", "probability"), key="cam_score",
                         format_func=SCORE_TITLES.get, horizontal=False,
                         help="Grad-CAM differentiates the score before the softmax; the "
                              "tutorial's code used the probability. For a single sigmoid "
                              "output, class 0 is scored by −logit (or 1 − p).")
        channels = max(2, int(shapes[layer][-1] or 2))  # Score-CAM's slider range
        # the defaults the Compare page and the warm-up use too (one workbench entry for all)
        defaults = page_params(method, channels)
        params = {}
        if method == "scorecam":
            if st.session_state.get("cam_channels", 0) > channels:  # another layer's value
                st.session_state.pop("cam_channels")
            params["max_channels"] = st.slider(
                "Channels scored", 1, channels, defaults["max_channels"] or channels,
                key="cam_channels",
                help="Score-CAM runs the model once per channel; only the channels with the "
                     "largest mean activation are scored.")
            if params["max_channels"] == channels:
                params["max_channels"] = None
        elif method == "smoothgrad":
            params["samples"] = st.slider("Noisy copies", 5, 100, defaults["samples"], step=5,
                                          key="cam_samples")
            params["noise"] = st.slider("Noise (fraction of the pixel range)", 0.0, 0.5,
                                        defaults["noise"], step=0.05, key="cam_noise")
        elif method == "integrated_gradients":
            params["steps"] = st.slider("Steps from the black image", 8, 256,
                                        defaults["steps"], step=8, key="cam_steps")

# -- display options (never recompute) --------------------------------------------------------
d1, d2, d3, d4 = st.columns(4)
colormap = d1.selectbox("Colour map", colormap_choices(COLOUR_MAPS), key="cam_colormap")
opacity = d2.slider("Opacity", 0.0, 1.0, 0.5, step=0.05, key="cam_opacity")
threshold = d3.slider("Threshold", 0.0, 0.95, 0.0, step=0.05, key="cam_threshold",
                      help="Heat below this is not coloured.")
show = d4.radio("Show", ("overlay", "heatmap"), key="cam_show", horizontal=True,
                format_func={"overlay": "Overlay", "heatmap": "Heatmap alone"}.get)

classes = [choice] + ([compare] if compare != NONE else [])
h0, w0 = image.pixels.shape[:2]
h, w = info.input_shape[:2]
images = [(image, view)] + ([(second_image, model.view(second_image))] if second_image else [])
layer_arg = layer if method in LAYER_METHODS else None


def compute_args(v, k):
    return (class_heatmap, model, v, Target(k, score)), dict(method=method, layer=layer_arg,
                                                             **params)


todo = [(v, k) for _, v in images for k in classes
        if not bench.is_cached(*compute_args(v, k)[0], **compute_args(v, k)[1])]
if todo and method not in FAST_METHODS:
    scored = params.get("max_channels") or shapes[layer][-1]
    # every entry is formatted, only this method's is shown (its params are set above)
    cost = {"scorecam": f"{scored} forward passes (one per channel scored)",
            "smoothgrad": f"{params.get('samples')} gradient passes",
            "integrated_gradients": f"{params.get('steps', 0) + 1} gradient passes",
            "saliency": "one gradient pass"}[method]
    maps = f"{len(todo)} map" + ("s" if len(todo) > 1 else "")
    st.info(f"{METHOD_TITLES[method]} takes {cost} per map ({maps} to compute).",
            icon=":material/hourglass:")
    stopped_note(f"Computing {METHOD_TITLES[method]}")
    if not st.button(f"Compute {METHOD_TITLES[method]}", type="primary", key="cam_run"):
        st.stop()

notes.show(notes.heatmaps(model, model.label(choice), METHOD_TITLES[method], layer_arg))

results = {}
try:
    bar = ProgressBar(f"Computing {METHOD_TITLES[method]}",
                      stoppable=method not in FAST_METHODS) if todo else None
    for n, (name_and_view, k) in enumerate([(iv, k) for iv in images for k in classes]):
        _, v = name_and_view

        def progress(fraction, message, n=n):
            if bar is not None:
                bar((n + fraction) / (len(images) * len(classes)), message)

        args, kwargs = compute_args(v, k)
        results[(v.digest, k)] = bench.run(*args, progress=progress, **kwargs)
    if bar is not None:
        bar.done()
except VizError as exc:
    show_error(exc)
    st.stop()


def picture(loaded_image, result) -> np.ndarray:
    """What one panel shows, at the original image's resolution (uint8 RGB)."""
    if show == "overlay":
        return overlay_heatmap(loaded_image.pixels, result.heatmap, opacity=opacity,
                               colormap=colormap, threshold=threshold)
    h, w = loaded_image.pixels.shape[:2]
    heat = resize_map(result.heatmap, h, w)
    return apply_colormap(np.where(heat >= threshold, heat, 0.0), colormap)


def panel_caption(result) -> str:
    where = f"at {literal_code(result.layer)}" if result.layer != "input" else "on the pixels"
    text = (f"p = {result.probability:.1%} · {METHOD_TITLES[result.method]} {where} · score: "
            f"{result.score_kind} = {result.score:.3g}")
    if result.attribution_sum is not None:
        text += (f" · attributions sum to {result.attribution_sum:.4g}, score change "
                 f"{result.score_difference:.4g}")
    return text


def draw_panel(column, loaded_image, v, k, title_image: bool) -> None:
    result = results[(v.digest, k)]
    shown = picture(loaded_image, result)
    with column:
        prefix = f"{literal(loaded_image.name)} · " if title_image else ""
        st.markdown(f"{prefix}**{literal(result.label)}** ({k})")
        st.image(shown, width="stretch", caption=panel_caption(result))
        if result.empty:
            st.warning("No positive evidence for this class here: the map is empty.",
                       icon=":material/info:")
        st.download_button(
            "Download PNG", png_bytes(shown), mime="image/png",
            file_name=f"{loaded_image.name}_{method.replace('+', 'p')}_{k}.png",
            key=f"cam_download_{loaded_image.digest[:12]}_{k}", icon=":material/download:")


pictures_tab, interactive_tab = st.tabs(["Pictures", "Interactive (values on hover)"])
with pictures_tab:
    if len(classes) == 1:
        # one class: the images side by side (at least two columns, so one picture is not huge)
        columns = st.columns(max(2, len(images)))
        for column, (loaded_image, v) in zip(columns, images):
            draw_panel(column, loaded_image, v, classes[0], title_image=len(images) > 1)
    else:
        # two classes: one row per image, the classes side by side
        for loaded_image, v in images:
            if len(images) > 1:
                st.markdown(f"##### {literal(loaded_image.name)}")
            for column, k in zip(st.columns(len(classes)), classes):
                draw_panel(column, loaded_image, v, k, title_image=False)
    bar_image = colorbar(colormap, length=256, thickness=12, vertical=False)
    left, middle, right = st.columns([1, 6, 1])
    left.caption("0: no evidence")
    middle.image(bar_image, width="stretch")
    right.caption("1: strongest")
    st.caption(f"Maps are computed at the model's {w}×{h} input and drawn over the original "
               f"{w0}×{h0} image; each map is scaled so its strongest point is 1.")
    export_options = [*model_options(model), "--method", method, "--score", score,
                      "--colormap", colormap, "--opacity", str(opacity),
                      "--threshold", str(threshold)]
    if layer_arg is not None:
        export_options += ["--layer", layer_arg]
    for name, value in params.items():
        if value is not None:
            export_options += [f"--{name.replace('_', '-')}", str(value)]
    for k in classes:
        export_options += ["--class", str(k)]
    bundle_button("heatmap", export_options, [loaded for loaded, _ in images],
                  {"page": "Class heatmaps", "model": model.title, "method": method,
                   "layer": layer_arg, "score": score, "classes": classes,
                   "colormap": colormap, "opacity": opacity, "threshold": threshold,
                   "params": params, "images": [loaded.name for loaded, _ in images]},
                  key="cam_bundle")


def plotly_colorscale(name: str):
    table = lookup_table(name)
    stops = np.linspace(0, 255, 11).astype(int)
    return [[i / 10, "rgb({}, {}, {})".format(*table[s])] for i, s in enumerate(stops)]


with interactive_tab:
    k = st.radio("Class", classes, key="cam_hover_class", horizontal=True,
                 format_func=class_title) if len(classes) > 1 else choice
    result = results[(view.digest, k)]
    z = np.where(result.heatmap >= threshold, result.heatmap, np.nan)
    # drawn in the original image's pixel coordinates (its aspect ratio), values as computed
    dx, dy = w0 / w, h0 / h
    figure = go.Figure()
    if show == "overlay":
        figure.add_trace(go.Image(z=view.display, dx=dx, dy=dy, hoverinfo="skip"))
    figure.add_trace(go.Heatmap(
        z=z, dx=dx, dy=dy, zmin=0.0, zmax=1.0, colorscale=plotly_colorscale(colormap),
        opacity=opacity if show == "overlay" else 1.0,
        colorbar=dict(title=dict(text="heat"), thickness=12),
        hovertemplate="x %{x:.0f}, y %{y:.0f}<br>heat %{z:.3f}<extra></extra>"))
    figure.update_layout(height=560, margin=dict(l=10, r=10, t=30, b=10),
                         title=dict(text=f"{result.label} ({k}): {METHOD_TITLES[method]}",
                                    font=dict(size=14)))
    figure.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain")
    figure.update_xaxes(constrain="domain")
    st.plotly_chart(figure, width="stretch")
    st.caption(f"{w}×{h} values (the model's input resolution) drawn over the {w0}×{h0} image; "
               "hover for the heat at a pixel.")
