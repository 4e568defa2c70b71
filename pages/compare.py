"""Compare methods: explanations of one class side by side, how faithful each is to the
model (deletion / insertion curves) and how much they agree (rank correlation)."""
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui import notes
from ui.charts import plotly_chart
from ui.cost import SLOW_SECONDS, cost_text, run_seconds
from ui.export import bundle_button, model_options
from ui.feedback import run_button, show_error
from ui.presenter import colormap_choices, controls
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
from viz_core.runtime.compared import compared_map, compared_map_ready

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
with st.expander("Which method when", icon=":material/table_chart:"):
    st.dataframe(registry.which_method_rows(model.info), hide_index=True, width="stretch",
                 key="cmp_which_table")
    st.caption(f"Costs for {model.title} at the Class heatmaps page's settings (used here too), "
               "in forward passes of the whole model.")
bench = workbench()
view = model.view(image)
info = model.info

try:
    top = top_classes(model, view, 5)
except VizError as exc:
    show_error(exc)
    st.stop()
probability_of = {k: p for k, _, p in top}

# -- what to compare ----------------------------------------------------------------------------
settings = controls("Methods, class and display")  # collapsed in presenter mode
with settings:
    options = map_methods()
    if any(m not in options for m in st.session_state.get("cmp_methods", [])):
        st.session_state.pop("cmp_methods")  # a method no longer registered
    methods = st.multiselect("Methods", options, default=list(compare_methods()),
                             **named_many("cmp_methods", options, compare_methods()), format_func=method_title,
                             help="By default the fast methods (a pass or two each). Layer "
                             "methods at the last conv layer "
                             f"({literal_code(info.last_conv_layer)}), pixel-gradient and "
                             "perturbation methods, with the Class heatmaps page's settings, so "
                             "results are shared.")
    c1, c2, c3 = st.columns(3)
    k = c1.selectbox(f"Class to explain ({top_title(len(top))})", [k for k, _, _ in top],
                     **named("cmp_class", [k for k, _, _ in top]),
                     format_func=lambda i: f"{model.label(i)} ({i}) · p = {probability_of[i]:.1%}")
    steps = c2.select_slider("Curve steps", STEP_CHOICES, value=DEFAULT_CURVE_STEPS,
                             key="cmp_steps", **LINKED,
                             help="Points on each deletion / insertion curve: each step removes "
                             "(or reveals) this fraction of the pixels. Every point is one "
                             "image through the model.")
    baseline = c3.selectbox("Removed pixels become", BASELINES,
                            index=BASELINES.index(DEFAULT_BASELINE),
                            **named("cmp_baseline", BASELINES, DEFAULT_BASELINE),
                            format_func=lambda b: b.capitalize(),
                            help="\n\n".join(f"**{b}**: {t}" for b, t in BASELINE_HELP.items()))

if not methods:
    st.info("Choose at least one method.", icon=":material/checklist:")
    st.stop()
target = Target(k, "logit")


# Each map is made with the Class heatmaps page's default settings through the shared
# workbench, so a map computed there is reused here, and the other way round.
def map_cached(method: str) -> bool:
    return compared_map_ready(bench, model, view, target, method)


def compute_map(method: str, progress=None) -> np.ndarray:
    return compared_map(bench, model, view, target, method, progress=progress)


def curve_kwargs():
    return dict(steps=steps, baseline=baseline)


random_map = np.zeros(info.input_shape[:2], dtype="float32")  # all ties: a random order
pending_maps = [m for m in methods if not map_cached(m)]
pending = bool(pending_maps) or not all(
    bench.is_cached(deletion_insertion, model, view, k, compute_map(m), **curve_kwargs())
    for m in methods) or not bench.is_cached(deletion_insertion, model, view, k, random_map,
                                             **curve_kwargs())


def passes_for(chosen, curve_steps: int) -> float:
    """Forward passes' worth of the maps of ``chosen`` not computed yet, plus every curve."""
    channels = max(2, int(info.layer(info.last_conv_layer).output_shape[-1] or 2))
    images = (len(chosen) + 1) * 2 * (curve_steps + 1)
    return images + sum(registry.get(m).passes(info, page_params(m, channels))
                        for m in chosen if not map_cached(m))


quick = steps <= QUICK_STEPS
if pending:
    slow = ", ".join(method_title(m) for m in pending_maps) or "none"
    images = (len(methods) + 1) * 2 * (steps + 1)
    passes = passes_for(methods, steps)
    st.info(f"Maps still to compute: {slow}. Then {images} images go through the model for the "
            f"deletion and insertion curves: {cost_text(model, passes)}.",
            icon=":material/hourglass:")
    quick_methods = [m for m in QUICK_METHODS if m in options]
    if run_seconds(model, passes) > SLOW_SECONDS and not (
            quick and len(methods) <= len(quick_methods)):
        st.button(f"Quick look: {len(quick_methods)} methods, {QUICK_STEPS} curve steps ("
                  f"{cost_text(model, passes_for(quick_methods, QUICK_STEPS))})",
                  key="cmp_quick_go", icon=":material/bolt:", on_click=_quick_preset,
                  help="One method of each kind (" + ", ".join(map(method_title, quick_methods))
                  + ") and coarser curves: a first answer in a fraction of the time.")

    def compare_all(bar) -> None:
        """Every pending map, then every curve; ``bar`` shows the share of these parts done."""
        parts = ([(method_title(m), lambda p, m=m: compute_map(m, p)) for m in pending_maps]
                 + [(f"{method_title(m)} curves",
                     lambda p, m=m: bench.run(deletion_insertion, model, view, k,
                                              compute_map(m), progress=p, **curve_kwargs()))
                    for m in methods]
                 + [("random-order curves",
                     lambda p: bench.run(deletion_insertion, model, view, k, random_map,
                                         progress=p, **curve_kwargs()))])
        for n, (label, run) in enumerate(parts):
            run(lambda fraction, message, n=n, label=label:
                bar((n + fraction) / len(parts), f"{label}: {message}"))

    if not run_button(f"Compare {len(methods)} methods", "Comparing methods", "cmp_run",
                      compare_all):
        st.stop()

try:
    maps = {m: compute_map(m) for m in methods}
    curves = {m: bench.run(deletion_insertion, model, view, k, maps[m], **curve_kwargs())
              for m in methods}
    curves[RANDOM] = bench.run(deletion_insertion, model, view, k, random_map, **curve_kwargs())
except VizError as exc:
    show_error(exc)
    st.stop()

# -- the maps, side by side -------------------------------------------------------------------
st.subheader(f"{literal(model.label(k))} ({k}): where each method sees the evidence")
d1, d2, d3 = controls("Display", normal="plain", into=settings).columns(3)
colormap = d1.selectbox("Colour map", colormap_choices(COLOUR_MAPS), key="cmp_colormap", **LINKED)
show = d2.radio("Show", ("overlay", "heatmap"), **named("cmp_show", ("overlay", "heatmap")),
                horizontal=True,
                format_func={"overlay": "Overlay", "heatmap": "Map alone"}.get)
opacity = d3.slider("Opacity at the hottest point", 0.0, 1.0, 1.0, step=0.05, key="cmp_opacity",
                    **LINKED, disabled=show != "overlay",
                    help="The colour's opacity follows the heat: the photo is untouched where "
                         "a map is 0 (Class heatmaps also offers an even tint).")


def picture(heat: np.ndarray) -> np.ndarray:
    return compare_picture(image.pixels, heat, show=show, opacity=opacity, colormap=colormap)


per_row = min(len(methods), 6)
for row in range(0, len(methods), per_row):
    for column, method in zip(st.columns(per_row), methods[row:row + per_row]):
        curve = curves[method]
        with column:
            st.markdown(f"**{method_title(method)}**")
            st.image(picture(maps[method]), width="stretch", output_format="PNG",
                     caption=f"deletion AUC {curve.deletion_auc:.3f} · insertion AUC "
                     f"{curve.insertion_auc:.3f}")
            if not np.any(maps[method] > 0):
                st.caption(":orange[No positive evidence: the map is empty.]")
left, middle, right = st.columns([1, 6, 1])
left.caption("0: none")
middle.image(colorbar(colormap, length=256, thickness=12, vertical=False,
                      blend="heat" if show == "overlay" else "uniform"), width="stretch")
right.caption("1: strongest")
st.caption("Every map is scaled so its strongest point is 1 and drawn with the same colours, "
           f"over the original {image.pixels.shape[1]}×{image.pixels.shape[0]} image"
           + ("; the colour's opacity follows the heat, so the photo shows where a map is 0."
              if show == "overlay" else ".")
           + (f" Quick look: {len(methods)} method{'s' if len(methods) > 1 else ''} and "
              f"{steps} curve steps, so the curves below are coarse; more steps give smoother "
              "curves." if quick else ""))
bundle_button(
    "compare",
    model_options(model) + ["--class", str(k), "--methods", ",".join(methods), "--steps",
                            str(steps), "--baseline", baseline, "--colormap", colormap,
                            "--opacity", str(opacity), "--show", show],
    [image],
    {"page": "Compare methods", "model": model.title, "image": image.name, "class": k,
     "label": model.label(k), "methods": list(methods), "steps": steps, "baseline": baseline,
     "colormap": colormap, "opacity": opacity, "show": show,
     "deletion_auc": {m: curves[m].deletion_auc for m in methods},
     "insertion_auc": {m: curves[m].insertion_auc for m in methods}},
    key="cmp_bundle")

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
