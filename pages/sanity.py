"""Sanity check: does each explanation change when the model's layers are randomised? And the
pointing game: on fresh shape scenes, does each method's strongest point hit the shape?

Settings -> plan -> render: the settings make two plans (the cascading randomisation and the
pointing game, :class:`viz_core.runtime.plan.Plan`); the page asks them whether their results
are ready, the job queue runs them under their keys, and the export bundle repeats their command.
"""
import shlex

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui import notes
from ui.charts import plotly_chart
from ui.cost import SLOW_SECONDS, cost_text, run_seconds
from ui.export import bundle_button, model_options
from ui.feedback import job_running, run_button, show_error
from ui.presenter import colormap_choices, controls, presenter_on
from ui.settings import LINKED, named, named_many, within
from ui.classes import top_title
from ui.page import page_setup
from ui.state import workbench
from ui.text import literal
from viz_core.methods import registry
from viz_core.methods.heatmap import top_classes
from viz_core.errors import VizError
from viz_core.metrics.maps import explanation_map, map_methods
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
    edge_map,
    fast_params,
    flag_rule,
    sanity_methods,
    weighted_layers,
)
from viz_core.metrics.sanity import method_title
from viz_core.models.targets import Target
from viz_core.render import apply_colormap
from viz_core.render.compare import sanity_picture
from viz_core.runtime.plan import Plan, Step

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
PER_ROW = 9  # maps in one line of the grid (the trained model and eight random layers)
TITLE_WIDTH = 1.6  # the method's name beside its maps, in maps' widths


def _quick_preset() -> None:
    st.session_state["san_methods"] = [m for m in QUICK_METHODS if m in sanity_methods()]
    st.session_state["san_steps"] = QUICK_LAYERS


def sanity_plan(model, view, k: int, methods, steps: int, seed: int, *, metric: str,
                threshold: float, colormap: str) -> Plan:
    """The cascading randomisation the page draws, and the ``sanity`` command that redraws it
    (the similarity, threshold and colour map only change the drawing, not the call)."""
    check = Step(cascading_randomisation, (model, view, Target(k)),
                 dict(methods=tuple(methods), steps=steps, params=fast_params(methods),
                      seed=seed), title="Sanity check")
    return Plan((check,), "sanity", model_options(model) + [
        "--class", str(k), "--methods", ",".join(methods), "--layers", str(steps),
        "--seed", str(seed), "--metric", metric, "--threshold", str(threshold),
        "--colormap", colormap])


def trained_maps_plan(model, view, k: int, methods) -> Plan:
    """Every method's map of the model as it is (the cascade's first column), cheap: what
    the page shows while the cascade waits for its button."""
    params = fast_params(methods)
    return Plan(tuple(
        Step(edge_map, (model, view, Target(k)), title=method_title(m)) if m == EDGE_CONTROL
        else Step(explanation_map, (model, view, Target(k), m), params.get(m, {}),
                  title=method_title(m))
        for m in methods))


def game_plan(demo, methods, scenes: int, shapes: int) -> Plan:
    """The pointing game the page shows, and the ``evaluate`` command that plays it again."""
    game = Step(pointing_game, (demo,), dict(methods=tuple(methods), scenes=scenes,
                                             shapes=shapes), title="Pointing game")
    return Plan((game,), "evaluate", model_options(demo) + [
        "--methods", ",".join(methods), "--scenes", str(scenes), "--shapes", str(shapes)])


page = page_setup(
    "Sanity check",
    "Layers get random weights, top first: a map that does not change with them is flagged.",
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

# -- settings: one compact row above the maps, the rest folded -----------------------------
# Pictures first (issue 28): the class, the depth and the colour shape the grid; the methods,
# seed and verdict rule fold away under them (beside them in presenter mode, where a line more
# would push the grid below a 1280x720 first screen; opened there, the fold is narrow).
presenting = presenter_on()
shaping = controls("Class, layers and colour map", normal="plain", beside=True)  # stays open
row = shaping.columns([3, 3, 2, 3] if presenting else [3, 3, 2], vertical_alignment="bottom")
c_class, c_layers, c_colour = row[:3]
c_more = row[3] if presenting else st.container()
k = c_class.selectbox(f"Class to explain ({top_title(len(top))})", [k for k, _, _ in top],
                      **named("san_class", [k for k, _, _ in top]),
                      format_func=lambda i: f"{model.label(i)} ({i}) · p = "
                      f"{probability_of[i]:.1%}")
if len(layers) > 1:
    within("san_steps", 1, len(layers))  # kept from a model with more layers
    steps = c_layers.slider("Layers to randomise (from the top)", 1, len(layers),
                            default_steps(len(layers)), key="san_steps", **LINKED,
                            help=f"{literal(model.title)} has {len(layers)} layers with "
                            f"weights; the first to be randomised is {layers[0]!r}.")
else:
    steps = default_steps(len(layers))  # a single layer: nothing to choose
colormap = c_colour.selectbox("Colour map", colormap_choices(COLOUR_MAPS), key="san_colormap",
                              **LINKED)
with c_more, controls("Methods and settings", normal="folded"):
    methods = st.multiselect(
        "Methods", sanity_methods(), default=list(default_methods()),
        **named_many("san_methods", sanity_methods(), default_methods()),
        format_func=method_title,
        help="The edge detector ignores the model completely (a Sobel filter of the image): it "
        "is the control that must fail. Slow methods run cheaper settings here ("
        + "; ".join(f"{method_title(m)}: " + ", ".join(f"{k} {v}" for k, v in p.items())
                    for m, p in fast_params(sanity_methods()).items())
        + "), because every map is drawn once per step.")
    seed = int(st.number_input("Seed of the random weights", min_value=0,
                               max_value=2**31 - 1, value=DEFAULT_SEED, step=1,
                               key="san_seed", **LINKED))
    metric = st.radio("Similarity", METRICS, index=METRICS.index(DEFAULT_METRIC),
                      **named("san_metric", METRICS, DEFAULT_METRIC),
                      format_func=METRIC_TITLES.get,
                      help="How alike a map is to the trained model's map. Spearman compares "
                      "the order of importance of the pixels; SSIM the local structure.")
    threshold = st.slider("Flag when similarity stays above", 0.5, 0.99, DEFAULT_THRESHOLD,
                          step=0.01, key="san_threshold", **LINKED,
                          help="A method is flagged when its map's similarity to the original "
                          "stays above this at every step, even with the top layers random.")

if not methods:
    st.info("Choose at least one method under **Methods and settings**.",
            icon=":material/checklist:")
    st.stop()

# similarity measure, threshold and colour map are applied below: they never recompute
sanity = sanity_plan(model, view, k, methods, steps, seed, metric=metric, threshold=threshold,
                     colormap=colormap)
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


def title_cell(column, method: str, flagged: bool) -> None:
    """A grid row's name, beside its maps, with the check's verdict."""
    mark = ":red[**⚑ flagged**]" if flagged else ":green[passes]"
    column.markdown(f"**{method_title(method)}**  \n{mark}")


quick_methods = [m for m in QUICK_METHODS if m in sanity_methods()]
quick_layers = min(QUICK_LAYERS, len(layers))
quick = steps < default_steps(len(layers))
pictures = st.container()  # the maps first; the cost and the buttons under them
if not sanity.ready(bench):
    passes = passes_for(methods, steps)
    cheap = run_seconds(model, passes) <= SLOW_SECONDS
    st.info(f"{len(methods)} methods × {steps + 1} versions of the model ({original}, then "
            f"{steps} layer{'s' if steps > 1 else ''} randomised one after the other, on a "
            f"copy): {cost_text(model, passes)}.", icon=":material/casino:")
    if not cheap and not (steps <= quick_layers and len(methods) <= len(quick_methods)):
        st.button(f"Quick look: {len(quick_methods)} methods, top {quick_layers} layers ("
                  f"{cost_text(model, passes_for(quick_methods, quick_layers))})",
                  key="san_quick_go", icon=":material/bolt:", on_click=_quick_preset,
                  help="Grad-CAM, Saliency and the edge control with the top "
                  f"{quick_layers} layers randomised: a first answer in a fraction of the time.")
    # A cheap check (the demo model's: about a second) starts on arrival; a slow one waits
    # for the button, under the trained model's maps.
    run_button("Run sanity check", "Randomising layers", "san_run",
               lambda bar: sanity.run(bench, bar), job_key=sanity.key(), auto=cheap,
               disabled=job_running("san_trained_run"))
    if not job_running("san_run"):  # while the check runs, its bar is the page's news
        trained = trained_maps_plan(model, view, k, methods)
        with pictures:
            if not trained.ready(bench):
                run_button("Draw the trained model's maps", "Drawing the maps",
                           "san_trained_run", lambda bar: trained.run(bench, bar),
                           job_key=trained.key(), auto=True)
            if trained.ready(bench):
                st.caption(f"The {original} model's maps. **Run sanity check** redraws them "
                           "with its layers randomised one after the other.")
                per_row = min(len(methods), 8)
                for start in range(0, len(methods), per_row):
                    for column, method, heat in zip(
                            st.columns(per_row), methods[start:start + per_row],
                            trained.results(bench)[start:start + per_row]):
                        column.image(apply_colormap(heat, colormap), width="stretch",
                                     output_format="PNG", caption=method_title(method))

if sanity.ready(bench):
    report, = sanity.results(bench)
    similarity = report.similarity(metric)
    flagged = flag_rule(similarity, threshold)
    step_names = [original] + [f"+ {path}" for path in report.layers]

    # -- grid of maps: the method's name beside its row -----------------------------------
    shown_steps = list(range(report.steps + 1))
    per_row = min(len(shown_steps), PER_ROW)
    with pictures:
        for i, method in enumerate(report.methods):
            for start in range(0, len(shown_steps), per_row):
                # a small gap: nine gaps of 1rem took a quarter of the row in presenter mode
                cells = st.columns([TITLE_WIDTH] + [1] * per_row, gap="xxsmall")
                if start == 0:
                    title_cell(cells[0], method, flagged[i])
                for column, step in zip(cells[1:], shown_steps[start:start + per_row]):
                    column.image(sanity_picture(report, method, step, colormap),
                                 width="stretch", output_format="PNG",
                                 caption=(original if step == 0 else
                                          f"step {step} · {similarity[step, i]:.2f}"))
        s1, s2 = st.columns([4, 1], vertical_alignment="center")
        s1.caption("Steps: " + " · ".join(f"**{i}** {path}" for i, path in
                                          enumerate(report.layers, start=1))
                   + " (each adds one more random layer to the previous ones). Each map is "
                   "scaled so its strongest point is 1; the number under it is its "
                   "similarity to the first map of its row.")
        bundle_button(
            sanity.command, sanity.options, [image],
            {"page": "Sanity check", "model": model.title, "image": image.name, "class": k,
             "label": report.label, "methods": list(report.methods),
             "layers": list(report.layers), "seed": seed, "metric": metric,
             "threshold": threshold, "colormap": colormap,
             "flagged": {m: flagged[i] for i, m in enumerate(report.methods)}},
            key="san_bundle", where=s2)

    # -- verdicts --------------------------------------------------------------------------
    st.subheader("Does each map follow the model?")
    # two a row in presenter mode: four columns of its larger type wrapped each box to ~330 px
    columns = st.columns(min(len(report.methods), 2 if presenting else 4))
    for i, method in enumerate(report.methods):
        lowest = float(np.min(similarity[1:, i]))
        with columns[i % len(columns)]:
            if flagged[i]:
                control = method == EDGE_CONTROL  # its expected verdict: a note, not an error
                box = st.warning if control else st.error
                box(f"**{method_title(method)}**: does not explain the model"
                    f"{', as the control should not' if control else ''}. Its map stays alike "
                    f"with the layers random (similarity never below {lowest:.2f} > "
                    f"{threshold:.2f}).", icon=":material/flag:")
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
        yaxis=dict(title={"spearman": "Spearman ρ", "ssim": "SSIM"}[metric],
                   range=[min(-0.1, float(np.nanmin(similarity)) - 0.05), 1.05]))
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

# -- pointing game ------------------------------------------------------------------------------
st.divider()
st.subheader("Pointing game (demo model)")
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
game = game_plan(demo, game_methods, scenes, shapes)
st.caption(
    "The demo model is shown freshly drawn shape scenes it never saw in training. For every "
    "shape, each method explains the shape's class; a *hit* is a map whose strongest point lies "
    f"inside the shape's box (widened by {DEFAULT_TOLERANCE} pixels). The same table comes from "
    f"`python -m viz_core {shlex.join(game.cli())} --json`."
)
if not game.ready(bench):
    run_button("Run pointing game", "Pointing game", "pg_run",
               lambda bar: game.run(bench, bar), job_key=game.key())
    if not game.ready(bench) and not job_running("pg_run"):
        st.caption(f"{scenes * shapes} shapes × {len(game_methods)} methods.")
if game.ready(bench):
    result, = game.results(bench)
    rows = [{"Method": method_title(s.method), "Hits": s.hits, "Shapes": s.total,
             "Hit rate": s.hit_rate} for s in result.scores]
    st.dataframe(rows, hide_index=True, width="stretch", key="pg_table",
                 column_config={"Hit rate": st.column_config.ProgressColumn(
                     "Hit rate", format="percent", min_value=0.0, max_value=1.0)})
    st.caption(f"{result.scenes} scenes, seeds {result.seed} to "
               f"{result.seed + result.scenes - 1}; {demo.title}.")
