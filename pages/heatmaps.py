"""Class heatmaps: where the image holds evidence for a class (Grad-CAM and its family)."""
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui import notes
from ui.charts import plotly_chart
from ui.classes import second_class, top_title
from ui.export import bundle_button, model_options
from ui.feedback import ProgressBar, run_button, show_error
from ui.presenter import colormap_choices, controls
from ui.page import page_setup, remember
from ui.settings import LINKED, linked_choice, named
from ui.state import workbench
from ui.text import literal, literal_code
from viz_core.methods import registry
from viz_core.features.activations import feature_map_layers
from viz_core.methods.heatmap import class_heatmap, top_classes
from viz_core.methods.steps import forward_seconds
from viz_core.errors import VizError
from viz_core.render import apply_colormap, colorbar, overlay_heatmap, png_bytes
from viz_core.maps import resize_map
from viz_core.render.choices import BLENDS
from viz_core.render.colormaps import lookup_table
from viz_core.runtime.plan import Plan, Step
from viz_core.models.targets import Target

COLOUR_MAPS = ("viridis", "jet", "magma", "inferno", "plasma", "cividis", "turbo", "gray")
NONE = -1
SCORE_TITLES = {
    "logit": "Logit (before softmax, as in the Grad-CAM paper)",
    "probability": "Probability (after softmax, as in the R tutorial)",
}
BLEND_TITLES = {"heat": "Follows the heat", "uniform": "Even"}

page = page_setup(
    "Class heatmaps",
    "Which parts of the image made the model choose a class? Grad-CAM weighs every feature map "
    "of a convolutional layer by how much the class score grows with it, adds them up and keeps "
    "the positive part: bright = evidence for the class.",
)
model, image, note = page.model, page.image, page.note
bench = workbench()
view = model.view(image)
second_image = page.second
info = model.info
# the layers with feature maps, as on Feature maps: the input layer is the image itself
cam_layers = feature_map_layers(info)

try:
    top = top_classes(model, view, 5)
except VizError as exc:
    show_error(exc)
    st.stop()


def class_title(k: int) -> str:
    return f"{model.label(k)} ({k})"


# A new model or image starts from its own top class, compared with its runner-up (on a sample
# scene, the other shape in it: ui.classes); a new model also from its last conv layer (widget
# values of another model may not exist here).
context = (model.identity, view.digest)
previous = remember("cam_context", context)
if previous != context:
    # A shared link's classes win on the page's first visit (see ui.settings).
    first_visit = previous is None
    wanted, wanted_2 = (
        linked_choice("cam_class", [k for k, _, _ in top] + [NONE]),
        linked_choice("cam_class_2", [NONE, *range(len(model.labels))])) if first_visit else (
        None, None)
    if wanted == NONE:  # "Another class…": the class the link searched for
        st.session_state["cam_class_any"] = linked_choice("cam_class_any",
                                                          range(len(model.labels)))
    st.session_state["cam_class"] = top[0][0] if wanted is None else wanted
    st.session_state["cam_class_2"] = (
        wanted_2 if wanted_2 is not None
        else second_class(model, image, [k for k, _, _ in top], st.session_state["cam_class"],
                          none=NONE))
previous_model = remember("cam_model", model.identity)
if previous_model != model.identity or (
        st.session_state.get("cam_layer") not in cam_layers):
    # A shared link's layer wins on the page's first visit (see ui.settings).
    wanted = linked_choice("cam_layer", cam_layers) if previous_model is None else None
    st.session_state["cam_layer"] = wanted or info.last_conv_layer
    st.session_state.pop("cam_class_any", None)
    for key in [k for k in st.session_state if str(k).startswith("cam_param_")]:
        st.session_state.pop(key)  # sliders sized by another model's layers


# -- the controls beside the pictures ---------------------------------------------------------
# Pictures first (issue 28): the controls that shape a picture sit in a column beside it, the
# rest folds away, so the first map is on the first screen (also on a 1280x720 projector).
controls_column, pictures_column = st.columns([1, 2], gap="medium")
with controls_column, controls("Class, method and display", normal="plain", beside=True):
    # "Another class…" only where there is one beyond the top ones
    options = [k for k, _, _ in top] + ([NONE] if len(model.labels) > len(top) else [])
    probability_of = {k: p for k, _, p in top}
    choice = st.radio(
        f"Class to explain ({top_title(len(top))})", options, **named("cam_class", options),
        format_func=lambda k: ("Another class…" if k == NONE
                               else f"{literal(class_title(k))} · p = {probability_of[k]:.1%}"))
    if choice == NONE:
        choice = st.selectbox(f"Search all {len(model.labels)} classes",
                              range(len(model.labels)),
                              **named("cam_class_any", range(len(model.labels))),
                              format_func=class_title, placeholder="Type a class name…")
    if st.session_state.get("cam_method") not in registry.names():
        st.session_state.pop("cam_method", None)  # a method no longer registered
    method = st.selectbox("Method", registry.names(), **named("cam_method", registry.names()),
                          format_func=registry.title,
                          help="\n\n".join(f"**{s.title}**: {s.help}"
                                           for s in registry.specs()))
    spec = registry.get(method)
    layers = list(cam_layers)
    shapes = {entry.path: entry.output_shape for entry in info.layers}
    layer = st.selectbox(
        "Layer", layers, **named("cam_layer", layers, None),
        disabled=not spec.uses_layer,
        format_func=lambda p: f"{p} · {'×'.join(str(d) for d in shapes[p])}"
        + (" (last conv)" if p == info.last_conv_layer else ""),
        help="Deep layers give coarse maps of whole objects; earlier layers finer maps of "
             "parts. Pixel methods work on the image itself and ignore the layer.")
    # -- display options (never recompute) ----------------------------------------------------
    d1, d2 = st.columns(2)
    colormap = d1.selectbox("Colour map", colormap_choices(COLOUR_MAPS), key="cam_colormap",
                            **LINKED)
    show = d2.radio("Show", ("overlay", "heatmap"), **named("cam_show", ("overlay", "heatmap")),
                    format_func={"overlay": "Overlay", "heatmap": "Heatmap alone"}.get)
    with st.expander("More settings", icon=":material/tune:"):
        compare_options = [NONE] + [k for k in range(len(model.labels)) if k != choice]
        if st.session_state.get("cam_class_2") not in compare_options:
            st.session_state["cam_class_2"] = NONE
        compare = st.selectbox(
            "Second class, side by side", compare_options,
            **named("cam_class_2", compare_options, None),
            format_func=lambda k: "(none)" if k == NONE else class_title(k),
            help="Two classes of one picture, as the Grad-CAM paper's cat and dog: on the demo "
                 "model, pick the circle-and-star scene.")
        score = st.radio("Class score", ("logit", "probability"),
                         **named("cam_score", ("logit", "probability")),
                         format_func=SCORE_TITLES.get, horizontal=False,
                         help="Grad-CAM differentiates the score before the softmax; the "
                              "tutorial's code used the probability. For a single sigmoid "
                              "output, class 0 is scored by −logit (or 1 − p).")
        blend = st.radio("Colour over the photo", BLENDS, **named("cam_blend", BLENDS),
                         horizontal=True, format_func=BLEND_TITLES.get,
                         help="Follows the heat: the photo stays as it is where the map is 0 "
                              "and is fully coloured at the top. Even: the same tint "
                              "everywhere, as the R tutorial and pytorch-grad-cam draw it.")
        if blend == "heat":  # one slider per blend: their defaults differ (1 at the top, 0.5)
            opacity = st.slider("Opacity at the hottest point", 0.0, 1.0, 1.0, step=0.05,
                                key="cam_opacity", **LINKED)
        else:
            opacity = st.slider("Opacity", 0.0, 1.0, 0.5, step=0.05, key="cam_even_opacity",
                                **LINKED)
        threshold = st.slider("Threshold", 0.0, 0.95, 0.0, step=0.05, key="cam_threshold",
                              **LINKED, help="Heat below this is not coloured.")
        channels = max(2, int(shapes[layer][-1] or 2))  # sliders that count channels
        # the defaults the Compare page and the warm-up use too (one workbench entry for all)
        defaults = spec.page_params(channels)
        params = {}
        for param in spec.params:  # one widget per parameter the registry offers the page
            if param.page is None:
                continue
            key = f"cam_param_{method}_{param.name}"
            number = int if param.kind == "int" else float
            low, high, step = (number(v) for v in param.page)
            if param.channels:
                high = channels
                if st.session_state.get(key, 0) > channels:  # another layer's value
                    st.session_state.pop(key)
            value = defaults[param.name]
            value = high if value is None else min(max(number(value), low), high)
            params[param.name] = st.slider(param.help.capitalize(), low, high, value,
                                           step=step, key=key, **LINKED,
                                           help=f"{spec.title}: {param.help}; from "
                                                f"{param.low} to {param.high}.")
            if param.channels and params[param.name] == channels:
                params[param.name] = None  # every channel

classes = [choice] + ([compare] if compare != NONE else [])
h0, w0 = image.pixels.shape[:2]
h, w = info.input_shape[:2]
images = [(image, view)] + ([(second_image, model.view(second_image))] if second_image else [])
layer_arg = layer if spec.uses_layer else None
try:
    # The first image shows the chosen classes; a second image its own most probable classes
    # (as many), not the first image's.
    classes_of = {v.digest: (classes if v.digest == view.digest else
                             [k for k, _, _ in top_classes(model, v, len(classes))])
                  for _, v in images}
except VizError as exc:
    show_error(exc)
    st.stop()

# -- the plan: one map per image and class, and the command that draws the same ------------------
pairs = [(v, k) for _, v in images for k in classes_of[v.digest]]
export_options = [*model_options(model), "--method", method, "--score", score,
                  "--colormap", colormap, "--blend", blend, "--opacity", str(opacity),
                  "--threshold", str(threshold)]
if layer_arg is not None:
    export_options += ["--layer", layer_arg]
for name, value in params.items():
    if value is not None:
        export_options += [f"--{name.replace('_', '-')}", str(value)]
for k in classes:
    export_options += ["--class", str(k)]
plan = Plan([Step(class_heatmap, (model, v, Target(k, score)),
                  dict(method=method, layer=layer_arg, **params)) for v, k in pairs],
            "heatmap", export_options)
todo = plan.pending(bench)


def cost_text(passes: float, maps: int) -> str:
    """"about 520 forward passes' worth, ~40 s here" for ``maps`` maps of this method."""
    seconds = passes * maps * forward_seconds(model)  # measured once per model
    when = f"~{seconds:.0f} s" if seconds >= 2 else "a second or two"
    return (f"about {registry.format_passes(passes)}' worth per map, {when} here for "
            f"{maps} map" + ("s" if maps > 1 else ""))


notes.show(notes.heatmaps(model, model.label(choice), spec.title, layer_arg), where=note)
with controls_column.expander("Which method when", icon=":material/table_chart:"):
    st.dataframe(registry.which_method_rows(info), hide_index=True, width="stretch",
                 key="cam_which_table")
    st.caption(f"Costs for {model.title} at the page's settings, in forward passes of the "
               "whole model (a gradient with respect to the pixels counts as 3).")

# -- the pictures, beside the controls --------------------------------------------------------
with pictures_column:
    if todo and not spec.fast:
        try:
            passes = spec.passes(info, params, layer_arg)
        except VizError as exc:
            show_error(exc)
            st.stop()
        st.info(f"{spec.title} takes {cost_text(passes, len(todo))}.",
                icon=":material/hourglass:")

        # Heavy work waits its turn in the server's queue (light methods below never do); the
        # same maps asked for by several sessions are one job.
        if not run_button(f"Compute {spec.title}", f"Computing {spec.title}", "cam_run",
                          lambda bar: plan.run(bench, bar), job_key=plan.key()):
            st.stop()

    try:
        if todo:  # light methods only: computed in this run
            bar = ProgressBar(f"Computing {spec.title}")
            plan.run(bench, bar)
            bar.done()
        results = {(v.digest, k): result for (v, k), result in zip(pairs, plan.results(bench))}
    except VizError as exc:
        show_error(exc)
        st.stop()


    def picture(loaded_image, result) -> np.ndarray:
        """What one panel shows, at the original image's resolution (uint8 RGB)."""
        if show == "overlay":
            return overlay_heatmap(loaded_image.pixels, result.heatmap, opacity=opacity,
                                   colormap=colormap, threshold=threshold, blend=blend)
        h, w = loaded_image.pixels.shape[:2]
        heat = resize_map(result.heatmap, h, w)
        return apply_colormap(np.where(heat >= threshold, heat, 0.0), colormap)


    def panel_caption(result) -> str:
        where = f"at {literal_code(result.layer)}" if result.layer != "input" else "on the pixels"
        text = (f"p = {result.probability:.1%} · {registry.title(result.method)} {where} · score: "
                f"{result.score_kind} = {result.score:.3g}")
        if result.attribution_sum is not None:
            text += f" · attributions sum to {result.attribution_sum:.4g}"
            if result.score_difference is not None:  # LRP has no baseline: it hands back the score
                text += f", score change {result.score_difference:.4g}"
        return text


    def draw_panel(column, loaded_image, v, k, title_image: bool) -> None:
        result = results[(v.digest, k)]
        shown = picture(loaded_image, result)
        with column:
            prefix = f"{literal(loaded_image.name)} · " if title_image else ""
            with st.container(gap="xxsmall"):  # the title close to its picture
                st.markdown(f"{prefix}**{literal(result.label)}** ({k})")
                encoded = png_bytes(shown)  # once, for the picture and its download
                st.image(encoded, width="stretch", caption=panel_caption(result))
            if result.empty:
                st.warning("No positive evidence for this class here: the map is empty.",
                           icon=":material/info:")
            st.download_button(
                "Download PNG", encoded, mime="image/png",
                file_name=f"{loaded_image.name}_{method.replace('+', 'p')}_{k}.png",
                key=f"cam_download_{loaded_image.digest[:12]}_{k}", icon=":material/download:")


    pictures_tab = st.container()  # the pictures first; the interactive view folds away below
    interactive_tab = st.expander("Interactive (values on hover)", icon=":material/ads_click:")
    with pictures_tab:
        if len(classes) == 1:
            # one class: the images side by side (at least two columns, so one picture is not huge)
            columns = st.columns(max(2, len(images)))
            for column, (loaded_image, v) in zip(columns, images):
                draw_panel(column, loaded_image, v, classes_of[v.digest][0],
                           title_image=len(images) > 1)
        else:
            # two classes: one row per image, the classes side by side
            for loaded_image, v in images:
                if len(images) > 1:
                    st.markdown(f"##### {literal(loaded_image.name)}")
                for column, k in zip(st.columns(len(classes)), classes_of[v.digest]):
                    draw_panel(column, loaded_image, v, k, title_image=False)
        overlaid = show == "overlay"
        bar_image = colorbar(colormap, length=256, thickness=12, vertical=False,
                             blend=blend if overlaid else "uniform")
        left, middle, right = st.columns([1, 6, 1])
        left.caption("0: no evidence")
        middle.image(bar_image, width="stretch")
        right.caption("1: strongest")
        how = (" The colour's opacity follows the heat: where the map is 0 the photo is "
               "untouched (the bar fades into grey, standing for the photo)."
               if overlaid and blend == "heat" else "")
        st.caption(f"Maps are computed at the model's {w}×{h} input and drawn over the original "
                   f"{w0}×{h0} image; each map is scaled so its strongest point is 1.{how}")
        # The command explains the same classes in every image: a second image with classes of its
        # own stays out of the bundle (its parameters say so).
        exported = [loaded for loaded, v in images if classes_of[v.digest] == classes]
        bundle_button(plan.command, list(plan.options), exported,
                      {"page": "Class heatmaps", "model": model.title, "method": method,
                       "layer": layer_arg, "score": score, "classes": classes,
                       "colormap": colormap, "blend": blend, "opacity": opacity,
                       "threshold": threshold,
                       "params": params, "images": [loaded.name for loaded in exported],
                       "not_exported": [loaded.name for loaded, v in images
                                        if classes_of[v.digest] != classes]},
                      key="cam_bundle")


    def plotly_colorscale(name: str, fade: float | None = None):
        """Plotly's colour scale of ``name``; ``fade``: each stop's alpha is its heat times
        ``fade`` (the heat blend: transparent at 0)."""
        table = lookup_table(name)
        stops = np.linspace(0, 255, 11).astype(int)
        if fade is None:
            return [[i / 10, "rgb({}, {}, {})".format(*table[s])] for i, s in enumerate(stops)]
        return [[i / 10, "rgba({}, {}, {}, {:.3f})".format(*table[s], fade * i / 10)]
                for i, s in enumerate(stops)]


    with interactive_tab:
        k = st.radio("Class", classes, **named("cam_hover_class", classes), horizontal=True,
                     format_func=class_title) if len(classes) > 1 else choice
        result = results[(view.digest, k)]
        z = np.where(result.heatmap >= threshold, result.heatmap, np.nan)
        # drawn in the original image's pixel coordinates (its aspect ratio), values as computed
        dx, dy = w0 / w, h0 / h
        figure = go.Figure()
        if show == "overlay":
            figure.add_trace(go.Image(z=view.display, dx=dx, dy=dy, hoverinfo="skip"))
        figure.add_trace(go.Heatmap(
            z=z, dx=dx, dy=dy, zmin=0.0, zmax=1.0,
            colorscale=plotly_colorscale(colormap, opacity if overlaid and blend == "heat"
                                         else None),
            opacity=opacity if overlaid and blend != "heat" else 1.0,
            colorbar=dict(title=dict(text="heat"), thickness=12),
            hovertemplate="x %{x:.0f}, y %{y:.0f}<br>heat %{z:.3f}<extra></extra>"))
        figure.update_layout(height=560, margin=dict(l=10, r=10, t=30, b=10),
                             title=dict(text=f"{result.label} ({k}): {spec.title}",
                                        font=dict(size=14)))
        figure.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain")
        figure.update_xaxes(constrain="domain")
        plotly_chart(figure, width="stretch")
        st.caption(f"{w}×{h} values (the model's input resolution) drawn over the {w0}×{h0} image; "
                   "hover for the heat at a pixel.")
