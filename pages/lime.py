"""LIME: superpixels, and the superpixels that carried the prediction for one or two classes."""
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui import notes
from ui.charts import plotly_chart
from ui.classes import second_class
from ui.cost import SLOW_SECONDS, duration, run_seconds
from ui.export import bundle_button, model_options
from ui.feedback import download_data, job_running, run_button, show_error
from ui.settings import LINKED, named, within
from ui.page import page_setup, remember
from ui.presenter import control_columns, controls
from ui.state import workbench
from ui.text import literal, plotly_text
from viz_core.errors import VizError
from viz_core.methods.lime import (
    explanation_plane,
    explanation_stability,
    fit_explanation,
    perturbed_predictions,
    stability_seeds,
)
from viz_core.models.predict import predict
from viz_core.render import png_bytes
from viz_core.runtime.plan import Plan, Step
from viz_core.render.lime_view import (
    OPPOSE_COLOUR,
    REST_HELP,
    RESTS,
    STYLE_HELP,
    STYLES,
    SUPPORT_COLOUR,
    display_factor,
    enlarge,
    explanation_picture,
    superpixel_boundaries,
)
from viz_core.methods.lime_options import (
    ALGORITHM_HELP, ALGORITHMS, HIDE_COLOURS, HIDE_HELP, PAGE_DEFAULTS, STABILITY_K)
from viz_core.methods.superpixels import superpixels

SAMPLE_CHOICES = (100, 250, 500, 1000, 2000)
QUICK_SAMPLES = 250
WEAK_FIT_R2 = 0.5  # below this the linear surrogate explains under half of the answers' variance
ALGORITHM_TITLES = {"slic": "SLIC", "quickshift": "Quickshift", "felzenszwalb": "Felzenszwalb"}
NO_CLASS = -1

def _quick_preset() -> None:
    st.session_state["lime_samples"] = QUICK_SAMPLES


page = page_setup(
    "LIME",
    "LIME cuts the image into superpixels, hides random sets of them and asks the model about "
    "each copy. A linear model fitted to the answers gives every superpixel a weight: "
    ":green[green] superpixels support the class, :red[red] ones speak against it.")
model, image, note = page.model, page.image, page.note
bench = workbench()
view = model.view(image)


def rgb(colour):
    return "rgb({}, {}, {})".format(*colour)


# -- parameters -------------------------------------------------------------------------------
# Pictures first (issue 28): the superpixels on the left, beside them the classes to explain,
# then the parameters that shape both (open in presenter mode too: they push nothing down).
left, right = st.columns([2, 3])
classes_box = right.container()
with right, controls("Superpixels and samples", beside=True):
    a, b, c = st.columns(3)
    algorithm = a.selectbox("Superpixel algorithm", ALGORITHMS,
                            **named("lime_algorithm", ALGORITHMS, PAGE_DEFAULTS["algorithm"]),
                            index=ALGORITHMS.index(PAGE_DEFAULTS["algorithm"]),
                            format_func=ALGORITHM_TITLES.get,
                            help="\n\n".join(f"**{k}**: {v}" for k, v in ALGORITHM_HELP.items()))
    n_superpixels = a.slider("Number of superpixels", 5, 150, PAGE_DEFAULTS["n_superpixels"],
                             key="lime_superpixels", **LINKED,
                             help="The tutorial's n_superpixels (a target; the algorithm gets "
                             "as close as it can).")
    # from 1: limits.COMPACTNESS excludes 0 (SLIC divides by it); a link's 0 is dropped
    compactness = b.slider("Compactness", 1.0, 100.0, PAGE_DEFAULTS["compactness"], step=1.0,
                           key="lime_compactness", **LINKED,
                           disabled=algorithm == "felzenszwalb",
                           help="The tutorial's weight: higher gives rounder, more regular "
                           "superpixels. Felzenszwalb has no compactness.")
    hide = b.selectbox("Hidden superpixels become", HIDE_COLOURS,
                       index=HIDE_COLOURS.index(PAGE_DEFAULTS["hide"]),
                       **named("lime_hide", HIDE_COLOURS, PAGE_DEFAULTS["hide"]),
                       format_func=lambda h: h.capitalize(),
                       help="\n\n".join(f"**{k}**: {v}" for k, v in HIDE_HELP.items()))
    samples = c.select_slider("Samples (perturbed images)", SAMPLE_CHOICES,
                              value=PAGE_DEFAULTS["samples"],
                              key="lime_samples", **LINKED,
                              help="How many perturbed copies the model sees; more give a "
                              "steadier fit and take longer.")
    seed = int(c.number_input("Seed", min_value=0, max_value=2**31 - 1,
                              value=PAGE_DEFAULTS["seed"], step=1,
                              key="lime_seed", **LINKED))
    # The seeds go in the help: with a large seed the label was cut in presenter mode's type
    stability = c.checkbox("Check stability (3 seeds)", key="lime_stability", **LINKED,
                           help=f"Runs LIME with the seeds {seed}, {seed + 1} and {seed + 2} and "
                           f"compares their top {STABILITY_K} superpixels: three times the work.")
run_box = right.container()

try:
    segmentation = bench.run(superpixels, view, algorithm=algorithm,
                             n_superpixels=n_superpixels, compactness=compactness, seed=seed)
    prediction = bench.run(predict, model, (view,), top=len(model.labels))[0]
except VizError as exc:
    show_error(exc)
    st.stop()

factor = display_factor(*view.pixels.shape[:2])
big_image = enlarge(view.display, factor, smooth=True)
big_segments = enlarge(segmentation.segments, factor)

with left:
    st.image(superpixel_boundaries(big_image, big_segments), width="stretch",
             caption=f"{segmentation.count} superpixels ({algorithm}, target {n_superpixels}) "
             f"on the {view.pixels.shape[1]}×{view.pixels.shape[0]} image the model sees")

ranked = [score.class_index for score in prediction.top]
probability = {score.class_index: score.probability for score in prediction.top}


def class_name(k: int) -> str:
    if k == NO_CLASS:
        return "(none)"
    return f"{model.label(k)} ({k}) · p = {probability[k]:.1%}"


with classes_box:
    p1, p2 = st.columns(2)
    # A new model or image starts from its own two most probable classes (the tutorial's
    # n_labels = 2); on a session's first run, classes restored from the URL are kept.
    shown_for = (model.identity, image.digest)
    fresh = remember("_lime_for", shown_for) not in (None, shown_for)
    first_kwargs = named("lime_class_1", ranked)  # a link's class, on the first visit
    if fresh or st.session_state.get("lime_class_1") not in ranked:
        st.session_state["lime_class_1"] = ranked[0]
    first = p1.selectbox("First class", ranked, format_func=class_name, **first_kwargs)
    second_options = [NO_CLASS] + [k for k in ranked if k != first]
    second_kwargs = named("lime_class_2", second_options, None)
    if fresh or st.session_state.get("lime_class_2") not in second_options:
        st.session_state["lime_class_2"] = second_class(model, image, ranked, first, none=NO_CLASS)
    second = p2.selectbox("Second class (side by side)", second_options,
                          format_func=class_name, **second_kwargs)
    classes = (first,) if second == NO_CLASS else (first, second)
# -- the plan: each seed's perturbed predictions (the model's work), and the lime command --------
seeds = stability_seeds(seed) if stability else (seed,)
predictions_of = {s: Step(perturbed_predictions, (model, view, segmentation),
                          dict(seed=s, samples=samples, hide=hide), title=f"seed {s}")
                  for s in seeds}
plan = Plan(tuple(predictions_of.values()), "lime", model_options(model) + [
    "--algorithm", algorithm, "--superpixels", str(n_superpixels),
    "--compactness", str(compactness), "--samples", str(samples), "--hide", hide,
    "--seed", str(seed), *(["--stability"] if stability else []),
    *[word for k in classes for word in ("--class", str(k))]])
pending = plan.pending(bench)
missing = [s for s, step in predictions_of.items() if step in pending]
with run_box:  # under the parameters
    runs = len(missing)
    label = "Run LIME" if runs <= 1 else f"Run LIME ({runs} seeds)"
    # Identical requests (the same model, image, superpixels and samples) share one job.
    run_button(label, "Running LIME", "lime_run", lambda bar: plan.run(bench, bar),
               disabled=not missing, job_key=plan.key())
    passes = samples * max(1, runs)
    seconds = run_seconds(model, passes)  # this model's pass, measured once
    st.caption(f"{samples} perturbed images per seed through {literal(model.title)}: about "
               f"{passes} forward passes, {duration(seconds)} here. Changing the display below "
               "reuses the model's answers.")
    if missing and seconds > SLOW_SECONDS and samples > QUICK_SAMPLES:
        st.button(f"Quick look: {QUICK_SAMPLES} samples (about "
                  f"{duration(seconds * QUICK_SAMPLES / samples)})", key="lime_quick_go",
                  icon=":material/bolt:", on_click=_quick_preset,
                  help="Fewer perturbed images: a first answer in a fraction of the time, with a "
                  "less steady fit (its R² says how steady).")

notes.show(notes.lime(model, model.label(first)), where=note)  # before a run too
if seed in missing:
    if not job_running("lime_run"):  # while it runs, its bar says so
        st.info("Choose the parameters, then press **Run LIME**.", icon=":material/play_arrow:")
    st.stop()

try:
    explanation = bench.run(fit_explanation, model, predictions_of[seed].result(bench), classes)
except VizError as exc:
    show_error(exc)
    st.stop()

# -- display options (never recompute the model) --------------------------------------------
st.subheader("Explanation")
d1, d2, d3, d4 = control_columns(controls("Display", normal="plain"), 4, widest=2)
style = d1.radio("Show", STYLES, **named("lime_style", STYLES),
                 format_func=lambda s: s.capitalize(),
                 help="\n\n".join(f"**{k}**: {v}" for k, v in STYLE_HELP.items()))
num_features = 1
if explanation.count > 1:  # a slider needs two different ends
    within("lime_features", 1, explanation.count)  # kept from an image with more superpixels
    num_features = d2.slider("Superpixels shown", 1, explanation.count,
                             min(5, explanation.count), key="lime_features", **LINKED,
                             disabled=style == "weights",
                             help="The tutorial's n_features: the strongest superpixels.")
negative = d3.toggle("Also against the class", key="lime_negative", **LINKED,
                     disabled=style == "weights",
                     help="Off: only superpixels that support the class (positive weights). "
                     "On: the strongest by absolute weight, red where they oppose it.")
rest = d4.radio("Rest of the image", RESTS, index=RESTS.index("dim"), **named("lime_rest", RESTS, "dim"),
                format_func=lambda r: r.capitalize(),
                disabled=style == "weights",
                help="\n\n".join(f"**{k}**: {v}" for k, v in REST_HELP.items()))

pictures = st.columns(len(explanation.class_indices))
for column, k, label_text, p, r2, local in zip(
        pictures, explanation.class_indices, explanation.labels, explanation.probabilities,
        explanation.r2, explanation.local_predictions):
    plane = explanation_plane(explanation, k, style=style, num_features=num_features,
                              negative=negative)
    picture = explanation_picture(explanation.image, plane, style=style, rest=rest, scale=factor)
    with column:
        st.markdown(f"**{literal(label_text)}** ({k})")
        st.image(picture, width="stretch",
                 caption=f"model p = {p:.1%} · linear fit R² = {r2:.2f} · "
                 f"fit predicts {local:.1%}"
                 + (f" · quick look: {samples} samples" if samples <= QUICK_SAMPLES else ""))
        if r2 < WEAK_FIT_R2:
            st.caption(f":material/warning: The straight-line fit explains little of the model's "
                       f"answers (R² {r2:.2f} < {WEAK_FIT_R2}): read these superpixels with "
                       "caution; more samples or fewer superpixels usually give a better fit.")
        st.download_button("Download PNG",  # encoded when clicked, not on every visit
                           download_data(lambda picture=picture: png_bytes(picture),
                                         what="The PNG", key=f"lime_download_{k}"),
                           file_name=f"{image.name}_lime_{k}.png", mime="image/png",
                           key=f"lime_download_{k}", icon=":material/download:")
# the display's options (read after the explanation: its slider's range) join the plan's
shown = ["--features", str(num_features), "--style", style, "--rest", rest, "--scale",
         str(factor), *(["--negative"] if negative else [])]
bundle_button(plan.command, [*plan.options, *shown], [image],
              {"page": "LIME", "model": model.title, "image": image.name,
               "algorithm": algorithm, "superpixels": segmentation.count,
               "target_superpixels": n_superpixels, "compactness": compactness,
               "samples": samples, "hide": hide, "seed": seed,
               "classes": list(explanation.class_indices), "features": num_features,
               "negative": negative, "style": style, "rest": rest, "scale": factor,
               "stability": stability},
              key="lime_bundle")

# -- per-superpixel weights -------------------------------------------------------------------
st.subheader("Weight of every superpixel")
order = np.argsort(-explanation.weights[0], kind="stable")
names = [f"#{i}" for i in order]
figure = go.Figure()
for row, (k, label_text) in enumerate(zip(explanation.class_indices, explanation.labels)):
    w = explanation.weights[row][order]
    colours = [rgb(SUPPORT_COLOUR) if v > 0 else rgb(OPPOSE_COLOUR) for v in w]
    figure.add_trace(go.Bar(
        x=names, y=w, name=f"{plotly_text(label_text)} ({k})",
        marker=dict(color=colours, opacity=1.0 if row == 0 else 0.55,
                    pattern=dict(shape="" if row == 0 else "/", fgcolor="#333", size=5),
                    line=dict(color="#333", width=0 if row == 0 else 1)),
        hovertemplate=f"{plotly_text(label_text)}: superpixel %{{x}}<br>weight %{{y:+.4f}}<extra></extra>"))
figure.update_layout(
    barmode="group", height=320, margin=dict(l=10, r=10, t=30, b=10),
    legend=dict(orientation="h", y=1.12, x=0),
    xaxis=dict(title=f"superpixel (sorted by weight for {plotly_text(explanation.labels[0])})",
               type="category"),
    yaxis=dict(title="weight (change in probability)", zeroline=True))
plotly_chart(figure, width="stretch")
st.caption("Superpixel numbers match the ids in the downloaded segments (`python -m viz_core "
           "lime` writes them as .npy). The fit's R² says how well a straight line in "
           "\"superpixel shown or hidden\" explains the model's answers.")

# -- stability ---------------------------------------------------------------------------------
if stability:
    st.subheader("Stability across seeds")
    if missing:
        if not job_running("lime_run"):  # while it runs, its bar says so
            st.info("Press **Run LIME** to compute the other two seeds.")
    else:
        try:
            runs = [bench.run(fit_explanation, model, step.result(bench), classes)
                    for step in plan.steps]
        except VizError as exc:
            show_error(exc)
            st.stop()
        cols = st.columns(len(classes))
        for column, k in zip(cols, classes):
            result = explanation_stability(runs, k, STABILITY_K)
            column.metric(f"{model.label(k)}: top-{STABILITY_K} agreement",
                          f"{result.mean_jaccard:.2f}",
                          help="Mean Jaccard index (shared / all) of the top "
                          f"{STABILITY_K} supporting superpixels between the three seeds; "
                          "1 means every seed picks the same superpixels.")
            column.caption(" · ".join(
                f"seed {s}: {', '.join(f'#{i}' for i in top) or 'none'}"
                for s, top in zip(result.seeds, result.top_sets)))
