"""Filter patterns: the picture each filter of a layer responds to most (gradient ascent).

Computing is the slow part, so results live in the workbench's disk cache: a grid seen once
is instant afterwards, also after a restart. Display options (patterns per row, the filter
shown large) never recompute anything. Every pattern comes with three numbers that say how
readable it is (activation, robustness, spectral slope); "Compare methods" shows one filter
by all four methods with their numbers.
"""
import base64
import io
import zipfile

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui import notes
from ui.atlas_links import unit_card_button
from ui.charts import plotly_chart
from ui.export import bundle_button, model_options
from ui.feedback import download_data, finished_here, job_running, run_button, show_error
from ui.settings import LINKED, named, within
from ui.page import page_setup
from ui.presenter import controls
from ui.state import workbench
from ui.text import literal, literal_code
from viz_core.errors import VizError
from viz_core.features.filters import (
    DEFAULT_COUNT,
    DEFAULT_SIZE,
    DEFAULT_STEPS,
    MAX_STEPS,
    METHOD_HELP,
    METHODS,
    PAGE_METHOD,
    cached_filter_patterns,
    default_layer,
    filter_count,
    filter_patterns,
    pattern_layers,
)
from viz_core.render import png_bytes
from viz_core.runtime.limits import FILTER_SIZE
from viz_core.render.filter_grid import pattern_grid, with_alpha

ONE, GALLERY, COMPARE = "One layer", "All conv layers", "Compare methods"
METHOD_TITLES = {"fast": "fast", "classic": "classic (tutorial)", "fourier": "fourier (Lucid)",
                 "maco": "maco"}
TRADE_OFFS = {  # one sentence per method: what it costs, what it gives
    "fast": "Seconds for a whole layer and the highest activations, but fine periodic "
            "stripes that read as noise and fall apart when shifted or turned slightly.",
    "classic": "The tutorial's recipe, kept for teaching: one filter at a time on the whole "
               "canvas, slow, and the result is mostly high-frequency noise.",
    "fourier": "Lucid's recipe: smooth shapes and natural colours that survive small shifts "
               "and turns; takes about as long as classic (minutes for 64 filters).",
    "maco": "Only the phase of a photograph-like spectrum changes, so the picture keeps "
            "natural statistics; faded areas (transparency) mark where the filter does not "
            "care. The slowest: two random crops per step.",
}
READABILITY_HELP = (
    "Robustness: the pattern's mean activation after 16 small random shifts, zooms and turns, "
    "divided by its activation as shown; near 1 or above means the filter sees shapes, well "
    "below 1 a pixel-aligned texture. Spectral slope: how fast detail fades from coarse to "
    "fine (log power against log frequency); photographs are near -2, white noise near 0.")
SIZES = (64, 96, 128, 150, 192, 224)
GALLERY_COUNTS = (8, 16, 32, 64)
SEED = 0  # of the noisy starts; the same for the page, its bundle and the warm-up

page = page_setup(
    "Filter patterns",
    "What does one filter look for? Start from a grey picture with a little noise and change "
    "it, step by step, so that the filter responds as strongly as possible (gradient ascent "
    "in input space). What remains is the filter's favourite pattern. First layers look for "
    "edges and colours, deeper layers for textures.",
    needs="model",
)
model, note = page.model, page.note
bench = workbench()
info = model.info
layers = pattern_layers(model, conv_only=False)
conv_layers = pattern_layers(model)


def layer_label(path: str) -> str:
    layer = info.layer(path)
    h, w, c = layer.output_shape
    return f"{literal(path)} · {layer.type} · {h}×{w}×{c}"


def number(value: float, digits: int = 2) -> str:
    return "–" if value != value else f"{value:.{digits}f}"


def grid_caption(result, extra: str = "", *, fresh: bool = False) -> str:
    """``fresh``: read back from the disk cache but made for this user just now."""
    made = ("from the disk cache" if result.from_cache and not fresh
            else f"computed in {result.seconds:.1f} s")
    dead = int(result.dead.sum())
    return (f"{len(result)} filters of {literal_code(result.layer)} · {result.method}, {result.steps} steps"
            f" · {result.size} px ({made})"
            + (f" · {dead} dead filter{'s' if dead != 1 else ''}, outlined in red" if dead
               else "") + extra)


def summary_caption(result) -> str:
    """The layer's readability in one line: medians over the filters that responded."""
    s = result.summary()
    return (f"Medians over {s['filters']} responding filters: activation "
            f"{number(s['activation'], 3)} · robustness {number(s['robustness'])} · spectral "
            f"slope {number(s['spectral_slope'])}"
            + (" · faded areas are transparent (where the filter does not care)"
               if result.alpha is not None else ""))


def shown(item):
    """The picture of one pattern as displayed: RGBA when it has a transparency map."""
    return item.pattern if item.alpha is None else with_alpha(item.pattern, item.alpha)


def pattern_sizes(input_shape) -> tuple[int, ...]:
    """The size choices, with the model's own input side (256 for a 256 px model) where it
    is within :data:`viz_core.runtime.limits.FILTER_SIZE`."""
    side = max((d for d in input_shape[:2] if d), default=None)
    extra = {int(side)} if side and FILTER_SIZE.contains(int(side)) else set()
    return tuple(sorted(set(SIZES) | extra))


# ---- controls -------------------------------------------------------------------------------
# In presenter mode all of them (view, method, layer) are one collapsed expander, so the
# patterns start on a 1280x720 projector's first screen; otherwise the page looks as always.
settings = controls("View, method and layer", normal="plain")
view = settings.segmented_control("View", (ONE, GALLERY, COMPARE), default=ONE,
                                  key="fp_view", **LINKED) or ONE
with controls("Method", normal="folded", into=settings):  # pictures first: folded
    # the four methods' names need a row of their own (in a column they were cut off)
    method = st.segmented_control(
        "Method", METHODS, default=PAGE_METHOD, **named("fp_method", METHODS, PAGE_METHOD),
        format_func=lambda m: METHOD_TITLES[m] + (" (default)" if m == PAGE_METHOD else ""),
        help=" · ".join(f"{k}: {v}" for k, v in METHOD_HELP.items())) or PAGE_METHOD
    c = st.columns([1, 2, 2])
    steps = int(c[0].number_input("Steps", 1, MAX_STEPS, DEFAULT_STEPS[method],
                                  key=f"fp_steps_{method}", **LINKED,
                                  help="Gradient-ascent steps (the tutorial: 40)."))
    sizes = pattern_sizes(model.info.input_shape)
    if st.session_state.get("fp_size") not in sizes:
        st.session_state.pop("fp_size", None)  # kept from a model with another input size
    size = int(c[1].select_slider("Size (px)", sizes, value=DEFAULT_SIZE, key="fp_size", **LINKED,
                                  help="Side of each pattern (the tutorial: 150). The classic "
                                  "method also computes at this size, so larger is slower."))
    per_row = int(c[2].slider("Patterns per row", 2, 16, 8, key="fp_per_row", **LINKED))
    st.caption(f"**{method}**: {TRADE_OFFS[method]}")
params = dict(method=method, steps=steps, size=size, seed=SEED)


def compute(layer: str, filters: tuple, progress):
    return filter_patterns(model, layer, filters, disk=bench.disk, progress=progress, **params)


# ---- one layer ------------------------------------------------------------------------------
def grid_figure(result, grid):
    """The grid as a picture, with one invisible marker per pattern for hover and click."""
    origins = np.array([grid.origin(p) for p in range(len(result))], float)
    ys = origins[:, 0] + grid.tile[0] / 2
    xs = origins[:, 1] + grid.tile[1] / 2
    custom = np.stack([np.asarray(result.filters, float), result.activations,
                       result.robustness, result.spectral_slopes], axis=-1)
    # The grid as PNG bytes made once per grid (the workbench's cache): given as ``z``, plotly
    # encoded the whole grid again on every visit of every student.
    encoded = base64.b64encode(bench.run(png_bytes, grid.image)).decode("ascii")
    figure = go.Figure(go.Image(source=f"data:image/png;base64,{encoded}", hoverinfo="skip"))
    figure.add_trace(go.Scatter(
        x=xs, y=ys, mode="markers", customdata=custom,
        marker=dict(size=28, color="rgba(0,0,0,0)", symbol="square"),
        selected=dict(marker=dict(color="rgba(0,0,0,0)")),
        unselected=dict(marker=dict(opacity=1)),
        hovertemplate="filter %{customdata[0]:.0f}<br>activation %{customdata[1]:.3g}"
                      "<br>robustness %{customdata[2]:.2f}<br>spectral slope "
                      "%{customdata[3]:.2f}<extra></extra>"))
    height, width = grid.image.shape[:2]
    figure.update_layout(
        margin=dict(l=0, r=0, t=0, b=0), height=min(900, int(760 * height / width) + 10),
        xaxis=dict(visible=False, range=[0, width]),
        yaxis=dict(visible=False, range=[height, 0], scaleanchor="x"),
        dragmode=False, clickmode="event+select", showlegend=False)
    return figure


def one_layer() -> None:
    pick = controls("Layer", normal="plain", into=settings).columns([3, 2])
    start_layer = default_layer(model)
    layer_kwargs = named("fp_layer", layers, None)  # a link's layer, on the first visit
    if st.session_state.get("fp_layer") not in layers:
        st.session_state["fp_layer"] = start_layer
    layer = pick[0].selectbox("Layer", layers, format_func=layer_label, **layer_kwargs,
                              help="Convolution layers, and other layers with feature maps "
                              "(the tutorial also draws pooling layers).")
    notes.show(notes.filters(model, layer), where=note)
    count = filter_count(model, layer)
    low, high = pick[1].slider("Filters", 0, count, (0, min(DEFAULT_COUNT, count)),
                               key=f"fp_range_{layer}", **LINKED,
                               help=f"{literal(layer)} has {count} filters; the first 64 make the "
                               "tutorial's 8×8 grid.")
    if high <= low:
        st.info("Choose at least one filter.")
        return
    filters = tuple(range(low, high))
    request = (model.identity, layer, filters, method, steps, size)
    job_key = ("filter_patterns", *request, SEED)
    result = cached_filter_patterns(model, layer, filters, disk=bench.disk, **params)
    if result is None:
        # Drawn in the server's job queue, so a class full of students waits its turn instead
        # of slowing everyone's light pages; the fast method starts on arrival (unless this
        # session stopped this very request), the others on the button.
        run_button(f"Draw {len(filters)} patterns",
                   f"{literal(layer)}: {len(filters)} filters ({method})", "fp_draw",
                   lambda progress: compute(layer, filters, progress),
                   job_key=job_key, auto=method == PAGE_METHOD)
        if not job_running("fp_draw"):  # while it runs, its bar says so
            st.caption("Press the button to draw the patterns." if method == PAGE_METHOD
                       else f"The {method} method takes a while; press the button to start.")
        return

    grid = pattern_grid(result.patterns, columns=per_row, dead=result.dead, alpha=result.alpha)
    event = plotly_chart(grid_figure(result, grid), key=f"fp_grid_{hash(request)}",
                         on_select="rerun", selection_mode="points", width="stretch",
                         config={"displayModeBar": False}, picture=True)
    st.caption(grid_caption(result, " · click a pattern to see it large",
                            fresh=finished_here("fp_draw", job_key)))
    st.caption(summary_caption(result), help=READABILITY_HELP)

    points = [p for p in (event.selection.points if event else []) if "point_index" in p]
    clicked = result.filters[int(points[0]["point_index"])] if points else None
    if clicked is not None and st.session_state.get("fp_clicked") != (request, clicked):
        st.session_state["fp_clicked"] = (request, clicked)
        st.session_state["fp_pick"] = clicked
    if st.session_state.get("fp_pick") not in filters:  # open on the strongest filter
        st.session_state["fp_pick"] = result.filters[int(np.argmax(result.activations))]

    left, right = st.columns([2, 3])
    with left:
        index = st.selectbox("Filter", filters, key="fp_pick", **LINKED)
        item = result.by_filter(index)
        unit_card_button(layer, index, key="fp_atlas_go")
        st.image(shown(item), caption=f"filter {index} of {literal(layer)}", width="stretch",
                 output_format="PNG")  # JPEG would blur the fine textures
    with right:
        # two by two: four in a row cut "Mean activation reached" and "responds" at 1440 px
        (a, r), (p, b) = st.columns(2), st.columns(2)
        a.metric("Mean activation reached", f"{item.activation:.4g}",
                 help="Mean output of the filter over the pattern as displayed (8-bit), "
                 "preprocessed as the model expects.")
        r.metric("Robustness", number(item.robustness), help=READABILITY_HELP)
        p.metric("Spectral slope", number(item.spectral_slope), help=READABILITY_HELP)
        b.metric("Status", "dead" if item.dead else "responds",
                 help="Dead: the gradient was zero at every step, from every start tried: "
                 "the filter did not fire, so the picture is only the starting noise. (A "
                 "filter can still fire a little along the picture's edges, where the model "
                 "pads with zeros.)")
        trace = go.Figure(go.Scatter(x=np.arange(1, len(item.trace) + 1), y=item.trace,
                                     mode="lines+markers", line=dict(color="#3b6fb6")))
        trace.update_layout(height=240, margin=dict(l=10, r=10, t=30, b=10),
                            title=dict(text="Objective at each step", font=dict(size=14)),
                            xaxis_title="step", yaxis_title="mean activation")
        plotly_chart(trace, width="stretch", config={"displayModeBar": False})
        d1, d2, d3 = st.columns(3)
        stem = f"{layer.replace('/', '__')}_{result.method}"
        # Encoded when clicked, not on every visit.
        d1.download_button("Grid (PNG)", download_data(
                               lambda: bench.run(png_bytes, grid.image),
                               what="The grid's PNG", key="fp_dl_grid", where=d1),
                           f"{stem}_grid.png", mime="image/png",
                           icon=":material/download:", key="fp_dl_grid")
        d2.download_button(f"Filter {index} (PNG)", download_data(
                               lambda: png_bytes(shown(item)), what="The pattern's PNG",
                               key="fp_dl_one", where=d2),
                           f"{stem}_filter_{index:03d}.png", mime="image/png",
                           icon=":material/download:", key="fp_dl_one")
        # The filters command with exactly these settings: answered from the disk cache, so
        # the bundle holds the very patterns shown, and remakes them bit for bit (seeded).
        bundle_button(
            "filters",
            model_options(model) + ["--layer", layer, "--filters", f"{low}:{high}",
                                    "--method", method, "--steps", str(steps), "--size",
                                    str(size), "--per-row", str(per_row), "--seed", str(SEED)],
            [],
            {"page": "Filter patterns", "model": model.title, "layer": layer,
             "filters": [low, high], "method": method, "steps": steps, "size": size,
             "seed": SEED, "per_row": per_row,
             "dead": [f for f, dead in zip(result.filters, result.dead) if dead]},
            key="fp_bundle", where=d3)


# ---- gallery --------------------------------------------------------------------------------
def gallery() -> None:
    st.write(f"The first filters of every convolution layer of **{literal(model.title)}** "
             f"({len(conv_layers)} layers), one grid per layer, filled in as they are ready.")
    c = controls("Filters per layer", normal="plain", into=settings).columns([2, 3])
    per_layer = int(c[0].select_slider("Filters per layer", GALLERY_COUNTS, value=16,
                                       key="fp_gallery_count", **LINKED))
    jobs = [(path, tuple(range(min(per_layer, filter_count(model, path)))))
            for path in conv_layers]
    ready = {path: cached_filter_patterns(model, path, filters, disk=bench.disk, **params)
             for path, filters in jobs}
    todo = [(path, filters) for path, filters in jobs if ready[path] is None]
    go_place = st.container()  # the button and its progress bar, above the grids
    slots = {path: st.empty() for path, _ in jobs}
    files, noted = {}, set()

    def fill() -> None:
        """Draw every layer whose grid is ready and not drawn yet (also while the job runs)."""
        for path, filters in jobs:
            if path in files:
                continue
            result = ready[path] or cached_filter_patterns(model, path, filters,
                                                           disk=bench.disk, **params)
            if result is None:
                if path not in noted:  # once, not at every check while the job runs
                    slots[path].caption(f"{layer_label(path)} · not drawn yet")
                    noted.add(path)
                continue
            ready[path] = result
            grid = pattern_grid(result.patterns, columns=per_row, dead=result.dead,
                                alpha=result.alpha)
            files[path] = png_bytes(grid.image)
            with slots[path].container():
                st.markdown(f"**{layer_label(path)}**")
                st.image(grid.image, width="stretch", output_format="PNG")
                st.caption(grid_caption(result) + " · " + summary_caption(result))

    if any(ready.values()):
        fill()
    else:
        st.caption("Nothing drawn yet for these settings. The gallery keeps what it has "
                   "drawn, so it can be stopped and continued.")

    def more_ready() -> bool:
        """Whether a layer not drawn yet has its grid now (the page then draws it)."""
        return any(cached_filter_patterns(model, path, filters, disk=bench.disk, **params)
                   is not None for path, filters in jobs if path not in files)

    def work(progress) -> None:
        """Every missing layer's grid, into the disk cache (run by the server's job queue)."""
        for n, (path, filters) in enumerate(todo):
            filter_patterns(model, path, filters, disk=bench.disk,
                            progress=lambda f, m, n=n, path=path: progress(
                                (n + f) / len(todo),
                                f"{path} ({n + 1} of {len(todo)} to draw): {m}"), **params)

    if todo:
        with go_place:
            run_button("Build the gallery", f"All conv layers ({len(todo)} to draw)",
                       "fp_gallery_go", work, tick=more_ready,
                       job_key=("filter_gallery", model.identity, per_layer, method, steps,
                                size, SEED))
    if files:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for path, data in files.items():
                archive.writestr(f"{path.replace('/', '__')}_{method}_grid.png", data)
        st.download_button(f"All {len(files)} grids (ZIP)", buffer.getvalue(),
                           f"{model.name}_filter_patterns.zip", mime="application/zip",
                           icon=":material/download:", key="fp_dl_gallery")


# ---- one filter, every method ---------------------------------------------------------------
def compare_methods() -> None:
    st.write("One filter drawn by all four methods, each at its default steps, with the "
             "numbers that say how readable each picture is.")
    c = controls("Layer and filter", normal="plain", into=settings).columns([3, 1])
    layer_kwargs = named("fp_cmp_layer", layers, None)
    if st.session_state.get("fp_cmp_layer") not in layers:
        st.session_state["fp_cmp_layer"] = default_layer(model)
    layer = c[0].selectbox("Layer", layers, format_func=layer_label, **layer_kwargs)
    within(f"fp_cmp_filter_{layer}", 0, filter_count(model, layer) - 1)  # another model's layer
    index = int(c[1].number_input("Filter", 0, filter_count(model, layer) - 1, 0,
                                  key=f"fp_cmp_filter_{layer}", **LINKED))
    unit_card_button(layer, index, key="fp_cmp_atlas_go")
    results = {m: cached_filter_patterns(model, layer, (index,), method=m, steps=None,
                                         size=size, seed=SEED, disk=bench.disk)
               for m in METHODS}
    missing = [m for m, r in results.items() if r is None]
    if missing:
        def work(bar):
            for n, m in enumerate(missing):
                filter_patterns(model, layer, (index,), method=m, size=size, seed=SEED,
                                disk=bench.disk,
                                progress=lambda f, msg, n=n, m=m: bar(
                                    (n + f) / len(missing), f"{m}: {msg}"))

        run_button(f"Draw filter {index} with {', '.join(missing)}",
                   f"Compare methods ({layer}, filter {index})", "fp_cmp_go", work)
    columns = st.columns(len(METHODS))
    for column, m in zip(columns, METHODS):
        with column:
            st.markdown(f"**{METHOD_TITLES[m]}**")
            result = results[m]
            if result is None:
                st.caption("not drawn yet")
                continue
            item = result.item(0)
            st.image(shown(item), width="stretch", output_format="PNG")
            st.caption(f"activation {item.activation:.3g} · robustness "
                       f"{number(item.robustness)} · spectral slope "
                       f"{number(item.spectral_slope)} · {result.steps} steps, "
                       f"{result.seconds:.1f} s", help=READABILITY_HELP)


try:
    if view == ONE:
        one_layer()
    elif view == GALLERY:
        gallery()
    else:
        compare_methods()
except VizError as exc:
    show_error(exc)
