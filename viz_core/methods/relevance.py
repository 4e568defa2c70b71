"""Layer-wise relevance propagation (LRP): the class score handed back, layer by layer, to the pixels.

Written here by hand because no maintained LRP runs on Keras 3: iNNvestigate stops at
TensorFlow 2.14 (with eager execution off) and zennit is PyTorch only.

How it runs (Bach et al. 2015; Montavon et al. 2019, "Layer-wise relevance propagation: an
overview"):

1. The model is rebuilt as one flat graph (:func:`viz_core.models.graph.flat_graph`: nested
   sub-models inlined), ending at the class *logits* (the output layer's softmax or sigmoid
   left out). A canonizer then folds each BatchNormalization that directly follows a Conv2D,
   DepthwiseConv2D or Dense without activation into that layer's weights (tensors computed from
   the variables; the caller's model is never changed).
2. One forward pass records every layer's input.
3. Relevance starts at the logits as ``logits * v`` with ``v`` the target's score coefficients
   (:func:`viz_core.methods.scores.score_coefficients`: one-hot for softmax models, +1 / -1
   for class 1 / 0 of one sigmoid unit), so it sums to the class score.
4. A backward sweep over the graph applies each layer's rule. Conv and Dense layers use the
   "gradient trick": ``R_in = x * W^T (R_out / z)`` with ``z`` the layer's (stabilised) output
   and ``W^T s`` the gradient of ``z . s`` (a vector-Jacobian product of the layer alone, with
   modified weights for z+ and alpha-beta).

Rules for Conv2D / DepthwiseConv2D / Dense (and Conv1D / Conv3D):

* ``epsilon``: ``z = x W + b``, ``R_in = x * W^T (R / (z + eps sign z))`` (bias and epsilon
  absorb a little relevance);
* ``alphabeta`` (``zplus`` = alpha 1, beta 0): positive and negative contributions
  ``z+ = x+ W+ + x- W- + b+`` and ``z- = x+ W- + x- W+ + b-`` propagated separately,
  ``R_in = alpha R+ - beta R-``;
* ``flat``: every input of an output's receptive field gets an equal share (weights and inputs
  set to one), used on the first layer by the composite.

Other layers: max pooling (2-D and global) gives each window's relevance to its winner;
average pooling (2-D and global) splits it in proportion to the inputs (the epsilon rule with
unit weights); Flatten, Reshape, Permute, ZeroPadding2D, Cropping2D and Concatenate move
relevance back where the values came from; Add splits it in proportion to each input's
contribution; element-wise layers pass it through unchanged (activations, Dropout and other
layers that only act in training, Rescaling / Normalization, and a BatchNormalization that
could not be folded, e.g. one after pooling: the z-rule of a one-input layer without its
shift). Anything else is refused with a :class:`~viz_core.errors.ModelError` naming the layer.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from viz_core.errors import ModelError, ParameterError
from viz_core.methods.context import MethodContext
from viz_core.methods.scores import require_logits, score_coefficients
from viz_core.methods.steps import flat_model_graph, step_cache
from viz_core.models.preprocess import preprocessing_function

L = keras.layers
#: Layers with weights and a z-rule (linear in their input).
_CONV = (L.Conv1D, L.Conv2D, L.Conv3D, L.DepthwiseConv2D)
_LINEAR = _CONV + (L.Dense,)
#: Layers that act element by element on their one input: relevance passes through unchanged.
_ELEMENTWISE = (L.ReLU, L.Activation, L.LeakyReLU, L.ELU, L.Softmax, L.Dropout,
                L.SpatialDropout1D, L.SpatialDropout2D, L.SpatialDropout3D, L.GaussianNoise,
                L.GaussianDropout, L.AlphaDropout, L.ActivityRegularization, L.Rescaling,
                L.Normalization, L.BatchNormalization, L.Identity)
#: Layers that only move values (or pick the largest): relevance follows the gradient.
_ROUTING = (L.Flatten, L.Reshape, L.Permute, L.ZeroPadding2D, L.Cropping2D, L.Concatenate,
            L.MaxPooling2D, L.MaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling1D)
_AVERAGING = (L.AveragePooling2D, L.AveragePooling1D, L.GlobalAveragePooling2D,
              L.GlobalAveragePooling1D)
_TINY = 1e-9  # keeps the z+ / flat denominators away from zero without moving relevance


@dataclass(frozen=True)
class Rule:
    """How a Conv/Dense layer hands relevance back: ``"epsilon"``, ``"alphabeta"`` or ``"flat"``."""

    name: str
    epsilon: float = 0.0
    alpha: float = 1.0
    beta: float = 0.0


@dataclass(frozen=True, eq=False)
class _Step:
    """One layer of the flat graph: its inputs' and output's tensor ids, a BatchNormalization
    folded into it (or None) and whether it is the first weighted layer from the input."""

    layer: object
    inputs: tuple
    output: int
    folded: object = None
    first: bool = False


@dataclass(frozen=True, eq=False)
class RelevancePlan:
    """The flat graph of a model, ready for relevance propagation.

    Attributes
    ----------
    steps : tuple of _Step
        In order from the input to the logits.
    recorder : keras.Model
        Model input -> [logits, output, the input of every step (in ``recorded`` order)]
        (the output left out when it is the logits).
    recorded : tuple of int
        Tensor ids recorded by ``recorder`` (after the logits).
    input_id, logits_id : int
    """

    steps: tuple
    recorder: object
    recorded: tuple
    input_id: int
    logits_id: int
    logits_are_output: bool


def _history(tensor):
    """(layer, input tensors) of the node that made ``tensor``, or (None, ()) for an input."""
    layer, node_index, _ = tensor._keras_history
    if isinstance(layer, L.InputLayer):
        return None, ()
    node = layer._inbound_nodes[node_index]
    return layer, tuple(keras.tree.flatten(node.input_tensors))


def _describe(layer) -> str:
    return f"LRP has no rule for layer {layer.name!r} ({type(layer).__name__})"


def _check_layer(layer, inputs) -> None:
    """Refuse layers (and settings) no rule here covers, naming the layer."""
    if isinstance(layer, keras.Model) or not isinstance(layer, _LINEAR + _ELEMENTWISE + _ROUTING
                                                         + _AVERAGING + (L.Add,)):
        raise ModelError(f"{_describe(layer)}. Supported: Conv, DepthwiseConv2D, Dense, pooling, "
                         "Flatten, Reshape, Add, Concatenate, BatchNormalization, activations "
                         "and Dropout.")
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise ModelError(f"{_describe(layer)} with data_format {layer.data_format!r}; only "
                         "channels_last is covered.")
    if isinstance(layer, _CONV) and getattr(layer, "groups", 1) != 1:
        raise ModelError(f"{_describe(layer)} with groups={layer.groups}.")
    if isinstance(layer, _CONV) and str(layer.padding).lower() not in ("same", "valid"):
        raise ModelError(f"{_describe(layer)} with padding {layer.padding!r}.")
    if isinstance(layer, L.BatchNormalization) and layer.axis not in (-1, len(inputs[0].shape) - 1):
        raise ModelError(f"{_describe(layer)} normalising axis {layer.axis}.")


def build_plan(flat) -> RelevancePlan:
    """The steps from ``flat.inputs`` to ``flat.logits``, BatchNormalization folded where it can
    be, every layer checked (see :func:`_check_layer`).

    Raises
    ------
    ModelError
        A layer without a rule, or no logits to start from.
    """
    if flat.logits is None:
        raise ModelError("LRP starts from the class logits, but this model's output activation "
                         "cannot be undone.")
    tensors: dict[int, object] = {}
    order: list[tuple] = []  # (layer, input tensors, output tensor), inputs before outputs
    seen: set[int] = set()

    def visit(tensor):
        stack = [(tensor, False)]
        while stack:
            t, expanded = stack.pop()
            if id(t) in seen and not expanded:
                continue
            layer, ins = _history(t)
            tensors[id(t)] = t
            if expanded:
                order.append((layer, ins, t))
                continue
            seen.add(id(t))
            if layer is None:
                continue
            stack.append((t, True))
            stack.extend((i, False) for i in ins if id(i) not in seen)

    visit(flat.logits)
    consumers: dict[int, int] = {}
    for layer, ins, _ in order:
        for i in ins:
            consumers[id(i)] = consumers.get(id(i), 0) + 1
    for layer, ins, _ in order:
        _check_layer(layer, ins)
    # the canonizer: BatchNormalization right after a linear layer without activation
    made = {id(out): (layer, ins) for layer, ins, out in order}
    folded_into: dict[int, object] = {}  # id(linear output) -> its BN step, to drop
    fold_bn: dict[int, tuple] = {}  # id(BN output) -> (linear layer, its inputs)
    for layer, ins, out in order:
        if not isinstance(layer, L.BatchNormalization):
            continue
        producer = made.get(id(ins[0]))
        if (producer is not None and isinstance(producer[0], _LINEAR)
                and getattr(producer[0].activation, "__name__", "") == "linear"
                and consumers.get(id(ins[0])) == 1):
            folded_into[id(ins[0])] = layer
            fold_bn[id(out)] = producer
    depth: dict[int, int] = {id(flat.inputs): 0}  # weighted layers between the input and a tensor
    steps = []
    for layer, ins, out in order:
        if id(out) in folded_into:
            continue  # the linear layer is applied with its BatchNormalization
        if id(out) in fold_bn:
            linear, linear_ins = fold_bn[id(out)]
            before = max(depth.get(id(i), 0) for i in linear_ins)
            depth[id(out)] = before + 1
            steps.append(_Step(linear, tuple(id(i) for i in linear_ins), id(out), layer,
                               before == 0))
            continue
        before = max((depth.get(id(i), 0) for i in ins), default=0)
        weighted = isinstance(layer, _LINEAR)
        depth[id(out)] = before + int(weighted)
        steps.append(_Step(layer, tuple(id(i) for i in ins), id(out), None,
                           weighted and before == 0))
    recorded = tuple(dict.fromkeys(i for s in steps for i in s.inputs if i != id(flat.inputs)))
    same = flat.logits is flat.output  # Keras refuses one tensor listed twice as an output
    ends = [flat.logits] if same else [flat.logits, flat.output]
    recorder = keras.Model(flat.inputs, ends + [tensors[i] for i in recorded])
    return RelevancePlan(tuple(steps), recorder, recorded, id(flat.inputs), id(flat.logits), same)


# --------------------------------------------------------------------------------------------
# Rules (TensorFlow, inside one compiled function)
# --------------------------------------------------------------------------------------------
def _divide(r, z, epsilon):
    """``r / (z + epsilon * sign(z))`` with sign(0) = 1; 0 where that is still 0."""
    den = z + epsilon * tf.where(z >= 0, 1.0, -1.0)
    safe = tf.where(den == 0, tf.ones_like(den), den)
    return tf.where(den == 0, tf.zeros_like(r), r / safe)


def _weights(step: _Step):
    """(kernel, bias) of a weighted step, its BatchNormalization folded in; bias may be 0."""
    layer = step.layer
    kernel = tf.convert_to_tensor(layer.kernel)  # DepthwiseConv2D: (kh, kw, in, multiplier)
    bias = tf.convert_to_tensor(layer.bias) if layer.use_bias else tf.zeros(
        _out_channels(layer, kernel))
    bn = step.folded
    if bn is not None:
        var = tf.convert_to_tensor(bn.moving_variance)
        scale = tf.math.rsqrt(var + bn.epsilon)
        if bn.scale:
            scale = scale * tf.convert_to_tensor(bn.gamma)
        shift = -tf.convert_to_tensor(bn.moving_mean) * scale
        if bn.center:
            shift = shift + tf.convert_to_tensor(bn.beta)
        if isinstance(layer, L.DepthwiseConv2D):  # output channel c * mult + m
            kernel = kernel * tf.reshape(scale, kernel.shape[-2:])
        else:
            kernel = kernel * scale
        bias = bias * scale + shift
    return kernel, bias


def _out_channels(layer, kernel) -> int:
    if isinstance(layer, L.DepthwiseConv2D):
        return int(kernel.shape[-2] * kernel.shape[-1])
    return int(kernel.shape[-1])


def _linear(layer):
    """``f(x, kernel)``: the layer's linear map without bias (the same strides, padding)."""
    if isinstance(layer, L.Dense):
        return lambda x, w: tf.tensordot(x, w, axes=[[x.shape.rank - 1], [0]])
    padding = str(layer.padding).upper()
    if isinstance(layer, L.DepthwiseConv2D):
        strides = (1, *layer.strides, 1)
        return lambda x, w: tf.nn.depthwise_conv2d(x, w, strides, padding,
                                                   dilations=layer.dilation_rate)
    return lambda x, w: tf.nn.convolution(x, w, layer.strides, padding,
                                          dilations=layer.dilation_rate)


def _vjp(fn, x, s):
    """``J^T s`` of ``fn`` at ``x`` (for a linear ``fn``: ``W^T s``)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return tape.gradient(y, x, output_gradients=s)


def _weighted_rule(step: _Step, rule: Rule, x, r):
    kernel, bias = _weights(step)
    f = _linear(step.layer)
    if rule.name == "flat":
        ones_w = tf.ones_like(kernel)
        ones_x = tf.ones_like(x)
        z = f(ones_x, ones_w)
        return _vjp(lambda v: f(v, ones_w), ones_x, _divide(r, z, _TINY))
    if rule.name == "epsilon":
        z = f(x, kernel) + bias
        return x * _vjp(lambda v: f(v, kernel), x, _divide(r, z, rule.epsilon))
    w_pos, w_neg = tf.maximum(kernel, 0.0), tf.minimum(kernel, 0.0)
    x_pos, x_neg = tf.maximum(x, 0.0), tf.minimum(x, 0.0)

    def share(w_a, w_b, r, z):  # x+ takes its share through w_a, x- through w_b
        s = _divide(r, z, _TINY)
        return x_pos * _vjp(lambda v: f(v, w_a), x, s) + x_neg * _vjp(lambda v: f(v, w_b), x, s)

    def general():
        z_pos = f(x_pos, w_pos) + f(x_neg, w_neg) + tf.maximum(bias, 0.0)
        out = rule.alpha * share(w_pos, w_neg, r, z_pos)
        if rule.beta:
            z_neg = f(x_pos, w_neg) + f(x_neg, w_pos) + tf.minimum(bias, 0.0)
            out = out - rule.beta * share(w_neg, w_pos, r, z_neg)
        return out

    def non_negative():  # after a ReLU the x- halves vanish: half the convolutions
        s = _divide(r, f(x, w_pos) + tf.maximum(bias, 0.0), _TINY)
        out = rule.alpha * x * _vjp(lambda v: f(v, w_pos), x, s)
        if rule.beta:
            s = _divide(r, f(x, w_neg) + tf.minimum(bias, 0.0), _TINY)
            out = out - rule.beta * x * _vjp(lambda v: f(v, w_neg), x, s)
        return out

    return tf.cond(tf.reduce_min(x) >= 0.0, non_negative, general)


def _step_relevance(step: _Step, rule: Rule, xs, r):
    """Relevance of each input of ``step`` (a list) from the relevance ``r`` of its output."""
    layer = step.layer
    if isinstance(layer, _LINEAR):
        return [_weighted_rule(step, rule, xs[0], r)]
    if isinstance(layer, _ELEMENTWISE):
        return [r]
    if isinstance(layer, _ROUTING):
        with tf.GradientTape() as tape:
            tape.watch(xs)
            y = layer(xs if len(xs) > 1 else xs[0], training=False)
        return tape.gradient(y, xs, output_gradients=r)
    if isinstance(layer, _AVERAGING):
        x = xs[0]
        z = layer(x, training=False)
        return [x * _vjp(lambda v: layer(v, training=False), x, _divide(r, z, _TINY))]
    # Add: each input's share of the sum
    s = _divide(r, tf.add_n(xs), _TINY)
    return [x * s for x in xs]


def propagate(plan: RelevancePlan, x, v_logit, rule_for):
    """Input relevance (N, H, W, C), the logits and the output (N, units) of the model input
    ``x``.

    ``v_logit`` (N, units) weighs the logits into the class score relevance starts from;
    ``rule_for(step) -> Rule`` picks each weighted layer's rule.
    """
    x = tf.convert_to_tensor(x, dtype=tf.float32)
    v_logit = tf.convert_to_tensor(v_logit, dtype=tf.float32)
    outs = plan.recorder(x, training=False)
    logits = outs[0]
    output, inputs = (logits, outs[1:]) if plan.logits_are_output else (outs[1], outs[2:])
    values = dict(zip(plan.recorded, inputs))
    values[plan.input_id] = x
    relevance = {plan.logits_id: logits * v_logit}
    for step in reversed(plan.steps):
        r = relevance.pop(step.output, None)
        if r is None:
            continue  # nothing reached this layer
        xs = [values[i] for i in step.inputs]
        rule = rule_for(step) if isinstance(step.layer, _LINEAR) else None
        for i, r_in in zip(step.inputs, _step_relevance(step, rule, xs, r)):
            relevance[i] = relevance[i] + r_in if i in relevance else r_in
    r_input = relevance.get(plan.input_id)
    return (tf.zeros_like(x) if r_input is None else r_input), logits, output


# --------------------------------------------------------------------------------------------
# The registered methods
# --------------------------------------------------------------------------------------------
def _composite(epsilon: float):
    """epsilon-plus-flat: flat on the first weighted layer, z+ on convolutions, epsilon on Dense."""
    flat, zplus, eps = Rule("flat"), Rule("alphabeta", alpha=1.0, beta=0.0), Rule("epsilon", epsilon)

    def rule_for(step):
        if step.first:
            return flat
        return zplus if isinstance(step.layer, _CONV) else eps
    return rule_for


def _explainer(ctx: MethodContext, key: tuple, rule_for):
    """The compiled ``pixels (1, H, W, C), v_logit -> (input relevance, logits)`` of the model."""
    model = ctx.model

    def build():
        plan = model.derived(("lrp_plan",), lambda: build_plan(flat_model_graph(model)))
        prep = preprocessing_function(model.preprocessing)

        @tf.function(reduce_retracing=True)
        def explain(pixels, v_logit):
            return propagate(plan, prep(pixels), v_logit, rule_for)
        return explain

    return model.derived(("lrp",) + key, build)


def relevance_map(ctx: MethodContext, key: tuple, rule_for):
    """(H, W) relevance of the pixels (summed over colour channels) and the extras
    ``attribution_sum`` (the sum over every pixel and channel) and ``score`` (the relevance
    put in at the logits: the class score)."""
    model = ctx.model
    if ctx.target.score != "logit":
        raise ParameterError("LRP hands back the class logit; choose the logit score, not "
                             f"{ctx.target.score!r}.")
    units = int(model.model.outputs[0].shape[-1])
    v_logit, _, _ = score_coefficients(ctx.target, model.info.output_kind, units)
    require_logits(flat_model_graph(model).logits is not None, model, ctx.target)
    explain = _explainer(ctx, key, rule_for)
    pixels = tf.constant(ctx.image.pixels[None].astype("float32"))
    r_input, logits, output = explain(pixels, tf.constant(v_logit[None]))
    # class_heatmap reads the class probability from here: no second forward pass
    step_cache(model).put(("scores", ctx.image.cache_key),
                          (np.asarray(logits[0]), np.asarray(output[0])))
    r_input = np.asarray(r_input, dtype="float64")[0]
    score = float(np.asarray(logits, dtype="float64")[0] @ v_logit)
    extras = {"attribution_sum": float(r_input.sum()), "score": score}
    return r_input.sum(axis=-1).astype("float32"), extras


def lrp_epsilon_map(ctx: MethodContext, *, epsilon: float):
    """LRP-epsilon on every layer; (H, W) float32 signed relevance, extras."""
    rule = Rule("epsilon", epsilon=epsilon)
    return relevance_map(ctx, ("epsilon", epsilon), lambda step: rule)


def lrp_zplus_map(ctx: MethodContext):
    """LRP-z+ (alpha 1, beta 0) on every layer; (H, W) float32 signed relevance, extras."""
    rule = Rule("alphabeta", alpha=1.0, beta=0.0)
    return relevance_map(ctx, ("zplus",), lambda step: rule)


def lrp_alphabeta_map(ctx: MethodContext, *, alpha: float, beta: float):
    """LRP-alpha-beta on every layer (alpha - beta must be 1); (H, W) float32, extras."""
    if abs(alpha - beta - 1.0) > 1e-6:
        raise ParameterError(f"LRP-alpha-beta needs alpha - beta = 1 to keep the total "
                             f"relevance; got alpha {alpha} and beta {beta}.")
    rule = Rule("alphabeta", alpha=alpha, beta=beta)
    return relevance_map(ctx, ("alphabeta", alpha, beta), lambda step: rule)


def lrp_composite_map(ctx: MethodContext, *, epsilon: float):
    """LRP epsilon-plus-flat (see :func:`_composite`); (H, W) float32 signed relevance, extras."""
    return relevance_map(ctx, ("composite", epsilon), _composite(epsilon))
