"""Feature maps: every channel of a layer as a grid, one channel zoomed, two images compared.

The activations are computed once per image and group of layers (cached by the workbench);
every display option here (order, scaling, colour map, channels per row, tile size) only
re-draws the grid.
"""
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui import notes
from ui.atlas_links import unit_card_button
from ui.charts import plotly_chart
from ui.export import bundle_button, model_options
from ui.feedback import download_data, show_error
from ui.presenter import colormap_choices, control_columns, controls, presenter_on
from ui.page import page_setup, remember
from ui.settings import LINKED, link_value, named
from ui.state import workbench
from ui.text import literal, plotly_text
from viz_core.features.activations import (
    channel_stats,
    chunk_of,
    export_name,
    feature_map_layers,
    feature_maps,
    layer_chunks,
    layer_groups,
    named_layers,
)
from viz_core.errors import VizError
from viz_core.render import COLORMAPS, png_bytes
from viz_core.runtime.plan import Plan, Step
from viz_core.render.montage import (
    auto_tile,
    grid_files,
    montage,
    plotly_colorscale,
    shared_range,
    zip_bytes,
)

ONE, ALL = "One layer", "All layers"
TILES = ("auto", 16, 24, 32, 48, 64, 96, 128)
LAYERS_PER_PAGE = 6

page = page_setup(
    "Feature maps",
    "Each small square is one channel of the layer: the output of one filter over the image. "
    "Bright means the filter responded strongly there. Early layers find edges and colours; "
    "deeper layers respond to larger, more abstract parts.")
model, image, second, note = page.model, page.image, page.second, page.note
bench = workbench()
info = model.info
layers = feature_map_layers(info)
if not layers:
    st.info("This model has no layers with feature maps (4-D outputs).")
    st.stop()
chunks = layer_chunks(info, layers)
views = {"first": model.view(image)}
if second is not None:
    views["second"] = model.view(second)
names = {"first": image.name}
if second is not None:
    names["second"] = second.name if second.name != image.name else f"{second.name}_2"


def maps_step(which: str, chunk) -> Step:
    """One forward pass of the first or second image to the group of layers ``chunk``."""
    return Step(feature_maps, (model, views[which]), dict(layers=tuple(chunk)),
                title=names[which])


def layer_plan(path: str, command: str = "", options=()) -> Plan:
    """The passes that give ``path``'s activations of the shown images (one per image)."""
    return Plan([maps_step(which, chunk_of(chunks, path)) for which in shown], command, options)


def activations(plan: Plan, path: str) -> dict:
    """``path``'s activation of each shown image, from ``plan``'s cached passes; a pass not
    cached yet runs under a spinner naming its image."""
    found = {}
    for which, step in zip(shown, plan.steps):
        if step.ready(bench):
            found[which] = step.result(bench).layer(path)
        else:
            with st.spinner(f"Running {literal(model.title)} on {literal(step.title)}…"):
                found[which] = step.result(bench).layer(path)
    return found


def layer_label(path: str) -> str:
    layer = info.layer(path)
    h, w, c = layer.output_shape
    return f"{path} · {layer.type} · {h}×{w}×{c}"


# ---- controls -------------------------------------------------------------------------------
# In presenter mode all of them (view, display, layer) are one collapsed expander, so the grid
# starts on a 1280x720 projector's first screen; otherwise the page looks as it always did.
settings = controls("View, layer and display", normal="plain")
# one compact row: view, block and layer (or which layers), comparison (pictures first)
top = settings.columns([2, 2, 4, 3], vertical_alignment="bottom")
# Picking a second image in the sidebar turns the comparison on (it can be turned off again).
second_digest = None if second is None else second.digest
if remember("fm_second_seen", second_digest) != second_digest and second is not None:
    st.session_state["fm_compare"] = True
mode = top[0].segmented_control("View", (ONE, ALL), default=ONE, key="fm_view", **LINKED) or ONE
compare = top[3].toggle(
    "Compare with the second image", key="fm_compare", **LINKED, disabled=second is None,
    help="Pick a second image in the sidebar to see both grids side by side "
    "(the tutorial's cat and dog).",
) and second is not None
shown = ("first", "second") if compare else ("first",)

with controls("Display", normal="folded", into=settings):  # pictures first: folded
    d = control_columns(st, 5, widest=3)
    sort = d[0].selectbox("Order channels by", ("index", "mean"),
                          **named("fm_sort", ("index", "mean")),
                          format_func={"index": "channel number",
                                       "mean": "mean activation"}.get,
                          help="Mean activation: the strongest channels first.")
    scale = d[1].selectbox("Normalise", ("channel", "layer"),
                           **named("fm_scale", ("channel", "layer")),
                           format_func={"channel": "per channel",
                                        "layer": "whole layer"}.get,
                           help="Own range: every channel uses the full colour map (as the "
                           "tutorial). One range: brightness compares across channels"
                           + (" and across both images." if compare else "."))
    cmap = d[2].selectbox("Colour map", colormap_choices(COLORMAPS), index=0,
                          key="fm_cmap", **LINKED, help="The tutorial uses terrain.")
    # a projector's tiles at least 120 px wide: 16 across were ~48 px each at 1280x720
    per_row = d[3].slider("Channels per row", 4, 32, 6 if presenter_on() else 16,
                          key="fm_per_row", **LINKED)
    tile_choice = d[4].selectbox("Tile size (px)", TILES, key="fm_tile", **LINKED,
                                 help="auto: small maps enlarged to 32 px, large ones "
                                 "shrunk to 96 px.")


def tile_for(path: str, compact: bool = False) -> int:
    if tile_choice != "auto":
        return int(tile_choice)
    h, w = info.layer(path).output_shape[:2]
    return auto_tile(h, w, largest=48 if compact else 96)


def draw(path: str, acts: dict, compact: bool = False) -> dict:
    """The montages of one layer for the shown images (one shared range when comparing),
    cached: a grid is a resize per channel, the page's largest cost once the activations are
    cached (a third of a visit's time with a class on the server)."""
    value_range = shared_range(*acts.values()) if scale == "layer" else None
    return {
        which: bench.run(montage, act.values, per_row=per_row, tile=tile_for(path, compact),
                         scale=scale, value_range=value_range, colormap=cmap, sort=sort)
        for which, act in acts.items()
    }


def grid_figure(grid, stats) -> go.Figure:
    """The grid as a picture, with one invisible marker per tile for hover and click."""
    boxes = np.array([grid.tile_box(p) for p in range(len(grid.order))], dtype=float)
    xs, ys = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    k = grid.order
    custom = np.stack([k, stats.mean[k], stats.max[k], 100 * stats.fraction_active[k]], axis=-1)
    figure = go.Figure(go.Image(z=grid.image, hoverinfo="skip"))
    figure.add_trace(go.Scatter(
        x=xs, y=ys, mode="markers", customdata=custom,
        marker=dict(size=max(8, min(28, grid.tile[1] // 2)), color="rgba(0,0,0,0)",
                    symbol="square"),
        selected=dict(marker=dict(color="rgba(0,0,0,0)")),
        unselected=dict(marker=dict(opacity=1)),
        hovertemplate="channel %{customdata[0]:.0f}<br>mean %{customdata[1]:.3g} · max "
                      "%{customdata[2]:.3g}<br>active on %{customdata[3]:.0f}% of positions"
                      "<extra></extra>"))
    height, width = grid.image.shape[:2]
    figure.update_layout(
        margin=dict(l=0, r=0, t=0, b=0),
        height=min(900, int((1000 if len(shown) == 1 else 540) * height / width) + 10),
        xaxis=dict(visible=False, range=[0, width]),
        yaxis=dict(visible=False, range=[height, 0], scaleanchor="x"),
        dragmode=False, clickmode="event+select", showlegend=False)
    return figure


def all_layers_zip() -> bytes:
    """Every layer's grid for the shown images, named like the tutorial's files."""
    plan = Plan([maps_step(which, chunk) for which in shown for chunk in chunks])
    stems = [names[which] for which in shown for _ in chunks]
    return zip_bytes(grid_files(named_layers(plan.results(bench), stems), per_row=per_row,
                                tile=None if tile_choice == "auto" else int(tile_choice),
                                scale=scale, colormap=cmap, sort=sort))


zip_name = "_".join(names[w] for w in shown) + "_activations.zip"

# ---- one layer ------------------------------------------------------------------------------
if mode == ONE:
    groups = layer_groups(info)
    group_names = [g for g, _ in groups]
    block_kwargs = named("fm_block", group_names)  # before its layer: the link's block
    if "fm_block" not in st.session_state:  # a link naming only the layer opens its block
        wanted = st.session_state.get("fm_layer") or link_value("fm_layer")
        st.session_state["fm_block"] = next(
            (g for g, members in groups if wanted in members), group_names[0])
    pick = top[1:3]
    group = pick[0].selectbox("Block", group_names, **block_kwargs,
                              help="Layers grouped by block where the layer names say so.")
    members = dict(groups)[group]
    layer_kwargs = named("fm_layer", members)
    if st.session_state.get("fm_layer") not in members:
        st.session_state["fm_layer"] = members[0]
    path = pick[1].selectbox("Layer", members, format_func=layer_label, **layer_kwargs)

    try:
        plan = layer_plan(path, "activations", [
            *model_options(model), "--layers", path, "--per-row", str(per_row), "--cmap", cmap,
            "--scale", scale, "--sort", sort, "--tile", str(tile_for(path))])
        acts = activations(plan, path)
        grids = draw(path, acts)
    except VizError as exc:
        show_error(exc)
        st.stop()

    stats = {which: channel_stats(act) for which, act in acts.items()}
    first = acts["first"]
    h, w, c = first.shape
    cols = st.columns(len(shown))
    for col, which in zip(cols, shown):
        s = stats[which]
        dead = np.flatnonzero(s.dead)
        with col:
            event = plotly_chart(
                grid_figure(grids[which], s), key=f"fm_grid_{which}_{path}", on_select="rerun",
                selection_mode="points", width="stretch", config={"displayModeBar": False},
                picture=True)
            clicked = [p["point_index"] for p in (event.selection.points if event else [])
                       if "point_index" in p]
            if clicked:
                channel_clicked = int(grids[which].order[int(clicked[0])])
                if st.session_state.get("fm_clicked") != (which, path, channel_clicked):
                    st.session_state["fm_clicked"] = (which, path, channel_clicked)
                    st.session_state["fm_channel"] = channel_clicked
                    st.session_state["fm_channel_of"] = path
            m = st.columns(3)  # under the grid: pictures first
            m[0].metric("Channels", c, help=f"Each {h}×{w}")
            m[1].metric("Dead on this image", len(dead),
                        help="Channels that are zero everywhere (outlined in red).")
            m[2].metric("Mean activation", f"{float(s.mean.mean()):.3g}")
            order_note = ("" if sort == "index" else " · strongest first: "
                          + ", ".join(str(k) for k in grids[which].order[:6]) + " …")
            st.caption(f"{literal(names[which])} · layer {first.index}: {literal(path)}{order_note} · "
                       "hover a tile for its channel, click it to see it up close")
            if len(dead):
                shown_dead = ", ".join(str(k) for k in dead[:24]) + (" …" if len(dead) > 24 else "")
                st.caption(f"Dead channels: {shown_dead}")
    notes.show(notes.feature_maps(model, path), where=note)
    buttons = st.columns(len(shown) + 2)
    for button, which in zip(buttons, shown):
        button.download_button(  # encoded when clicked, not on every visit
            f"Grid of {literal(names[which])} (PNG)",
            download_data(lambda grid=grids[which]: png_bytes(grid.image),
                          what="The grid's PNG", key=f"fm_png_{which}", where=button),
            file_name=export_name(names[which], first.index, path), mime="image/png",
            key=f"fm_png_{which}", icon=":material/download:", on_click="ignore")
    export_images = [image] + ([second] if "second" in shown else [])
    with buttons[-1]:
        bundle_button(
            plan.command, list(plan.options), export_images,
            {"page": "Feature maps", "model": model.title, "layer": path, "per_row": per_row,
             "colormap": cmap, "normalise": scale, "order": sort, "tile": tile_for(path),
             "images": [im.name for im in export_images]},
            key="fm_bundle")
    buttons[-2].download_button(
        f"All {len(layers)} layers (ZIP)",
        download_data(all_layers_zip, what="The ZIP of all layers", key="fm_zip",
                      where=buttons[-2]), file_name=zip_name,
        mime="application/zip", key="fm_zip", icon=":material/folder_zip:", on_click="ignore",
        help="One grid PNG per layer" + (" and image" if compare else "")
        + ", named like the tutorial's cat_activations_1_conv2d.png.")

    # ---- one channel, zoomed ----
    st.subheader("One channel, up close")
    strongest = np.argsort(-stats["first"].mean, kind="stable")[:5]
    if st.session_state.get("fm_channel_of") != path or st.session_state.get("fm_channel", 0) >= c:
        # A new layer opens on its strongest channel.
        st.session_state["fm_channel"] = int(strongest[0])
        st.session_state["fm_channel_of"] = path
    z = st.columns([1, 3])
    channel = z[0].number_input("Channel", 0, c - 1, key="fm_channel", **LINKED,
                                help="Or click a tile in the grid.")
    z[1].caption("Strongest on " + literal(names["first"]) + ": "
                 + ", ".join(f"{k} (mean {stats['first'].mean[k]:.3g})" for k in strongest))
    unit_card_button(path, channel, key="fm_atlas_go", where=z[1])
    for which in shown:
        values = acts[which].values[:, :, channel]
        s = stats[which]
        if scale == "layer":
            low, high = (float(v) for v in shared_range(*acts.values()))
        else:
            low, high = float(s.min[channel]), float(s.max[channel])
        left, right = st.columns([2, 3])
        left.image(views[which].display, width="stretch",
                   caption=f"{literal(names[which])}, as the model sees it")
        figure = go.Figure(go.Heatmap(
            z=values, colorscale=plotly_colorscale(cmap), zmin=low,
            zmax=high if high > low else low + 1e-6,
            hovertemplate="row %{y}, column %{x}<br>activation %{z:.4g}<extra></extra>"))
        # presenter mode's larger title does not fit one line beside the picture: two lines
        two_lines = presenter_on()
        figure.update_layout(
            height=420, margin=dict(l=10, r=10, t=64 if two_lines else 40, b=10),
            title=dict(text=f"{plotly_text(names[which])} · {plotly_text(path)} · channel {channel}"
                       + ("<br>" if two_lines else " · ")
                       + f"mean {s.mean[channel]:.3g}, max {s.max[channel]:.3g}, active "
                       f"{s.fraction_active[channel]:.0%}", font=dict(size=14)),
            yaxis=dict(autorange="reversed", scaleanchor="x", constrain="domain"),
            xaxis=dict(constrain="domain"))
        plotly_chart(figure, right, width="stretch", key=f"fm_zoom_{which}")

# ---- all layers -----------------------------------------------------------------------------
else:
    o = top[1:3]
    which_layers = o[0].radio(
        "Layers", ("conv", "all"), horizontal=True, **named("fm_all_filter", ("conv", "all")),
        format_func={"conv": "convolution and pooling (as the tutorial)",
                     "all": "every layer with feature maps"}.get)
    if which_layers == "conv":
        listed = [p for p in layers if info.layer(p).conv or "Pooling" in info.layer(p).type]
        listed = listed or list(layers)
    else:
        listed = list(layers)
    pages = [listed[i:i + LAYERS_PER_PAGE] for i in range(0, len(listed), LAYERS_PER_PAGE)]
    page_kwargs = named("fm_page", range(len(pages)))
    if st.session_state.get("fm_page", 0) >= len(pages):
        st.session_state["fm_page"] = 0
    page = o[1].selectbox(
        f"{len(listed)} layers, {LAYERS_PER_PAGE} at a time", range(len(pages)), **page_kwargs,
        format_func=lambda i: f"{i * LAYERS_PER_PAGE + 1}–{i * LAYERS_PER_PAGE + len(pages[i])}:"
        f" {pages[i][0]} … {pages[i][-1]}")
    st.download_button(
        f"Download all {len(layers)} layers (ZIP)" if len(listed) == len(layers) else
        f"Download all {len(layers)} layers: these {len(listed)} and "
        f"{len(layers) - len(listed)} more (ZIP)",
        download_data(all_layers_zip, what="The ZIP of all layers", key="fm_zip_all"),
        file_name=zip_name,
        mime="application/zip", key="fm_zip_all", icon=":material/folder_zip:",
        on_click="ignore")
    try:
        for path in pages[page]:
            acts = activations(layer_plan(path), path)
            grids = draw(path, acts, compact=True)
            first = acts["first"]
            dead = int(channel_stats(first).dead.sum())
            st.markdown(f"**{first.index}. {literal(path)}** · {first.type} · "
                        f"{'×'.join(str(d) for d in first.shape)}"
                        + (f" · {dead} dead on {literal(names['first'])}" if dead else ""))
            cols = st.columns(len(shown))
            for col, which in zip(cols, shown):
                col.image(grids[which].image, width="stretch", caption=literal(names[which]))
    except VizError as exc:
        show_error(exc)
