"""Sanity check: does each explanation change when the model's layers are randomised? And the
pointing game: on fresh shape scenes, does each method's strongest point hit the shape?"""
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui import notes
from ui.charts import plotly_chart
from ui.cost import SLOW_SECONDS, cost_text, run_seconds
from ui.export import bundle_button, model_options
from ui.feedback import run_button, show_error
from ui.presenter import colormap_choices, controls, presenter_on
from ui.settings import LINKED, named, named_many, within
from ui.classes import top_title
from ui.page import page_setup
from ui.state import workbench
from ui.text import literal
from viz_core.methods import registry
from viz_core.methods.heatmap import top_classes
from viz_core.errors import VizError
from viz_core.metrics.maps import map_methods
from viz_core.metrics.pointing import DEFAULT_TOLERANCE, pointing_game
from viz_core.metrics.sanity import (
    DEFAULT_METRIC,
    DEFAULT_SEED,
    DEFAULT_THRESHOLD,
    EDGE_CONTROL,
    METRICS,
    cascading_randomisation,
    default_methods,
    default_steps,
    fast_params,
    flag_rule,
    sanity_methods,
    weighted_layers,
)
from viz_core.metrics.sanity import method_title
from viz_core.models.targets import Target
from viz_core.render.compare import sanity_picture

COLOUR_MAPS = ("viridis", "magma", "inferno", "plasma", "cividis", "gray", "jet", "turbo")
METRIC_TITLES = {"spearman": "Spearman rank correlation", "ssim": "SSIM (structural similarity)"}
SCENE_CHOICES = (10, 20, 50, 100)
ANSWER_MOVED = 0.01  # a change of the class probability below this is "hardly moved"
PALETTE = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692",
           "#B6E880", "#FF97FF", "#FECB52", "#2E91E5", "#E15F99", "#1CA71C", "#DA16FF",
           "#FB0D0D")
COLOURS = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(sanity_methods())}
COLOURS[EDGE_CONTROL] = "#888888"
# The quick look for slow models: a layer method, a pixel-gradient method and the control, on
# the top three layers (the ones whose randomisation a faithful map shows first).
QUICK_METHODS = ("gradcam", "saliency", EDGE_CONTROL)
QUICK_LAYERS = 3


def _quick_preset() -> None:
    st.session_state["san_methods"] = [m for m in QUICK_METHODS if m in sanity_methods()]
    st.session_state["san_steps"] = QUICK_LAYERS


page = page_setup(
    "Sanity check",
    "An explanation of a model should change when the model changes. One click re-initialises "
    "the model's layers with random weights, one at a time from the output down (Adebayo et "
    "al., *Sanity Checks for Saliency Maps*), and redraws every method's map after each step. "
    "A map that stays the same although the model is now random explains the image, not the "
    "model: it is flagged. Your model is never changed; the check works on a copy.",
)
model, image = page.model, page.image
notes.show(notes.sanity(model), where=page.note)
bench = workbench()
view = model.view(image)

try:
    top = top_classes(model, view, 5)
    layers = weighted_layers(model.model)
except VizError as exc:
    show_error(exc)
    st.stop()
probability_of = {k: p for k, _, p in top}

# -- settings -------------------------------------------------------------------------------------
with controls("Methods and settings"):  # collapsed in presenter mode
    methods = st.multiselect(
        "Methods", sanity_methods(), default=list(default_methods()),
        **named_many("san_methods", sanity_methods(), default_methods()),
        format_func=method_title,
        help="The edge detector ignores the model completely (a Sobel filter of the image): it "
        "is the control that must fail. Slow methods run cheaper settings here ("
        + "; ".join(f"{method_title(m)}: " + ", ".join(f"{k} {v}" for k, v in p.items())
                    for m, p in fast_params(sanity_methods()).items())
        + "), because every map is drawn once per step.")
    c1, c2, c3 = st.columns(3)
    k = c1.selectbox(f"Class to explain ({top_title(len(top))})", [k for k, _, _ in top],
                     **named("san_class", [k for k, _, _ in top]),
                     format_func=lambda i: f"{model.label(i)} ({i}) · p = {probability_of[i]:.1%}")
    seed = int(c1.number_input("Seed of the random weights", min_value=0, max_value=2**31 - 1,
                               value=DEFAULT_SEED, step=1, key="san_seed", **LINKED))
    if len(layers) > 1:
        within("san_steps", 1, len(layers))  # kept from a model with more layers
        steps = c2.slider("Layers to randomise (from the top)", 1, len(layers),
                          default_steps(len(layers)), key="san_steps", **LINKED,
                          help=f"{literal(model.title)} has {len(layers)} layers with weights; the "
                          f"first to be randomised is {layers[0]!r}.")
    else:
        steps = default_steps(len(layers))  # a single layer: nothing to choose
    metric = c2.radio("Similarity", METRICS, index=METRICS.index(DEFAULT_METRIC),
                      **named("san_metric", METRICS, DEFAULT_METRIC), format_func=METRIC_TITLES.get,
                      help="How alike a map is to the trained model's map. Spearman compares "
                      "the order of importance of the pixels; SSIM the local structure.")
    threshold = c3.slider("Flag when similarity stays above", 0.5, 0.99, DEFAULT_THRESHOLD,
                          step=0.01, key="san_threshold", **LINKED,
                          help="A method is flagged when its map's similarity to the original "
                          "stays above this at every step, even with the top layers random.")

if not methods:
    st.info("Choose at least one method.", icon=":material/checklist:")
    st.stop()

params = fast_params(methods)
# similarity measure and threshold are applied below: changing them never recomputes
call = ((cascading_randomisation, model, view, Target(k)),
        dict(methods=tuple(methods), steps=steps, params=params, seed=seed))
sanity_ready = bench.is_cached(*call[0], **call[1])
# A Keras Applications model with random weights is untrained: say so wherever the page would
# call the starting point "trained".
original = "untrained" if model.weights == "none" else "trained"



def passes_for(chosen, layer_count: int) -> float:
    """Forward passes' worth of the check: every map of ``chosen`` (at the check's cheaper
    settings) and the class probability, once per version of the model."""
    cheap = fast_params(chosen)
    per_version = 1.0 + sum(
        0.0 if m == EDGE_CONTROL else registry.get(m).passes(model.info, cheap.get(m))
        for m in chosen)
    return per_version * (layer_count + 1)


quick_methods = [m for m in QUICK_METHODS if m in sanity_methods()]
quick_layers = min(QUICK_LAYERS, len(layers))
quick = steps < default_steps(len(layers))
st.subheader("Cascading randomisation")
if not sanity_ready:
    passes = passes_for(methods, steps)
    st.info(f"{len(methods)} methods × {steps + 1} versions of the model ({original}, then "
            f"{steps} layer{'s' if steps > 1 else ''} randomised one after the other): "
            f"{cost_text(model, passes)}.", icon=":material/casino:")
    if run_seconds(model, passes) > SLOW_SECONDS and not (
            steps <= quick_layers and len(methods) <= len(quick_methods)):
        st.button(f"Quick look: {len(quick_methods)} methods, top {quick_layers} layers ("
                  f"{cost_text(model, passes_for(quick_methods, quick_layers))})",
                  key="san_quick_go", icon=":material/bolt:", on_click=_quick_preset,
                  help="Grad-CAM, Saliency and the edge control with the top "
                  f"{quick_layers} layers randomised: a first answer in a fraction of the time.")
    run_button("Run sanity check", "Randomising layers", "san_run",
               lambda bar: bench.run(*call[0], progress=bar, **call[1]))

if bench.is_cached(*call[0], **call[1]):
    report = bench.run(*call[0], **call[1])
    similarity = report.similarity(metric)
    flagged = flag_rule(similarity, threshold)
    step_names = [original] + [f"+ {path}" for path in report.layers]

    # -- verdicts --------------------------------------------------------------------------
    # two a row in presenter mode: four columns of its larger type wrapped each box to ~330 px
    columns = st.columns(min(len(report.methods), 2 if presenter_on() else 4))
    for i, method in enumerate(report.methods):
        lowest = float(np.min(similarity[1:, i]))
        with columns[i % len(columns)]:
            if flagged[i]:
                st.error(f"**{method_title(method)}**: does not explain the model. Its map stays "
                         f"alike with the layers random (similarity never below "
                         f"{lowest:.2f} > {threshold:.2f}).", icon=":material/flag:")
            else:
                st.success(f"**{method_title(method)}**: passes. Its map changes with the model "
                           f"(similarity falls to {lowest:.2f}).", icon=":material/check_circle:")

    # -- similarity curves ----------------------------------------------------------------
    figure = go.Figure()
    for i, method in enumerate(report.methods):
        figure.add_trace(go.Scatter(
            x=list(range(report.steps + 1)), y=similarity[:, i], mode="lines+markers",
            name=f"{method_title(method)}{' ⚑ flagged' if flagged[i] else ''}",
            line=dict(color=COLOURS.get(method, "#333333"), width=3 if flagged[i] else 2,
                      dash="dot" if method == EDGE_CONTROL else "solid"),
            customdata=step_names,
            hovertemplate=f"{method_title(method)}<br>%{{customdata}}<br>{metric} %{{y:.3f}}"
                          "<extra></extra>"))
    figure.add_hline(y=threshold, line=dict(color="#d62728", dash="dash", width=1),
                     annotation_text=f"flag above {threshold:.2f}",
                     annotation_position="bottom right")
    figure.update_layout(
        height=460, margin=dict(l=10, r=10, t=10, b=10),
        # The title heads the legend above the plot, so however many rows the legend wraps to
        # (four in presenter mode's larger text), the margin grows to fit both; as the chart's
        # own title it sat in a fixed margin and the legend's rows ran over it.
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0,
                    title=dict(text=f"<b>Similarity to the {original} model's map</b> "
                               f"({METRIC_TITLES[metric]})", side="top",
                               font=dict(size=14))),
        xaxis=dict(title="layers randomised, from the output down", tickmode="array",
                   tickvals=list(range(report.steps + 1)), ticktext=step_names, tickangle=-30),
        yaxis=dict(title={"spearman": "Spearman ρ", "ssim": "SSIM"}[metric], range=[min(-0.1, float(np.nanmin(similarity)) - 0.05), 1.05]))
    plotly_chart(figure, width="stretch", key="san_similarity_chart")
    moved = abs(report.probability[-1] - report.probability[0]) >= ANSWER_MOVED
    st.caption(
        f"p({literal(report.label)}) on this image: {report.probability[0]:.1%} with the "
        f"{original} model, {report.probability[-1]:.1%} with the top {report.steps} layer"
        f"{'s' if report.steps > 1 else ''} random: "
        + ("randomising changed the model's answer." if moved else
           "the answer hardly moved, so it did not rest on these layers' weights"
           + (" (an untrained model's never does)." if original == "untrained" else "."))
        + (f" Quick look: only the top {report.steps} of the model's {len(layers)} weighted "
           "layers were randomised; more layers show how far down each map still changes."
           if quick else "")
    )

    # -- grid of maps ---------------------------------------------------------------------
    st.subheader("Maps at every step")
    g1, g2 = st.columns([1, 3])
    colormap = g1.selectbox("Colour map", colormap_choices(COLOUR_MAPS), key="san_colormap",
                            **LINKED)
    g2.caption("Each row is one method; each column one more layer randomised. Each map is "
               "scaled so its strongest point is 1. The number under a map is its similarity to "
               "the first map of its row.")
    bundle_button(
        "sanity",
        model_options(model) + ["--class", str(k), "--methods", ",".join(methods), "--layers",
                                str(steps), "--seed", str(seed), "--metric", metric,
                                "--threshold", str(threshold), "--colormap", colormap],
        [image],
        {"page": "Sanity check", "model": model.title, "image": image.name, "class": k,
         "label": report.label, "methods": list(report.methods), "layers": list(report.layers),
         "seed": seed, "metric": metric, "threshold": threshold, "colormap": colormap,
         "flagged": {m: flagged[i] for i, m in enumerate(report.methods)}},
        key="san_bundle", where=g1)
    shown_steps = list(range(report.steps + 1))
    st.caption("Steps: " + " · ".join(f"**{i}** {path}" for i, path in
                                       enumerate(report.layers, start=1)) + " (each adds one "
               "more random layer to the previous ones).")
    per_row = min(len(shown_steps), 9)
    for i, method in enumerate(report.methods):
        mark = " · :red[**⚑ does not explain the model**]" if flagged[i] else ""
        st.markdown(f"**{method_title(method)}**{mark}")
        for start in range(0, len(shown_steps), per_row):
            cells = shown_steps[start:start + per_row]
            for column, step in zip(st.columns(per_row), cells):
                column.image(sanity_picture(report, method, step, colormap), width="stretch",
                             output_format="PNG",
                             caption=(original if step == 0 else
                                      f"step {step} · {similarity[step, i]:.2f}"))

# -- pointing game ------------------------------------------------------------------------------
st.divider()
st.subheader("Pointing game (demo model)")
st.caption(
    "The demo model is shown freshly drawn shape scenes it never saw in training. For every "
    "shape, each method explains the shape's class; a *hit* is a map whose strongest point lies "
    f"inside the shape's box (widened by {DEFAULT_TOLERANCE} pixels). The same table comes from "
    "`python -m viz_core evaluate --json`."
)
game_methods = st.multiselect("Methods", map_methods(), default=list(registry.default_names()),
                              **named_many("pg_methods", map_methods(), registry.default_names()),
                              format_func=method_title,
                              help="By default the fast methods; every registered method can "
                              "play. The others (" + ", ".join(
                                  map(method_title, registry.names(fast=False)))
                              + ") run many model passes per shape: slow.")
p2, p3, _ = st.columns([2, 1, 2])
scenes = p2.select_slider("Scenes", SCENE_CHOICES, value=20, key="pg_scenes", **LINKED)
shapes = p3.radio("Shapes per scene", (1, 2), key="pg_shapes", **LINKED, horizontal=True,
                  help="With two shapes, each of another class, a method must also pick the "
                  "right one.")
if not game_methods:
    st.info("Choose at least one method.")
    st.stop()
try:
    demo = model if model.name == "demo" else bench.builtin_model("demo")
except VizError as exc:
    show_error(exc)
    st.stop()
game = ((pointing_game, demo), dict(methods=tuple(game_methods), scenes=scenes, shapes=shapes))
if not bench.is_cached(*game[0], **game[1]):
    if not run_button("Run pointing game", "Pointing game", "pg_run",
                      lambda bar: bench.run(*game[0], progress=bar, **game[1])):
        st.caption(f"{scenes * shapes} shapes × {len(game_methods)} methods.")
if bench.is_cached(*game[0], **game[1]):
    result = bench.run(*game[0], **game[1])
    rows = [{"Method": method_title(s.method), "Hits": s.hits, "Shapes": s.total,
             "Hit rate": s.hit_rate} for s in result.scores]
    st.dataframe(rows, hide_index=True, width="stretch", key="pg_table",
                 column_config={"Hit rate": st.column_config.ProgressColumn(
                     "Hit rate", format="percent", min_value=0.0, max_value=1.0)})
    st.caption(f"{result.scenes} scenes, seeds {result.seed} to "
               f"{result.seed + result.scenes - 1}; {demo.title}.")
