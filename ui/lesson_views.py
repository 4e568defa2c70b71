"""How the "How it computes" page draws each kind of result (:mod:`viz_core.features.
arithmetic_results`): a convolution's patch, kernel and products, a pooling window, BatchNorm's
numbers, an activation, a dense unit's contributions, logits to probabilities, the sandbox.

Each ``show_*`` draws into the current Streamlit container; nothing here computes a layer.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from viz_core.render.atlas import outlined
from viz_core.render.lesson import short_number, strongest_input_channel

from .charts import plotly_chart
from .lesson import bars_figure, grid_figure
from .presenter import control_columns
from .settings import LINKED, named, set_param, within
from .text import literal, literal_code

BARS = 16  # contributions drawn as bars
STILL = {"displayModeBar": False}  # no toolbar over a small grid's title
SANDBOX_CELL_PX = 34  # the sandbox's rows: a 12 + 2·3 padded grid stays on one screen
STRONGEST = -1  # the input channel choice that follows the unit: its strongest input channel


def _metrics(pairs) -> None:
    columns = control_columns(st, len(pairs), widest=3)  # rows of three on a projector
    for column, (label, value, help_text) in zip(columns, pairs):
        column.metric(label, value if isinstance(value, str) else short_number(value),
                      help=help_text)


def _check(result) -> None:
    """The hand computation against the model's own number, in one line."""
    ok = result.difference <= 1e-4
    (st.success if ok else st.warning)(
        f"Redone by hand: {result.activation:.6g}; the model computed "
        f"{result.model_activation:.6g} (difference {result.difference:.1e}).",
        icon=":material/check_circle:" if ok else ":material/warning:")


def strongest_input(key: str) -> None:
    """A callback for the layer's choice: the new layer opens on its strongest input channel
    (a channel number means another input there), also in the link."""
    st.session_state[f"{key}_input"] = STRONGEST
    set_param(f"{key}_input", None)


def show_conv(result, image_display: np.ndarray | None, key: str) -> None:
    """A convolution: where the patch is, the patch, the kernel, the products, their sum."""
    kind = {"DepthwiseConv2D": "depthwise convolution", "SeparableConv2D":
            "separable convolution"}.get(result.kind, "convolution")
    _metrics([
        ("Σ products", result.products_sum,
         f"{result.products.size} products of the patch and the kernel, added up"),
        ("Bias", result.bias, "one number per output channel, learned"),
        ("z = sum + bias", result.preactivation, "the preactivation"),
        (result.activation_name, result.activation, result.activation_formula),
        ("Model's value", result.model_activation, "read from the model's own output"),
    ])
    st.markdown(f"**{literal(result.equation_text())}** · {literal(result.activation_formula)}")
    _check(result)
    kh, kw, cin = result.patch.shape
    st.caption(
        f"A {kind} of {kh}×{kw}, stride {result.strides[0]}×{result.strides[1]}, "
        f"dilation {result.dilation[0]}×{result.dilation[1]}, padding {result.padding}"
        + (f", {result.groups} groups" if result.groups > 1 else "")
        + f". It reads rows {result.rows[0]}…{result.rows[-1]} and columns "
        f"{result.cols[0]}…{result.cols[-1]} of {literal(result.source)} "
        f"({result.input_shape[0]}×{result.input_shape[1]}×{result.input_shape[2]})"
        + (f"; {int(result.padded.sum())} of its {kh * kw} cells are padding." if
           result.padded.any() else "."))
    sums = result.products.sum(axis=(0, 1))
    order = [int(k) for k in np.argsort(-np.abs(sums), kind="stable")]
    k = strongest_input_channel(result.products)
    if cin > 1:
        names = {i: f"input channel {result.input_channels[i]}: products add up to "
                    f"{short_number(sums[i])}" for i in order}
        names[STRONGEST] = f"the strongest here ({names[k]})"
        options = [STRONGEST] + order
        # linked by the channel's number (lesson_conv_input=5); left out while the strongest
        chosen = st.selectbox(f"Input channel ({cin} of them, strongest first)", options,
                              format_func=names.get, **named(f"{key}_input", options),
                              help="The filter has one slice of weights per input channel; "
                              "the output adds the products of all of them. \"The strongest "
                              "here\" follows the position.")
        k = k if chosen in (None, STRONGEST) else chosen
    channel = result.input_channels[k]
    # the first layer also shows the pixels: two rows of two grids, else one row of three
    columns = (st.columns(2) + st.columns(2)) if result.pixels is not None else st.columns(3)
    limit = float(np.max(np.abs(result.patch[:, :, k]))) or 1.0
    if result.pixels is not None:
        plotly_chart(grid_figure(result.pixels[:, :, min(k, result.pixels.shape[2] - 1)],
                                 "pixels (0–255)", padded=result.padded, rows=result.rows,
                                 cols=result.cols, what="pixel"),
                     columns[0], key=f"{key}_pixels", width="stretch", config=STILL)
    plotly_chart(grid_figure(result.patch[:, :, k], f"patch · channel {channel}",
                             padded=result.padded, rows=result.rows, cols=result.cols,
                             limit=limit, what="input"),
                 columns[-3], key=f"{key}_patch", width="stretch", config=STILL)
    plotly_chart(grid_figure(result.kernel[:, :, k], "× kernel (weights)", what="weight"),
                 columns[-2], key=f"{key}_kernel", width="stretch", config=STILL)
    plotly_chart(grid_figure(result.products[:, :, k],
                             f"= products · sum {short_number(sums[k])}",
                             padded=result.padded, rows=result.rows, cols=result.cols,
                             what="product"),
                 columns[-1], key=f"{key}_products", width="stretch", config=STILL)
    if result.pixels is not None:
        st.caption(f"The first layer reads the image after the model's preprocessing "
                   f"({literal_code(result.preprocessing)}): the pixels on the left become "
                   "the patch's numbers.")
    if result.depthwise is not None:
        st.caption("A separable convolution works in two steps: a depthwise filter per input "
                   "channel, then a 1×1 mix of their results. Its kernel here is the product "
                   "of both, the same sum in one step.")
        top = np.argsort(-np.abs(result.depthwise * result.pointwise), kind="stable")[:BARS]
        plotly_chart(bars_figure([f"depthwise {j} × {short_number(result.pointwise[j])}"
                                  for j in top], result.depthwise[top] * result.pointwise[top],
                                 "the 1×1 mix: depthwise values × pointwise weights"),
                     key=f"{key}_pointwise", width="stretch", config=STILL)
    if cin > 1:
        top = order[:BARS]
        plotly_chart(bars_figure([f"channel {result.input_channels[i]}" for i in top],
                                 sums[top], f"What each input channel adds (largest {len(top)}"
                                 f" of {cin})", what="sum of its products"),
                     key=f"{key}_channels", width="stretch", config=STILL)
    if image_display is not None:
        h, w = image_display.shape[:2]
        box = (max(0, int(result.cols[0])), max(0, int(result.rows[0])),
               min(w, int(result.cols[-1]) + 1), min(h, int(result.rows[-1]) + 1))
        st.image(outlined(image_display, box, colour=(255, 159, 0), width=2),
                 caption="Where the patch lies on the image (orange frame)", width=240)


def show_pool(result, key: str) -> None:
    """A pooling window and its maximum or mean."""
    _metrics([
        (f"{result.operation.capitalize()} of the window", result.activation,
         "padding cells take no part"),
        ("Cells inside the input", str(result.count), "the mean divides by these"),
        ("Model's value", result.model_activation, "read from the model's own output"),
    ])
    st.markdown(f"**{literal(result.equation_text())}**")
    _check(result)
    marked = None
    if result.picked is not None:
        marked = np.zeros(result.window.shape, bool)
        marked[result.picked] = True
    plotly_chart(grid_figure(result.window, f"window of {result.source}",
                             padded=result.padded, marked=marked, rows=result.rows,
                             cols=result.cols, what="input"),
                 key=f"{key}_window", width="stretch", config=STILL)
    st.caption("Max pooling keeps the largest number of each window (outlined); average "
               "pooling their mean. Neither has weights to learn.")


def show_norm(result) -> None:
    """BatchNormalization's four numbers, folded into one scale and one shift."""
    _metrics([("Input x", result.value, f"from {result.source}"),
              ("scale", result.scale, "γ / √(variance + ε)"),
              ("shift", result.shift, "β − mean · scale"),
              ("Output", result.activation, "scale · x + shift, computed here"),
              ("Model's value", result.model_activation, "read from the model")])
    _check(result)
    st.table(pd.DataFrame({
        "number": ["γ (gamma, learned scale)", "β (beta, learned shift)", "moving mean",
                   "moving variance", "ε (epsilon)"],
        "value": [f"{v:.6g}" for v in (result.gamma, result.beta, result.moving_mean,
                                        result.moving_variance, result.epsilon)]}))
    st.markdown("BatchNorm computes **γ · (x − mean) / √(variance + ε) + β**, which is one "
                "multiplication and one addition: **scale · x + shift**. The mean and variance "
                "were measured on the training images and are fixed now.")


def show_element(result) -> None:
    """An activation layer: one number in, one out."""
    _metrics([("Input z", result.value, f"from {result.source}"),
              (result.activation_name, result.activation, result.activation_formula),
              ("Model's value", result.model_activation, "read from the model")])
    st.markdown(f"**{literal(result.activation_formula)}**")
    _check(result)


def show_dense(result, key: str) -> None:
    """A dense unit: the largest contributions, the sum, the activation; probabilities."""
    _metrics([
        ("Σ products", result.products_sum,
         f"{result.inputs.size} inputs × weights, added up"),
        ("Bias", result.bias, None), ("z = sum + bias", result.preactivation, "the logit"),
        (result.activation_name, result.activation, result.activation_formula),
        ("Model's value", result.model_activation, "read from the model")])
    st.markdown(f"**{literal(result.equation_text())}**")
    _check(result)
    if result.labels:
        st.caption(f"Unit {result.channel} is the class **{literal(result.labels[result.channel])}**.")
    top = np.argsort(-np.abs(result.products), kind="stable")[:BARS]
    plotly_chart(bars_figure([f"{result.input_name(i)} ({short_number(result.inputs[i])} × "
                              f"{short_number(result.weights[i])})" for i in top],
                             result.products[top],
                             f"The {len(top)} largest contributions of {result.inputs.size}"),
                 key=f"{key}_dense", width="stretch", config=STILL)
    if result.probabilities is not None:
        show_probabilities(result.logits, result.probabilities, None, result.labels,
                           result.activation_name)


def show_probabilities(logits, probabilities, model_probabilities, labels, kind: str,
                       top: int = 8) -> None:
    """Logits to probabilities: the classes with the largest, as a table."""
    order = np.argsort(-np.asarray(probabilities), kind="stable")[:top]
    table = {"class": [labels[i] if labels else f"unit {i}" for i in order],
             "logit z": [f"{logits[i]:.4g}" for i in order]}
    if kind == "softmax":
        shifted = np.exp(np.asarray(logits) - np.max(logits))
        table["e^(z − max z)"] = [f"{shifted[i]:.4g}" for i in order]
    table["probability"] = [f"{probabilities[i]:.4f}" for i in order]
    if model_probabilities is not None:
        table["the model's"] = [f"{model_probabilities[i]:.4f}" for i in order]
    st.table(pd.DataFrame(table))
    if kind == "softmax":
        st.caption("Softmax: each class's e^z divided by the sum over all classes, so the "
                   "probabilities add up to 1 (subtracting the largest logit first changes "
                   "nothing but keeps the numbers small).")
    else:
        st.caption("Sigmoid: each unit on its own, 1 / (1 + e^−z); they need not add up to 1.")


def show_sandbox(make, key: str = "lesson_sb") -> None:
    """The sandbox: sliders, the output size formula, the grids of one output cell.

    ``make(size, kernel, stride, padding, dilation)`` returns a
    :class:`viz_core.features.arithmetic_sandbox.Sandbox` or raises a VizError.
    """
    from viz_core.errors import VizError
    from viz_core.features.arithmetic_sandbox import (DILATIONS, KERNELS, PADDINGS, SIZES,
                                                      STRIDES)

    # the sliders beside the grids they shape (open in presenter mode too), the formula
    # right under them
    left, right = st.columns([1, 3])
    with left:
        size = st.slider("Input size n", *SIZES, value=7, key=f"{key}_size", **LINKED)
        kernel = st.slider("Kernel size k", *KERNELS, value=3, key=f"{key}_kernel", **LINKED)
        stride = st.slider("Stride s", *STRIDES, value=1, key=f"{key}_stride", **LINKED)
        padding = st.slider("Padding p", *PADDINGS, value=0, key=f"{key}_padding", **LINKED)
        dilation = st.slider("Dilation d", *DILATIONS, value=1, key=f"{key}_dilation", **LINKED)
        try:
            box = make(size, kernel, stride, padding, dilation)
        except VizError as exc:
            right.warning(literal(str(exc)), icon=":material/warning:")
            return
        st.caption("Output size = ⌊(n + 2p − d·(k − 1) − 1) / s⌋ + 1: the window spans "
                   "d·(k − 1) + 1 cells and moves s cells at a time.")
        if box.unused:
            st.caption(f"The stride does not divide the rest: the last {box.unused} row(s) "
                       "and column(s) of the padded input are never read.")
        for name in ("row", "col"):
            within(f"{key}_{name}", 0, box.size - 1)
        pick = st.columns(2)
        i = pick[0].number_input("Output row", 0, box.size - 1, 0, key=f"{key}_row", **LINKED)
        j = pick[1].number_input("Output column", 0, box.size - 1, 0, key=f"{key}_col",
                                 **LINKED)
    rows, cols = box.reads(i, j)
    read = np.zeros(box.padded.shape, bool)
    read[np.ix_(rows, cols)] = True
    n = box.inputs.shape[0]
    frame = np.ones(box.padded.shape, bool)
    frame[padding:padding + n, padding:padding + n] = False
    labels = list(range(-padding, n + padding))
    out_marked = np.zeros(box.output.shape, bool)
    out_marked[i, j] = True
    # the size with these numbers, right above the grids: on a projector's first screen too
    right.markdown(f"**Output size** = {literal(box.formula)}")
    columns = right.columns([5, 3, 4])
    cell = SANDBOX_CELL_PX
    plotly_chart(grid_figure(box.padded, "input, window outlined", padded=frame, marked=read,
                             rows=labels, cols=labels, cell_px=cell),
                 columns[0], key=f"{key}_input", width="stretch", config=STILL)
    plotly_chart(grid_figure(box.kernel, "kernel", cell_px=cell), columns[1],
                 key=f"{key}_kernel_grid", width="stretch", config=STILL)
    plotly_chart(grid_figure(box.output, f"output {box.size}×{box.size}", marked=out_marked,
                             cell_px=cell),
                 columns[2], key=f"{key}_output", width="stretch", config=STILL)
    products = box.products(i, j)
    right.markdown(f"Output ({i}, {j}) = sum of the window × kernel = "
                   + " + ".join(short_number(p) for p in products.ravel() if p != 0)
                   .replace("+ -", "− ") + f" = **{short_number(box.output[i, j])}**"
                   if np.any(products) else f"Output ({i}, {j}) = **0** (every product is 0)")
