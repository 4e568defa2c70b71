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
2. One forward sweep over the plan (inside one compiled function, any batch size) keeps every
   layer's input and, for the weighted layers, what their rule divides by: the pre-activation
   ``z`` (BatchNorm folded), or for alpha-beta ``z+`` and ``z-``, whose sum is ``z``. On an
   input known to be non-negative (after a ReLU, a pooling of one...) or found so by a sign
   check, ``x-`` is 0 and they are ``x W+`` and ``x W-``: two convolutions forward and two
   transposed ones back. Elsewhere (pixels with a mean subtracted, a BatchNorm without ReLU)
   the four sign products run, for a convolution as one call each way on the stacked
   ``[x+, x-]``. So no layer runs twice. Dense kernels are split into ``W+`` / ``W-`` in row
   blocks (VGG16's 103-million-weight layer is then read from memory once per sweep, not four
   times), and only the rows whose input is non-zero in some image are read.
3. Relevance starts at the logits as ``logits * v`` with ``v`` the target's score coefficients
   (:func:`viz_core.methods.scores.score_coefficients`: one-hot for softmax models, +1 / -1
   for class 1 / 0 of one sigmoid unit), so it sums to the class score.
4. A backward sweep over the graph applies each layer's rule. Conv and Dense layers use the
   "gradient trick": ``R_in = x * W^T (R_out / z)`` with ``z`` the layer's (stabilised) output
   and ``W^T s`` the gradient of ``z . s`` (a vector-Jacobian product of the layer alone, with
   modified weights for z+ and alpha-beta: one transposed convolution).

The registered functions take one image (a :class:`~viz_core.methods.context.MethodContext`)
or a stack (a :class:`~viz_core.methods.context.PixelBatch`, from
:func:`viz_core.methods.heatmap.class_heatmaps`): a batch is one compiled call.

Rules for Conv2D / DepthwiseConv2D / Dense (and Conv1D / Conv3D):

* ``epsilon``: ``z = x W + b``, ``R_in = x * W^T (R / (z + eps sign z))`` (bias and epsilon
  absorb a little relevance);
* ``alphabeta`` (``zplus`` = alpha 1, beta 0): positive and negative contributions
  ``z+ = x+ W+ + x- W- + b+`` and ``z- = x+ W- + x- W+ + b-`` propagated separately,
  ``R_in = alpha R+ - beta R-``;
* ``flat``: every input of an output's receptive field gets an equal share (weights and inputs
  set to one), used on the first layer by the composite;
* ``bounded`` (z^B, Montavon et al. 2017): for the first layer, whose inputs lie between known
  bounds ``l`` and ``h`` (the preprocessed black and white pixel): each input's share is
  ``x w - l w+ - h w-``; the composite's ``bounded=1``.

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
from viz_core.methods.context import PixelBatch
from viz_core.methods.scores import batch_coefficients, require_logits
from viz_core.methods.steps import flat_model_graph, step_cache
from viz_core.models.inspect import activation_name
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
    """How a Conv/Dense layer hands relevance back: ``"epsilon"``, ``"alphabeta"``, ``"flat"``
    or ``"bounded"`` (z^B, the first layer only; elsewhere it falls back to flat)."""

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
    input_id, logits_id : int
        Tensor ids of the model input and the logits.
    logits_are_output : bool
    output_of : callable
        ``logits -> output`` (the output layer's softmax or sigmoid; identity when the logits
        are the output).
    values_per_image : int
        Numbers in every layer's output for one image (what one image's sweep keeps, about).
    nonnegative : frozenset of int
        Tensor ids that cannot be negative (after a ReLU, a softmax, a sigmoid, and what only
        moves, pools or adds such values): there the alpha-beta rule needs half the convolutions.
    """

    steps: tuple
    input_id: int
    logits_id: int
    logits_are_output: bool
    output_of: object
    nonnegative: frozenset = frozenset()
    values_per_image: int = 0


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
    same = flat.logits is flat.output
    sizes = [int(np.prod([d or 1 for d in tensors[s.output].shape[1:]])) for s in steps]
    return RelevancePlan(tuple(steps), id(flat.inputs), id(flat.logits), same,
                         _output_function(flat, same), _nonnegative(steps), sum(sizes))


def _output_function(flat, same: bool):
    """``logits -> output``: the output layer's activation, from the logits the plan ends at."""
    if same:
        return lambda logits: logits
    final, ins = _history(flat.output)
    if ins and ins[0] is flat.logits:  # an Activation / Softmax layer on the logits
        return lambda logits: final(logits, training=False)
    return final.activation  # a Dense/Conv with softmax or sigmoid: its linear twin made them


_NON_NEGATIVE_ACTIVATIONS = ("relu", "relu6", "sigmoid", "softmax", "hard_sigmoid")
#: Layers whose output is non-negative when every input is (they move, pick, pool or add).
_KEEPS_SIGN = _ROUTING + _AVERAGING + (L.Add, L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D,
                                       L.SpatialDropout3D, L.GaussianNoise, L.GaussianDropout,
                                       L.AlphaDropout, L.ActivityRegularization, L.Identity)


def _nonnegative(steps) -> frozenset:
    """Ids of the tensors that cannot be negative, known from the layers alone."""
    known: set[int] = set()
    for step in steps:
        layer = step.layer
        if isinstance(layer, L.ReLU):
            positive = (float(getattr(layer, "negative_slope", 0.0) or 0.0) == 0.0
                        and float(getattr(layer, "threshold", 0.0) or 0.0) >= 0.0)
        elif isinstance(layer, _KEEPS_SIGN):
            positive = all(i in known for i in step.inputs)
        elif step.folded is not None:
            positive = False  # the BatchNormalization after the layer may shift it below 0
        else:
            positive = activation_name(layer) in _NON_NEGATIVE_ACTIVATIONS
        if positive:
            known.add(step.output)
    return frozenset(known)


# --------------------------------------------------------------------------------------------
# Rules (TensorFlow, inside one compiled function)
# --------------------------------------------------------------------------------------------
def _divide(r, z, epsilon):
    """``r / (z + epsilon * sign(z))`` with sign(0) = 1 (``epsilon`` > 0, so never 0 / 0)."""
    return r / (z + tf.where(z >= 0, epsilon, -epsilon))


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


def _transposable(layer) -> bool:
    """A stride-1, undilated, odd-sized "same" Conv2D: its forward map is the transposed
    convolution of the flipped kernel (the same numbers; oneDNN's transposed convolution ran
    about a quarter faster than its forward one on VGG16's layers here)."""
    return (type(layer) is L.Conv2D and tuple(layer.strides) == (1, 1)
            and tuple(layer.dilation_rate) == (1, 1) and str(layer.padding).lower() == "same"
            and all(k % 2 == 1 for k in layer.kernel_size))


def _flipped(kernel):
    """The kernel of the transposed convolution that computes a Conv2D (see :func:`_transposable`)."""
    return tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])


def _transposed(x, flipped):
    """``x`` convolved ("same", stride 1) by the kernel whose :func:`_flipped` is ``flipped``."""
    shape = tf.concat([tf.shape(x)[:3], tf.shape(flipped)[2:3]], 0)
    return tf.nn.conv2d_transpose(x, flipped, shape, 1, "SAME")


def _forward_map(layer):
    """``f(x, kernel)`` like :func:`_linear`, for the forward sweep only (not differentiated)."""
    if _transposable(layer):
        return lambda x, w: _transposed(x, _flipped(w))
    return _linear(layer)


def _kernel_outweighs(kernel, t) -> bool:
    """Whether the kernel holds more values than one image's ``t`` (deep layers): then a
    difference of two outputs is cheaper than a second split of the kernel."""
    return kernel.shape.num_elements() > int(np.prod([d or 1 for d in t.shape[1:]]))


def _forward_pair(layer, x, kernel):
    """``(x W+, x W-)`` of a weighted layer, for the forward sweep; a transposable Conv2D's
    kernel is flipped once, then split (deep layers: ``x W- = x W - x W+``, one split)."""
    if _transposable(layer):
        flipped = _flipped(kernel)
        positive = tf.maximum(flipped, 0.0)
        pos = _transposed(x, positive)
        if _kernel_outweighs(kernel, pos):
            return pos, _transposed(x, flipped) - pos
        return pos, _transposed(x, flipped - positive)
    f = _linear(layer)
    return f(x, tf.maximum(kernel, 0.0)), f(x, tf.minimum(kernel, 0.0))


def _stacks(layer) -> bool:
    """Whether the layer's four sign products fit one call with the channels stacked (a
    convolution that sums over every input channel; not a depthwise one)."""
    return isinstance(layer, _CONV) and not isinstance(layer, L.DepthwiseConv2D)


def _four_term_kernel(kernel):
    """``[[W+, W-], [W-, W+]]``: input channels ``[x+, x-]`` (axis -2) to output channels
    ``[z+, z-]`` (axis -1), so ``[x+, x-] K = [x+ W+ + x- W-, x+ W- + x- W+]``."""
    w_pos = tf.maximum(kernel, 0.0)
    w_neg = kernel - w_pos
    return tf.concat([tf.concat([w_pos, w_neg], -1), tf.concat([w_neg, w_pos], -1)], -2)


def _signed_pair(layer, x, kernel):
    """``(z+, z-)`` without bias of a weighted layer whose input may be negative:
    ``z+ = x+ W+ + x- W-`` and ``z- = x+ W- + x- W+`` (a convolution: one call of the stacked
    ``[x+, x-]`` and :func:`_four_term_kernel`; otherwise four products)."""
    x_pos = tf.maximum(x, 0.0)
    x_neg = x - x_pos
    if _stacks(layer):
        both = _linear(layer)(tf.concat([x_pos, x_neg], -1), _four_term_kernel(kernel))
        return tuple(tf.split(both, 2, axis=-1))
    f = _linear(layer)
    w_pos, w_neg = tf.maximum(kernel, 0.0), tf.minimum(kernel, 0.0)
    return f(x_pos, w_pos) + f(x_neg, w_neg), f(x_pos, w_neg) + f(x_neg, w_pos)


def _vjp(fn, x, s):
    """``J^T s`` of ``fn`` at ``x`` (for a linear ``fn``: ``W^T s``, one transposed
    convolution; the forward call is not run, nothing reads it)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return tape.gradient(y, x, output_gradients=s)


@dataclass(frozen=True, eq=False)
class _Linear:
    """What the forward sweep kept of a weighted step for its rule: the layer's map ``f``, its
    (folded) kernel and bias, the pre-activation ``z`` and, for the alpha-beta rule, ``z+`` and
    ``z-`` without bias (whose sum is ``z - b``; ``x W+`` and ``x W-`` for a non-negative
    input). ``signed``: the input was not known to be non-negative before the sweep."""

    f: object
    kernel: object
    bias: object
    z: object
    pos: object = None
    neg: object = None
    dense: bool = False
    signed: bool = False
    stacks: bool = False


#: A Dense kernel is split into W+ and W- in row blocks of about this many values, so each
#: block is read from memory once and split while in the cache (VGG16's first dense layer
#: holds 103 million weights: splitting it whole cost four times its forward pass).
_BLOCK_VALUES = 2**22


def _row_blocks(kernel):
    """Row ranges ``(start, stop)`` of a Dense kernel (in, out) of about :data:`_BLOCK_VALUES`."""
    rows, cols = int(kernel.shape[0]), int(kernel.shape[1])
    size = max(1, _BLOCK_VALUES // max(1, cols))
    return [(a, min(rows, a + size)) for a in range(0, rows, size)]


#: The input rows (features) of a Dense layer that are zero in every image add nothing to ``z``
#: and get no relevance back, so when at most this share of them is non-zero only the other
#: rows of the kernel are read (VGG16's first dense layer sees 41% zeros with random weights).
_GATHER_BELOW = 0.8


def _as_rows(t):
    """``t`` (..., features) as a matrix (rows, features)."""
    return tf.reshape(t, [-1, int(t.shape[-1])])


def _dense_blocks(x2, kernel, each):
    """``each(block, xb, rows)`` over the kernel's row blocks (rows: the block's input rows that
    are not zero in every image, or None for all), on the non-zero rows only when few are."""
    def run(gather):
        out = []
        for a, b in _row_blocks(kernel):
            block, xb, rows = kernel[a:b], x2[:, a:b], None
            if gather:
                rows = tf.where(tf.reduce_any(tf.not_equal(xb, 0.0), axis=0))[:, 0]
                block, xb = tf.gather(block, rows), tf.gather(xb, rows, axis=1)
            out.append(each(block, xb, rows, b - a))
        return out

    nonzero = tf.reduce_mean(tf.cast(tf.reduce_any(tf.not_equal(x2, 0.0), axis=0), tf.float32))
    return tf.cond(nonzero <= _GATHER_BELOW, lambda: run(True), lambda: run(False))


def _dense_split_forward(x, kernel):
    """``(x W+, x W-)`` of a Dense layer, block by block over the kernel's rows: ``x W+`` and
    ``x W``, then ``x W- = x W - x W+`` (one split of each block, not two)."""
    x2 = _as_rows(x)

    def products(block, xb, rows, size):
        return tf.matmul(xb, tf.maximum(block, 0.0)), tf.matmul(xb, block)

    parts = _dense_blocks(x2, kernel, products)
    pos, whole = tf.add_n([p for p, _ in parts]), tf.add_n([w for _, w in parts])
    shape = tf.concat([tf.shape(x)[:-1], tf.shape(kernel)[1:]], 0)
    return tf.reshape(pos, shape), tf.reshape(whole - pos, shape)


def _dense_split_backward(x, u, v, kernel):
    """``x (W+ u - W- v)`` (the rows' shares) of a Dense layer, block by block over its rows, as
    ``x (W+ (u + v) - W v)`` (W- = W - W+: one split of each block)."""
    x2 = _as_rows(x)
    both = _as_rows(u if v is None else u + v)
    v2 = None if v is None else _as_rows(v)

    def shares(block, xb, rows, size):
        g = tf.matmul(both, tf.maximum(block, 0.0), transpose_b=True)
        if v2 is not None:
            g = g - tf.matmul(v2, block, transpose_b=True)
        r = xb * g
        if rows is None:
            return r
        shape = tf.stack([tf.constant(size, tf.int64), tf.shape(r, out_type=tf.int64)[0]])
        return tf.transpose(tf.scatter_nd(rows[:, None], tf.transpose(r), shape))

    parts = _dense_blocks(x2, kernel, shares)
    return tf.reshape(parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1), tf.shape(x))


def _no_negative_value(x):
    """A boolean scalar tensor: no value of ``x`` is negative (the alpha-beta rule then skips
    the ``x-`` halves)."""
    return tf.reduce_min(x) >= 0.0


def _forward_linear(step: _Step, rule: Rule, x, nonnegative: bool) -> _Linear:
    """The weighted step's forward pass, computing what its rule will need on the way.

    The alpha-beta rule needs ``z+`` and ``z-``, whose sum makes ``z`` as well: on an input
    known to be non-negative (``nonnegative``) they are ``x W+`` and ``x W-``, two convolutions;
    on any other input the sweep checks its sign and takes those two when it holds, the four
    sign products of :func:`_signed_pair` otherwise.
    """
    kernel, bias = _weights(step)
    layer = step.layer
    f, dense = _linear(layer), isinstance(layer, L.Dense)
    if rule.name != "alphabeta":
        return _Linear(f, kernel, bias, _forward_map(layer)(x, kernel) + bias, dense=dense)

    def pair():
        return _dense_split_forward(x, kernel) if dense else _forward_pair(layer, x, kernel)

    if nonnegative:
        pos, neg = pair()
    else:
        pos, neg = tf.cond(_no_negative_value(x), pair, lambda: _signed_pair(layer, x, kernel))
    return _Linear(f, kernel, bias, pos + neg + bias, pos, neg, dense, not nonnegative,
                   _stacks(layer))


def _bounded_rule(kept: _Linear, x, bounds, r):
    """z^B (Montavon et al. 2017): each input's share ``x w - l w+ - h w-`` of the output, with
    ``l`` and ``h`` the lowest and highest value the input can take (from the pixel range)."""
    low, high = (tf.broadcast_to(b, tf.shape(x)) for b in bounds)
    f, w = kept.f, kept.kernel
    w_pos, w_neg = tf.maximum(w, 0.0), tf.minimum(w, 0.0)
    z = f(x, w) - f(low, w_pos) - f(high, w_neg)
    s = _divide(r, z, _TINY)
    return (x * _vjp(lambda v: f(v, w), x, s) - low * _vjp(lambda v: f(v, w_pos), low, s)
            - high * _vjp(lambda v: f(v, w_neg), high, s))


def _weighted_rule(rule: Rule, kept: _Linear, x, r, bounds=None):
    """Relevance of a weighted step's input from its output's relevance ``r``."""
    f, kernel, bias = kept.f, kept.kernel, kept.bias
    if rule.name == "flat":
        ones_w = tf.ones_like(kernel)
        ones_x = tf.ones_like(x)
        z = f(ones_x, ones_w)
        return _vjp(lambda v: f(v, ones_w), ones_x, _divide(r, z, _TINY))
    if rule.name == "bounded":
        return _bounded_rule(kept, x, bounds, r)
    if rule.name == "epsilon":
        return x * _vjp(lambda v: f(v, kernel), x, _divide(r, kept.z, rule.epsilon))
    # alpha-beta: u = alpha R / z+ and v = beta R / z- (z+ > 0 and z- < 0 with the biases)
    u = r / (kept.pos + (tf.maximum(bias, 0.0) + _TINY))
    u = u if rule.alpha == 1.0 else rule.alpha * u
    v = None
    if rule.beta:
        v = r / (kept.neg + (tf.minimum(bias, 0.0) - _TINY))
        v = v if rule.beta == 1.0 else rule.beta * v

    def non_negative():  # x >= 0: the x- halves vanish, R_in = x (W+^T u - W-^T v)
        if kept.dense:
            return _dense_split_backward(x, u, v, kernel)
        w_pos = tf.maximum(kernel, 0.0)
        if v is None:
            return x * _vjp(lambda t: f(t, w_pos), x, u)
        if _kernel_outweighs(kernel, r):  # W+^T u - W-^T v = W+^T (u + v) - W^T v
            g = _vjp(lambda t: f(t, w_pos), x, u + v) - _vjp(lambda t: f(t, kernel), x, v)
        else:
            g = _vjp(lambda t: f(t, w_pos), x, u) - _vjp(lambda t: f(t, kernel - w_pos), x, v)
        return x * g

    if not kept.signed:
        return non_negative()

    def four_terms():  # R_in = x+ (W+^T u - W-^T v) + x- (W-^T u - W+^T v)
        x_pos = tf.maximum(x, 0.0)
        x_neg = x - x_pos
        if kept.stacks:  # one transposed convolution of [u, -v] by the stacked kernel
            stacked = _four_term_kernel(kernel)
            if v is None:
                stacked, s = stacked[..., :u.shape[-1]], u
            else:
                s = tf.concat([u, -v], -1)
            both = tf.concat([x_pos, x_neg], -1)
            g_pos, g_neg = tf.split(_vjp(lambda t: f(t, stacked), both, s), 2, axis=-1)
            return x_pos * g_pos + x_neg * g_neg
        w_pos, w_neg = tf.maximum(kernel, 0.0), tf.minimum(kernel, 0.0)
        g_pos, g_neg = _vjp(lambda t: f(t, w_pos), x, u), _vjp(lambda t: f(t, w_neg), x, u)
        if v is not None:
            g_pos = g_pos - _vjp(lambda t: f(t, w_neg), x, v)
            g_neg = g_neg - _vjp(lambda t: f(t, w_pos), x, v)
        return x_pos * g_pos + x_neg * g_neg

    return tf.cond(_no_negative_value(x), non_negative, four_terms)


def _step_relevance(step: _Step, xs, out, r):
    """Relevance of each input of a step without weights (a list) from the relevance ``r`` of
    its output ``out``."""
    layer = step.layer
    if isinstance(layer, _ELEMENTWISE):
        return [r]
    if isinstance(layer, _ROUTING):
        with tf.GradientTape() as tape:
            tape.watch(xs)
            y = layer(xs if len(xs) > 1 else xs[0], training=False)
        return tape.gradient(y, xs, output_gradients=r)
    if isinstance(layer, _AVERAGING):
        x = xs[0]
        return [x * _vjp(lambda v: layer(v, training=False), x, _divide(r, out, _TINY))]
    # Add: each input's share of the sum
    s = _divide(r, out, _TINY)
    return [x * s for x in xs]


def _first_input_bounds(plan: RelevancePlan, bounds):
    """``(low, high)`` of the input of the first weighted steps: the model input's bounds
    carried through the layers without weights before them (they act element-wise or move
    values, so the bounds of each element follow), lowest and highest taken again after."""
    ends = []
    for edge in bounds:
        values = {plan.input_id: edge}
        for step in plan.steps:
            if isinstance(step.layer, _LINEAR) or not all(i in values for i in step.inputs):
                continue
            xs = [values[i] for i in step.inputs]
            values[step.output] = step.layer(xs if len(xs) > 1 else xs[0], training=False)
        ends.append(values)
    return ends


def propagate(plan: RelevancePlan, x, v_logit, rule_for, bounds=None):
    """Input relevance (N, H, W, C), the logits and the output (N, units) of the model input
    ``x``.

    One forward sweep over the plan keeps each layer's input and, for the weighted layers, the
    pre-activation their rule divides by (so no layer runs twice); one backward sweep hands
    relevance back. ``v_logit`` (N, units) weighs the logits into the class score relevance
    starts from; ``rule_for(step) -> Rule`` picks each weighted layer's rule. ``bounds``:
    ``(low, high)`` model inputs (1, H, W, C), the lowest and highest pixel after the
    preprocessing, for the ``"bounded"`` (z^B) rule.
    """
    x = tf.convert_to_tensor(x, dtype=tf.float32)
    v_logit = tf.convert_to_tensor(v_logit, dtype=tf.float32)
    rules = {i: rule_for(s) for i, s in enumerate(plan.steps) if isinstance(s.layer, _LINEAR)}
    values = {plan.input_id: x}
    kept: dict[int, _Linear] = {}
    for i, step in enumerate(plan.steps):
        xs = [values[t] for t in step.inputs]
        layer = step.layer
        if i in rules:
            kept[i] = _forward_linear(step, rules[i], xs[0], step.inputs[0] in plan.nonnegative)
            z = kept[i].z
            values[step.output] = z if step.folded is not None else layer.activation(z)
        else:
            values[step.output] = layer(xs if len(xs) > 1 else xs[0], training=False)
    edges = None
    if bounds is not None and any(r.name == "bounded" for r in rules.values()):
        edges = _first_input_bounds(plan, [tf.convert_to_tensor(b, tf.float32) for b in bounds])
    logits = values[plan.logits_id]
    relevance = {plan.logits_id: logits * v_logit}
    for i in reversed(range(len(plan.steps))):
        step = plan.steps[i]
        r = relevance.pop(step.output, None)
        if r is None:
            continue  # nothing reached this layer
        xs = [values[t] for t in step.inputs]
        if i in rules:
            rule, step_bounds = rules[i], None
            if rule.name == "bounded":
                if edges is None or step.inputs[0] not in edges[0]:
                    rule = Rule("flat")  # no bounds known here: the composite's other choice
                else:
                    a, b = (e[step.inputs[0]] for e in edges)
                    step_bounds = (tf.minimum(a, b), tf.maximum(a, b))
            r_ins = [_weighted_rule(rule, kept[i], xs[0], r, step_bounds)]
        else:
            r_ins = _step_relevance(step, xs, values[step.output], r)
        for t, r_in in zip(step.inputs, r_ins):
            relevance[t] = relevance[t] + r_in if t in relevance else r_in
    r_input = relevance.get(plan.input_id)
    return ((tf.zeros_like(x) if r_input is None else r_input), logits,
            plan.output_of(logits))


# --------------------------------------------------------------------------------------------
# The registered methods
# --------------------------------------------------------------------------------------------
def _composite(epsilon: float, bounded: bool = False):
    """epsilon-plus-flat: flat on the first weighted layer (z^B with ``bounded``), z+ on
    convolutions, epsilon on Dense."""
    first = Rule("bounded") if bounded else Rule("flat")
    zplus, eps = Rule("alphabeta", alpha=1.0, beta=0.0), Rule("epsilon", epsilon)

    def rule_for(step):
        if step.first:
            return first
        return zplus if isinstance(step.layer, _CONV) else eps
    return rule_for


def pixel_bounds(model) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)``: the model input (1, H, W, C) float32 of an all-black (0) and an
    all-white (255) image after the model's preprocessing, the z^B rule's bounds."""
    prep = preprocessing_function(model.preprocessing)
    shape = (1, *model.info.input_shape)
    return tuple(np.asarray(prep(np.full(shape, value, dtype="float32")), dtype="float32")
                 for value in (0.0, 255.0))


def _explainer(model, key: tuple, rule_for):
    """The compiled ``pixels (N, H, W, C), v_logit (N, units) -> (input relevance, logits,
    output)`` of the model and rules, built once per model and ``key`` (any batch size)."""
    def build():
        plan = model.derived(("lrp_plan",), lambda: build_plan(flat_model_graph(model)))
        prep = preprocessing_function(model.preprocessing)
        bounds = pixel_bounds(model)
        units = int(model.model.outputs[0].shape[-1])
        pixels_spec = tf.TensorSpec((None, *model.info.input_shape), tf.float32)

        @tf.function(input_signature=[pixels_spec, tf.TensorSpec((None, units), tf.float32)])
        def explain(pixels, v_logit):
            return propagate(plan, prep(pixels), v_logit, rule_for, bounds)
        return explain

    return model.derived(("lrp",) + key, build)


def relevance_maps(model, pixels: np.ndarray, targets, key: tuple, rule_for):
    """Signed pixel relevance of a stack of images, in one compiled call (several for a stack
    whose sweep would keep more than :data:`_CALL_BYTES`).

    Parameters
    ----------
    model : LoadedModel
    pixels : np.ndarray
        (N, H, W, C) float32 in [0, 255], prepared for the model.
    targets : sequence of Target
        One per image; each score must be the logit.
    key : tuple
        Names the rules (the compiled call is kept per model and key).
    rule_for : callable(step) -> Rule

    Returns
    -------
    maps : np.ndarray
        (N, H, W) float32, relevance summed over the colour channels.
    attribution_sum, score : np.ndarray
        (N,) float64: the sum over every pixel and channel, and the relevance put in at the
        logits (the class score).
    logits, output : np.ndarray
        (N, units) float32.
    """
    for target in targets:
        if target.score != "logit":
            raise ParameterError("LRP hands back the class logit; choose the logit score, not "
                                 f"{target.score!r}.")
        require_logits(flat_model_graph(model).logits is not None, model, target)
    units = int(model.model.outputs[0].shape[-1])
    v_logit, _, _ = batch_coefficients(targets, model.info.output_kind, units)
    explain = _explainer(model, key, rule_for)
    pixels = np.asarray(pixels, dtype="float32")
    chunk = _images_per_call(model)
    parts = [explain(tf.constant(pixels[a:a + chunk]), tf.constant(v_logit[a:a + chunk]))
             for a in range(0, len(pixels), chunk)]
    r_input = np.concatenate([np.asarray(p[0], dtype="float64") for p in parts])
    logits = np.concatenate([np.asarray(p[1], dtype="float32") for p in parts])
    output = np.concatenate([np.asarray(p[2], dtype="float32") for p in parts])
    score = np.einsum("nu,nu->n", logits.astype("float64"), v_logit.astype("float64"))
    return (r_input.sum(axis=-1).astype("float32"), r_input.sum(axis=(1, 2, 3)), score,
            logits, output)


#: A sweep keeps every layer's input and what its rule divides by (two to three copies of
#: the activations, float32); a batch is cut into calls that keep at most about this much.
_CALL_BYTES = 768 * 2**20


def _images_per_call(model) -> int:
    """Images one compiled sweep takes at most (VGG16: 4), so a dataset batch stays in memory."""
    plan = model.derived(("lrp_plan",), lambda: build_plan(flat_model_graph(model)))
    per_image = 3 * 4 * max(1, plan.values_per_image)
    return max(1, _CALL_BYTES // per_image)


def relevance_map(source, key: tuple, rule_for):
    """:func:`relevance_maps` of a :class:`MethodContext` (one image: an (H, W) map and one
    number each) or a :class:`PixelBatch` (a stack: (N, H, W) and one number per image), with
    the extras ``attribution_sum`` and ``score``."""
    if isinstance(source, PixelBatch):
        maps, total, score, _, _ = relevance_maps(source.model, source.pixels, source.targets,
                                                  key, rule_for)
        return maps, {"attribution_sum": total, "score": score}
    model, image = source.model, source.image
    maps, total, score, logits, output = relevance_maps(
        model, image.pixels[None], (source.target,), key, rule_for)
    # class_heatmap reads the class probability from here: no second forward pass
    step_cache(model).put(("scores", image.cache_key), (logits[0], output[0]))
    return maps[0], {"attribution_sum": float(total[0]), "score": float(score[0])}


def lrp_epsilon_map(source, *, epsilon: float):
    """LRP-epsilon on every layer; signed relevance (H, W) or (N, H, W) float32, extras (see
    :func:`relevance_map`)."""
    rule = Rule("epsilon", epsilon=epsilon)
    return relevance_map(source, ("epsilon", epsilon), lambda step: rule)


def lrp_zplus_map(source):
    """LRP-z+ (alpha 1, beta 0) on every layer; signed relevance and extras."""
    rule = Rule("alphabeta", alpha=1.0, beta=0.0)
    return relevance_map(source, ("zplus",), lambda step: rule)


def lrp_alphabeta_map(source, *, alpha: float, beta: float):
    """LRP-alpha-beta on every layer (alpha - beta must be 1); signed relevance and extras."""
    if abs(alpha - beta - 1.0) > 1e-6:
        raise ParameterError(f"LRP-alpha-beta needs alpha - beta = 1 to keep the total "
                             f"relevance; got alpha {alpha} and beta {beta}.")
    rule = Rule("alphabeta", alpha=alpha, beta=beta)
    return relevance_map(source, ("alphabeta", alpha, beta), lambda step: rule)


def lrp_composite_map(source, *, epsilon: float, bounded: int = 0):
    """LRP epsilon-plus-flat (see :func:`_composite`; ``bounded=1``: z^B on the first layer,
    bounded by the pixel range); signed relevance and extras."""
    return relevance_map(source, ("composite", epsilon, bool(bounded)),
                         _composite(epsilon, bool(bounded)))
