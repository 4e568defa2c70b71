"""How it computes: one number of any layer of the sidebar's model, worked out from the numbers
it reads (patch, kernel, products, sum, bias, activation) and checked against the model's own
value; pooling, BatchNorm, dense and softmax the same way; and a convolution sandbox.

The layer's input and output are computed once per image and layer (cached by the workbench);
a click on the map only redoes a small sum in NumPy.
"""
import streamlit as st

from ui import notes
from ui.charts import plotly_chart
from ui.feedback import show_error
from ui.lesson import NOTE, bars_figure, clicked_cell, map_figure
from ui.lesson_views import (show_conv, show_dense, show_element, show_norm, show_pool,
                             show_probabilities, show_sandbox, strongest_input)
from ui.page import page_setup
from ui.presenter import colormap_choices, control_columns, controls, presenter_on
from ui.settings import LINKED, named, within
from ui.state import workbench
from ui.text import literal
from viz_core.errors import VizError
from viz_core.features.arithmetic import (layer_io, output_arithmetic, shown_layers,
                                          unit_arithmetic)
from viz_core.features.arithmetic_sandbox import sandbox
from viz_core.render import COLORMAPS
from viz_core.render.montage import plotly_colorscale

UNIT, OUTPUT, SANDBOX = "One number of a layer", "Logits to probabilities", "Sandbox"

page = page_setup(
    "How it computes",
    "Pick a layer, a channel and a position: see the numbers that layer reads there, the "
    "weights it multiplies them with, the sum, the bias and the activation, worked out by "
    "hand and checked against what your model computed.")
model, image = page.model, page.image
presenter = presenter_on()
if presenter:
    # the note and the (folded) controls in one row: the picture starts on a 720 px screen
    note_place, controls_place = page.note.container().columns(2)
    notes.show(NOTE, where=note_place)
    settings = controls_place.expander("View and layer", expanded=False, icon=":material/tune:")
else:
    notes.show(NOTE, where=page.note)
    settings = controls("View and layer", normal="plain")
bench = workbench()
view = model.view(image)
info = model.info
layers = shown_layers(model)

mode = settings.segmented_control("View", (UNIT, OUTPUT, SANDBOX), default=UNIT,
                                  key="lesson_view", **LINKED) or UNIT


def layer_label(path: str) -> str:
    entry = info.layer(path)
    shape = "×".join(str(d) for d in entry.output_shape)
    return f"{path} · {entry.type} · {shape}"


# ---- one number of a layer -------------------------------------------------------------------
if mode == UNIT:
    if not layers:
        st.info("This model has no layer whose arithmetic can be shown.")
        st.stop()
    first_conv = next((p for p in layers if info.layer(p).conv), layers[0])
    # linked by the layer's name (lesson_layer=conv2d_2), not by its label
    layer_kwargs = named("lesson_layer", layers, first_conv, initial=first_conv)
    if st.session_state.get("lesson_layer") not in layers:  # kept from another model
        st.session_state["lesson_layer"] = first_conv
    if presenter:  # half a 1280 px screen: the layer on its own row, then rows of three
        pick = [settings] + control_columns(settings, 3) + [settings]
    else:
        pick = settings.columns([3, 1, 1, 1, 2])
    layer = pick[0].selectbox("Layer", layers, format_func=layer_label, **layer_kwargs,
                              on_change=strongest_input, args=("lesson_conv",),
                              help="Layers whose arithmetic can be shown: convolutions, "
                              "pooling, BatchNorm, activations, dense and softmax.")
    shape = info.layer(layer).output_shape
    spatial = len(shape) == 3
    count = int(shape[-1])
    within("lesson_channel", 0, count - 1)
    channel = pick[1].number_input("Channel" if spatial else "Unit", 0, count - 1, 0,
                                   key="lesson_channel", **LINKED)
    at = None
    if spatial:
        h, w = int(shape[0]), int(shape[1])
        within("lesson_y", 0, h - 1)
        within("lesson_x", 0, w - 1)
        y = pick[2].number_input("Row y", 0, h - 1, 0, key="lesson_y", **LINKED,
                                 help="Or click the map.")
        x = pick[3].number_input("Column x", 0, w - 1, 0, key="lesson_x", **LINKED,
                                 help="Or click the map.")
        at = (int(y), int(x))
    try:
        io = bench.run(layer_io, model, view, layer)
        result = unit_arithmetic(model, view, layer, channel, at, io=io)
    except VizError as exc:
        show_error(exc)
        st.stop()

    if spatial:
        cmap = pick[4].selectbox("Map colours", colormap_choices(COLORMAPS), key="lesson_cmap",
                                 **LINKED)
        left, right = st.columns([2, 3] if presenter else [3, 5])
        with left:

            def clicked() -> None:
                # a click moves the position inputs (allowed in a callback, before they draw)
                cell = clicked_cell(st.session_state.get("lesson_map"))
                if cell is not None:
                    st.session_state["lesson_y"], st.session_state["lesson_x"] = cell

            plotly_chart(map_figure(io.outputs[:, :, channel], at,
                                    f"{layer} · channel {channel}", plotly_colorscale(cmap)),
                         key="lesson_map", on_select=clicked, selection_mode="points",
                         width="stretch", config={"displayModeBar": False}, picture=True)
            st.caption(f"The model's output of {literal(layer)}, channel {channel}: click a "
                       "position to see how its number is made.")
        where = right
    else:
        where = st.container()
    with where:
        kind = type(result).__name__
        if kind == "ConvArithmetic":
            show_conv(result, view.display if result.source == "image" else None,
                      "lesson_conv")
        elif kind == "PoolArithmetic":
            show_pool(result, "lesson_pool")
        elif kind == "NormArithmetic":
            show_norm(result)
        elif kind == "ElementArithmetic":
            show_element(result)
        elif kind == "DenseArithmetic":
            show_dense(result, "lesson_dense")
        else:  # a Softmax layer
            show_probabilities(result.logits, result.probabilities, result.model_probabilities,
                               result.labels, result.kind)

# ---- the model's last step ---------------------------------------------------------------
elif mode == OUTPUT:
    try:
        out = bench.run(output_arithmetic, model, view)
    except VizError as exc:
        show_error(exc)
        st.stop()
    best = out.top(1)[0][0]
    labels = out.labels
    if out.kind == "sigmoid" and len(out.probabilities) == 1 and len(model.labels) == 2:
        # one sigmoid unit: p for the second class, 1 - p for the first (as the other pages)
        p = float(out.probabilities[0])
        labels = (model.labels[1],)
        shown = sorted([(model.labels[1], p), (model.labels[0], 1 - p)], key=lambda t: -t[1])
        st.markdown(f"The last layer, **{literal(out.layer)}**, has one unit: its score (a "
                    f"*logit*) through a **sigmoid** is the probability of "
                    f"**{literal(model.labels[1])}**, and 1 − that is the probability of "
                    f"**{literal(model.labels[0])}**. For the image {literal(image.name)} the "
                    f"more likely class is **{literal(shown[0][0])}** ({shown[0][1]:.1%}).")
    else:
        shown = [(labels[i] if labels else f"unit {i}", float(out.probabilities[i]))
                 for i, _ in out.top(min(8, len(out.probabilities)))]
        st.markdown(f"The last layer, **{literal(out.layer)}**, gives one score per class (a "
                    f"*logit*); a **{out.kind}** turns them into probabilities. For the image "
                    f"{literal(image.name)} the most likely class is "
                    f"**{literal(shown[0][0])}** ({out.probabilities[best]:.1%}).")
    plotly_chart(bars_figure([name for name, _ in shown], [value for _, value in shown],
                             "Probabilities, largest first", what="probability"),
                 key="lesson_probabilities", width="stretch", config={"displayModeBar": False})
    show_probabilities(out.logits, out.probabilities, out.model_probabilities, labels,
                       out.kind)

# ---- the sandbox ---------------------------------------------------------------------------
else:
    show_sandbox(lambda *settings: bench.run(sandbox, *settings))
    st.caption("A small grid of whole numbers (a bright square) and an edge filter: change the "
               "stride, the padding and the dilation and watch the output size and every sum.")
