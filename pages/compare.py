"""Compare methods: explanations of one class side by side, how faithful each is to the
model (deletion / insertion curves) and how much they agree (rank correlation)."""
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui import notes
from ui.charts import plotly_chart
from ui.cost import SLOW_SECONDS, cost_text, run_seconds
from ui.export import bundle_button, model_options
from ui.feedback import job_running, run_button, show_error, stopped_here
from ui.presenter import colormap_choices, controls, presenter_on
from ui.classes import top_title
from ui.page import page_setup
from ui.settings import LINKED, named, named_many
from ui.state import workbench
from ui.text import literal, literal_code, plotly_text
from viz_core.methods import registry
from viz_core.methods.heatmap import page_params, top_classes
from viz_core.errors import VizError
from viz_core.metrics import registry as metrics
from viz_core.metrics.agreement import rank_agreement
from viz_core.metrics.evaluation import map_metrics, metrics_passes
from viz_core.metrics.faithfulness import (
    BASELINE_HELP,
    BASELINES,
    DEFAULT_BASELINE,
    DEFAULT_CURVE_STEPS,
    deletion_insertion,
)
from viz_core.metrics.maps import compare_methods, map_methods, method_title
from viz_core.render import colorbar
from viz_core.render.compare import compare_picture
from viz_core.models.targets import Target
from viz_core.runtime.compared import compared_step
from viz_core.runtime.plan import Plan, ResultOf, Step

COLOUR_MAPS = ("viridis", "jet", "magma", "inferno", "plasma", "cividis", "turbo", "gray")
STEP_CHOICES = (10, 20, 50)
RANDOM = "random"  # the reference curve: pixels removed in a random order
# one colour per method in every chart (plotly's default qualitative palette)
PALETTE = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692",
           "#B6E880", "#FF97FF", "#FECB52", "#2E91E5", "#E15F99", "#1CA71C", "#DA16FF",
           "#FB0D0D")
COLOURS = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(map_methods())}
COLOURS[RANDOM] = "#888888"
# The quick look for slow models: one method of each kind (layer gradients, no gradient, pixel
# gradients) and coarser curves, about a quarter of the default's passes.
QUICK_METHODS = ("gradcam", "eigencam", "saliency")
QUICK_STEPS = 10
BASELINE_WORDS = {"blurred": "a blurred copy of the image", "black": "black", "white": "white",
                  "mean": "the image's mean colour"}
# The metrics the curves below are drawn for; every other registered metric is in "More metrics"
CURVE_METRICS = ("deletion_auc", "insertion_auc")


AUTO_SECONDS = 15  # maps and curves that take less here start on arrival (pictures first)


def _quick_preset() -> None:
    st.session_state["cmp_methods"] = [m for m in QUICK_METHODS if m in map_methods()]
    st.session_state["cmp_steps"] = QUICK_STEPS


page = page_setup(
    "Compare methods",
    "One image, one class, several explanation methods side by side at the same scale. Below "
    "them: how *faithful* each map is to the model (remove the pixels it calls important and "
    "watch the class probability) and how much the methods agree with each other.",
)
model, image = page.model, page.image
notes.show(notes.compare(model), where=page.note)
bench = workbench()
view = model.view(image)
info = model.info

try:
    top = top_classes(model, view, 5)
except VizError as exc:
    show_error(exc)
    st.stop()
probability_of = {k: p for k, _, p in top}

# -- what to compare: one compact row above the pictures (issue 28: pictures first) ------------
options = map_methods()
if any(m not in options for m in st.session_state.get("cmp_methods", [])):
    st.session_state.pop("cmp_methods")  # a method no longer registered
if presenter_on():
    # The projector's larger type: the controls in a column beside the maps (class and colours
    # open, the rest folded), so the first map is on the first screen of a 1280x720 projector.
    side, maps_column = st.columns([1, 3], gap="medium")
    with side:
        c_class = c_colour = controls("Class and colours", normal="plain", beside=True)
        c_methods = c_show = c_opacity = controls("Methods and display", normal="folded")
    run_place, maps_place = maps_column.container(), maps_column.container()
else:
    c_methods, c_class, c_colour, c_show, c_opacity = controls(
        "Methods, class and display", normal="plain").columns([3, 1.9, 1.1, 2, 1.4])
    run_place = st.container()  # the maps' progress (or button), right above them
    maps_place = st.container()
methods = c_methods.multiselect(
    "Methods", options, default=list(compare_methods()),
    **named_many("cmp_methods", options, compare_methods()), format_func=method_title,
    help="By default the fast methods (a pass or two each). Layer methods at the last conv "
    f"layer ({literal_code(info.last_conv_layer)}), pixel-gradient and perturbation methods, "
    "with the Class heatmaps page's settings, so results are shared.")
k = c_class.selectbox("Class to explain", [k for k, _, _ in top],
                      **named("cmp_class", [k for k, _, _ in top]),
                      help=f"One of the model's {top_title(len(top))}.",
                      format_func=lambda i: f"{model.label(i)} ({i}) · p = {probability_of[i]:.1%}")
colormap = c_colour.selectbox("Colour map", colormap_choices(COLOUR_MAPS), key="cmp_colormap",
                              **LINKED)
show = c_show.radio("Show", ("overlay", "heatmap"), **named("cmp_show", ("overlay", "heatmap")),
                    horizontal=True,
                    format_func={"overlay": "Overlay", "heatmap": "Map alone"}.get)
opacity = c_opacity.slider("Opacity", 0.0, 1.0, 1.0, step=0.05,
                           key="cmp_opacity", **LINKED, disabled=show != "overlay",
                           help="At the hottest point. The colour's opacity follows the heat: "
                                "the photo is untouched where a map is 0 (Class heatmaps also "
                                "offers an even tint).")
if not methods:
    st.info("Choose at least one method.", icon=":material/checklist:")
    st.stop()
target = Target(k, "logit")
curves_place = st.container()  # below the maps: the curves' settings, cost and button
with curves_place, controls("Faithfulness curves", normal="plain", beside=True):
    s1, s2, curves_run = st.columns([1.3, 1.3, 3], vertical_alignment="bottom")
    steps = s1.select_slider("Curve steps", STEP_CHOICES, value=DEFAULT_CURVE_STEPS,
                             key="cmp_steps", **LINKED,
                             help="Points on each deletion / insertion curve: each step removes "
                             "(or reveals) this fraction of the pixels. Every point is one "
                             "image through the model.")
    baseline = s2.selectbox("Removed pixels become", BASELINES,
                            index=BASELINES.index(DEFAULT_BASELINE),
                            **named("cmp_baseline", BASELINES, DEFAULT_BASELINE),
                            format_func=lambda b: b.capitalize(),
                            help="\n\n".join(f"**{b}**: {t}" for b, t in BASELINE_HELP.items()))
with st.expander("Which method when", icon=":material/table_chart:"):
    st.dataframe(registry.which_method_rows(model.info), hide_index=True, width="stretch",
                 key="cmp_which_table")
    st.caption(f"Costs for {model.title} at the Class heatmaps page's settings (used here too), "
               "in forward passes of the whole model.")


# -- the plan: each map with the Class heatmaps page's settings (shared with that page through
# the workbench), then each map's deletion and insertion curves ---------------------------------
def map_step(method: str) -> Step:
    return compared_step(model, view, target, method, title=method_title(method))


def curve_step(heat, title: str) -> Step:
    return Step(deletion_insertion, (model, view, k, heat), dict(steps=steps, baseline=baseline),
                title=title)


random_map = np.zeros(info.input_shape[:2], dtype="float32")  # all ties: a random order
map_steps = {m: map_step(m) for m in methods}
curve_steps = {m: curve_step(ResultOf(map_steps[m], "heatmap"), f"{method_title(m)} curves")
               for m in methods}
curve_steps[RANDOM] = curve_step(random_map, "random-order curves")
display = ["--colormap", colormap, "--opacity", str(opacity), "--show", show]
maps_plan = Plan(tuple(map_steps.values()))
plan = Plan(maps_plan.steps + tuple(curve_steps.values()), "compare",
            model_options(model) + ["--class", str(k), "--methods", ",".join(methods),
                                    "--steps", str(steps), "--baseline", baseline] + display)


def passes_for(chosen, curve_steps: int) -> float:
    """Forward passes' worth of the maps of ``chosen`` not computed yet, plus every curve
    (``curve_steps`` -1: the maps alone)."""
    channels = max(2, int(info.layer(info.last_conv_layer).output_shape[-1] or 2))
    images = (len(chosen) + 1) * 2 * (curve_steps + 1) if curve_steps >= 0 else 0
    return images + sum(registry.get(m).passes(info, page_params(m, channels))
                        for m in chosen if not (map_steps.get(m) or map_step(m)).ready(bench))


quick = steps <= QUICK_STEPS
ready = {m: step.ready(bench) for m, step in map_steps.items()}
pending_maps = [m for m in methods if not ready[m]]


def new_map_ready() -> bool:
    """Whether a map not drawn yet is ready (the page then draws it)."""
    return any(not ready[m] and map_steps[m].ready(bench) for m in methods)


# Pictures first: the maps alone start on arrival when they are quick here (the default
# methods are a pass or two each, even on VGG16), each drawn as soon as it is ready; the
# curves, a few hundred images, follow below them, on arrival only when quick too.
maps_seconds = run_seconds(model, passes_for(pending_maps, -1))
stopped = stopped_here("cmp_run", plan.key())  # the user stopped the whole comparison
if pending_maps and not stopped and (maps_seconds <= AUTO_SECONDS or job_running("cmp_maps")):
    with run_place:
        run_button(f"Draw {len(pending_maps)} maps", "Drawing the maps", "cmp_maps",
                   lambda bar: maps_plan.run(bench, bar), job_key=maps_plan.key(), auto=True,
                   tick=new_map_ready)
elif not plan.ready(bench):
    images = (len(methods) + 1) * 2 * (steps + 1)
    passes = passes_for(methods, steps)
    quick_methods = [m for m in QUICK_METHODS if m in options]
    with curves_run:
        if not job_running("cmp_run"):  # while it runs, its bar says what it does
            st.info(("Maps still to compute: " + ", ".join(map(method_title, pending_maps))
                     + ". Then " if pending_maps else "")
                    + f"{images} images through the model for the deletion and insertion "
                    f"curves: {cost_text(model, passes)}.", icon=":material/hourglass:")
        if run_seconds(model, passes) > SLOW_SECONDS and not (
                quick and len(methods) <= len(quick_methods)):
            st.button(f"Quick look: {len(quick_methods)} methods, {QUICK_STEPS} curve steps ("
                      f"{cost_text(model, passes_for(quick_methods, QUICK_STEPS))})",
                      key="cmp_quick_go", icon=":material/bolt:", on_click=_quick_preset,
                      help="One method of each kind (" + ", ".join(map(method_title,
                                                                       quick_methods))
                      + ") and coarser curves: a first answer in a fraction of the time.")
        run_button(f"Compare {len(methods)} methods", "Comparing methods", "cmp_run",
                   lambda bar: plan.run(bench, bar), job_key=plan.key(),
                   auto=run_seconds(model, passes) <= AUTO_SECONDS, tick=new_map_ready)


# -- the maps, side by side -------------------------------------------------------------------
def picture(heat: np.ndarray) -> np.ndarray:
    return compare_picture(image.pixels, heat, show=show, opacity=opacity, colormap=colormap)


try:
    maps = {m: map_steps[m].result(bench).heatmap for m in methods if ready[m]}
except VizError as exc:
    show_error(exc)
    st.stop()
curves = ({m: step.result(bench) for m, step in curve_steps.items()} if plan.ready(bench)
          else {})
with maps_place:
    per_row = min(len(methods), 3 if presenter_on() else 6)
    for row in range(0, len(methods), per_row):
        for column, method in zip(st.columns(per_row), methods[row:row + per_row]):
            with column:
                st.markdown(f"**{method_title(method)}**")
                if method not in maps:
                    st.image(np.full((*image.pixels.shape[:2], 3), 238, dtype="uint8"),
                             width="stretch", output_format="PNG",
                             caption="computing…" if job_running("cmp_maps") or job_running(
                                 "cmp_run") else "not computed")
                    continue
                curve = curves.get(method)
                st.image(picture(maps[method]), width="stretch", output_format="PNG",
                         caption=None if curve is None else
                         f"deletion AUC {curve.deletion_auc:.3f} · insertion AUC "
                         f"{curve.insertion_auc:.3f}")
                if not np.any(maps[method] > 0):
                    st.caption(":orange[No positive evidence: the map is empty.]")
    left, middle, right = st.columns([1, 6, 1])
    left.caption("0: none")
    middle.image(colorbar(colormap, length=256, thickness=12, vertical=False,
                          blend="heat" if show == "overlay" else "uniform"), width="stretch")
    right.caption("1: strongest")
    st.caption(f"Where each method sees the evidence for {literal(model.label(k))} ({k}). "
               "Every map is scaled so its strongest point is 1 and drawn with the same "
               f"colours, over the original {image.pixels.shape[1]}×{image.pixels.shape[0]} image"
               + ("; the colour's opacity follows the heat, so the photo shows where a map is 0."
                  if show == "overlay" else ".")
               + (f" Quick look: {len(methods)} method{'s' if len(methods) > 1 else ''} and "
                  f"{steps} curve steps, so the curves below are coarse; more steps give "
                  "smoother curves." if quick else ""))
if not curves:
    st.stop()
bundle_button(
    plan.command, list(plan.options), [image],
    {"page": "Compare methods", "model": model.title, "image": image.name, "class": k,
     "label": model.label(k), "methods": list(methods), "steps": steps, "baseline": baseline,
     "colormap": colormap, "opacity": opacity, "show": show,
     "deletion_auc": {m: curves[m].deletion_auc for m in methods},
     "insertion_auc": {m: curves[m].insertion_auc for m in methods}},
    key="cmp_bundle", where=maps_place)

# -- faithfulness -----------------------------------------------------------------------------
st.subheader("Faithfulness: remove or reveal the most important pixels first")
st.caption(
    f"Pixels are taken in the order each map ranks them, {100 / steps:.0f}% per step; removed "
    f"pixels become {BASELINE_WORDS[baseline]}. "
    "**Deletion**: a faithful map makes the probability drop fast (small area under the curve). "
    "**Insertion**: starting from nothing, a faithful map makes it rise fast (large area). The "
    "grey dashed line takes pixels in a random order. Beware: scattered changed pixels look "
    "like noise, which no training image had, so a model can lose its answer early on the "
    "random order too; the curves compare the methods with each other best."
)


def curve_figure(kind: str) -> go.Figure:
    figure = go.Figure()
    for name in list(methods) + [RANDOM]:
        curve = curves[name]
        values = curve.deletion if kind == "deletion" else curve.insertion
        area = curve.deletion_auc if kind == "deletion" else curve.insertion_auc
        title = "Random order" if name == RANDOM else method_title(name)
        figure.add_trace(go.Scatter(
            x=curve.fractions * 100, y=values, mode="lines", name=f"{title} · AUC {area:.3f}",
            line=dict(color=COLOURS[name], width=2, dash="dash" if name == RANDOM else "solid"),
            hovertemplate=f"{title}<br>%{{x:.0f}}% of pixels {'removed' if kind == 'deletion' else 'shown'}"
                          "<br>p = %{y:.3f}<extra></extra>"))
    figure.update_layout(
        height=440, margin=dict(l=10, r=10, t=40, b=10),
        title=dict(text=("Deletion (lower area = more faithful)" if kind == "deletion"
                         else "Insertion (higher area = more faithful)"), font=dict(size=14)),
        legend=dict(orientation="h", y=-0.3, yanchor="top", x=0, font=dict(size=11)),
        xaxis=dict(title=f"% of pixels {'removed' if kind == 'deletion' else 'revealed'}",
                   range=[0, 100]),
        yaxis=dict(title=f"p({plotly_text(model.label(k))})", range=[0, 1.02]))
    return figure


g1, g2 = st.columns(2)
plotly_chart(curve_figure("deletion"), g1, width="stretch", key="cmp_deletion_chart")
plotly_chart(curve_figure("insertion"), g2, width="stretch", key="cmp_insertion_chart")

curve_specs = [metrics.get(name) for name in CURVE_METRICS]
GAP = "Insertion − deletion ↑"


def auc_row(title: str, curve) -> dict:
    row = {"Method": title, **{spec.column: getattr(curve, spec.name) for spec in curve_specs}}
    return {**row, GAP: curve.insertion_auc - curve.deletion_auc}


rows = [auc_row(method_title(m), curves[m]) for m in methods]
rows.append(auc_row("Random order (reference)", curves[RANDOM]))
st.dataframe(rows, hide_index=True, width="stretch", key="cmp_auc_table",
             column_config={spec.column: st.column_config.NumberColumn(format=spec.format)
                            for spec in curve_specs}
             | {GAP: st.column_config.NumberColumn(format="%.3f")})
best = max(methods, key=lambda m: curves[m].insertion_auc - curves[m].deletion_auc)
st.caption(f"On this image and class, **{method_title(best)}** separates best (largest "
           "insertion − deletion). Areas are in probability × fraction of pixels, from 0 to 1.")

# -- agreement --------------------------------------------------------------------------------
st.subheader("Agreement: do the methods rank the pixels alike?")
if len(methods) < 2:
    st.info("Choose two or more methods to compare their rankings.")
else:
    agreement = rank_agreement({method_title(m): maps[m] for m in methods})
    matrix = agreement.matrix.astype("float64")
    names = list(agreement.methods)
    text = [["n/a" if np.isnan(v) else f"{v:.2f}" for v in row] for row in matrix]
    figure = go.Figure(go.Heatmap(
        z=matrix, x=names, y=names, zmin=-1, zmax=1, colorscale="RdBu", reversescale=True,
        text=text, texttemplate="%{text}", textfont=dict(size=13),
        # the title beside the bar, not above it, where the chart's toolbar appears on hover
        colorbar=dict(title=dict(text="Spearman ρ", side="right"), thickness=12),
        hovertemplate="%{y} vs %{x}<br>ρ = %{z:.3f}<extra></extra>"))
    figure.update_layout(height=120 + 60 * len(names), margin=dict(l=10, r=10, t=30, b=10))
    figure.update_yaxes(autorange="reversed")
    chart, note = st.columns([3, 2])
    plotly_chart(figure, chart, width="stretch", key="cmp_agreement_chart")
    note.caption("Spearman's rank correlation of every pair of maps over all pixels: 1 = the same "
               "order of importance, 0 = unrelated, −1 = opposite. n/a: an empty map ranks "
               "nothing.")

# -- more metrics (every other registered metric) -------------------------------------------
more = [spec for spec in metrics.specs() if spec.name not in CURVE_METRICS]
if not more:
    st.stop()
st.subheader("More metrics: " + ", ".join(spec.title for spec in more))
st.caption(" ".join(f"**{spec.title}** ({spec.paper}; {spec.direction} is better): {spec.help}"
                    for spec in more))
more_names = tuple(spec.name for spec in more)


def metrics_call(method: str):
    # run=bench.run: the map, its curves and each metric's shared work come from the workbench
    return ((map_metrics, model, view, target, method), dict(metrics=more_names))


def metrics_ready() -> bool:
    return all(bench.is_cached(*metrics_call(m)[0], **metrics_call(m)[1]) for m in methods)


if not metrics_ready():
    todo = [m for m in methods if not bench.is_cached(*metrics_call(m)[0], **metrics_call(m)[1])]
    st.caption(f"Computing them for {len(todo)} method{'s' if len(todo) > 1 else ''} costs "
               + cost_text(model, sum(metrics_passes(model, m, more_names, with_map=False)
                                      for m in todo)) + ".")

    def compute_metrics(bar) -> None:
        for n, m in enumerate(todo):
            call, kwargs = metrics_call(m)
            bench.run(*call, run=bench.run, **kwargs,
                      progress=lambda fraction, message, n=n, m=m: bar(
                          (n + fraction) / len(todo), f"{method_title(m)}: {message}"))

    run_button(f"Compute metrics for {len(methods)} methods", "Computing metrics",
               "cmp_metrics_run", compute_metrics)
if metrics_ready():
    scores = [bench.run(*metrics_call(m)[0], run=bench.run, **metrics_call(m)[1])
              for m in methods]
    table = []
    for s in scores:
        row = {"Method": method_title(s.method)}
        for spec in more:
            row[spec.column] = s.values[spec.name]
            other = s.extras.get(spec.name, {}).get("class")
            if other is not None:  # a metric that compares with another class names it
                row[f"{spec.title}: vs class"] = f"{model.label(other)} ({other})"
        table.append(row)
    st.dataframe(table, hide_index=True, width="stretch", key="cmp_metrics_table",
                 column_config={spec.column: st.column_config.NumberColumn(format=spec.format)
                                for spec in more})
