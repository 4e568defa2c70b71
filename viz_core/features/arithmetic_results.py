"""What :func:`viz_core.features.arithmetic.unit_arithmetic` returns: one frozen dataclass per
kind of layer, each holding every number of the computation and the model's own answer.

Every result has ``layer``, ``kind`` (the Keras class name), ``channel``, ``position`` ((y, x),
or None for a vector output), ``activation`` (computed here from the printed numbers),
``model_activation`` (read from the model) and :meth:`contract`, the command line's JSON
(``{layer, kind, channel, position, patch_shape, products_sum, bias, preactivation,
activation, model_activation, terms}``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_TERMS = 64


def _num(value) -> float | None:
    return None if value is None else float(value)


def top_terms(inputs: np.ndarray, weights: np.ndarray, products: np.ndarray,
              limit: int = MAX_TERMS) -> list[dict]:
    """The ``limit`` largest products by absolute value, largest first, as
    ``{input, weight, product}`` dicts (ties keep their reading order)."""
    flat_p = np.asarray(products, dtype="float64").ravel()
    order = np.argsort(-np.abs(flat_p), kind="stable")[: max(0, int(limit))]
    flat_i = np.asarray(inputs, dtype="float64").ravel()
    flat_w = np.asarray(weights, dtype="float64").ravel()
    return [{"input": float(flat_i[k]), "weight": float(flat_w[k]), "product": float(flat_p[k])}
            for k in order]


class _Contract:
    """The command line's JSON of a result; subclasses say what their terms are."""

    def _parts(self) -> tuple:
        """(patch_shape, products_sum, bias, preactivation, inputs, weights, products)."""
        raise NotImplementedError

    @property
    def difference(self) -> float:
        """``|activation - model_activation|``: how far the hand computation is from the model."""
        return abs(float(self.activation) - float(self.model_activation))

    def equation_text(self) -> str:
        """The arithmetic in one line: ``sum of 27 products -0.463 + bias -0.02 = -0.483;
        relu → 0 (the model: 0)``."""
        shape, total, bias, pre, inputs, weights, _ = self._parts()
        steps, count = [], int(np.prod(shape))
        operation = getattr(self, "operation", None)
        if operation:  # pooling: no weights to speak of
            steps.append(f"{operation} of {getattr(self, 'count', count)} values")
        elif count == 1 and total is not None:
            steps.append(f"{float(inputs.ravel()[0]):.4g} × {float(weights.ravel()[0]):.4g}")
        elif total is not None:
            steps.append(f"sum of {count} products {total:.4g}")
        if bias is not None:
            steps.append(f"+ {'shift' if self.kind == 'BatchNormalization' else 'bias'} "
                         f"{bias:.4g}")
        name = getattr(self, "activation_name", None)
        result = f"{self.activation:.6g} (the model: {self.model_activation:.6g})"
        if name is None:
            return " ".join(steps + [f"= {result}"])
        if pre is not None and steps:
            steps.append(f"= {pre:.4g};")
        return " ".join(steps + [f"{name} → {result}"])

    def terms(self, limit: int = MAX_TERMS) -> list[dict]:
        _, _, _, _, inputs, weights, products = self._parts()
        return top_terms(inputs, weights, products, limit)

    def contract(self, limit: int = MAX_TERMS) -> dict:
        shape, total, bias, pre, _, _, _ = self._parts()
        return {
            "layer": self.layer, "kind": self.kind, "channel": int(self.channel),
            "position": None if self.position is None else [int(v) for v in self.position],
            "patch_shape": [int(d) for d in shape], "products_sum": _num(total),
            "bias": _num(bias), "preactivation": _num(pre),
            "activation": float(self.activation), "model_activation": float(self.model_activation),
            "terms": self.terms(limit),
        }


@dataclass(frozen=True, eq=False)
class ConvArithmetic(_Contract):
    """One output of a Conv2D, DepthwiseConv2D or SeparableConv2D layer.

    Attributes
    ----------
    layer, kind : str
        Layer path and Keras class name.
    channel : int
    position : (int, int)
        (y, x) in the layer's output.
    source : str
        ``"image"`` (the model's input, after preprocessing) or the path of the layer whose
        output is read.
    rows, cols : np.ndarray
        (kh,) and (kw,) int: input rows and columns read; outside [0, H) or [0, W) they are
        padding.
    padded : np.ndarray
        (kh, kw) bool, True on padding cells (zeros).
    input_channels : tuple of int
        The input channels read (all of them, one group's, or one for a depthwise layer).
    patch : np.ndarray
        (kh, kw, cin) float64: the input values read, 0 on padding.
    kernel : np.ndarray
        (kh, kw, cin) float64: the weights (a separable layer's depthwise kernel times its
        pointwise weights: the same sum as its two steps).
    products : np.ndarray
        (kh, kw, cin) float64, ``patch * kernel``.
    products_sum, bias, preactivation, activation, model_activation : float
        ``preactivation = products_sum + bias``; ``activation = f(preactivation)``.
    activation_name, activation_formula : str
        ``relu`` and ``relu(z) = max(0, z)``.
    strides, dilation : (int, int)
    padding : str
        ``same`` or ``valid``.
    groups : int
    input_shape, output_shape : tuple
        (H, W, Cin) and (h, w, Cout).
    pixels : np.ndarray or None
        For a first layer: (kh, kw, C) float64 pixels in [0, 255] before preprocessing, 0 on
        padding; ``preprocessing`` names what turned them into ``patch``.
    preprocessing : str or None
    depthwise, pointwise : np.ndarray or None
        SeparableConv2D only: (m,) the depthwise step's values at this position and (m,) the
        pointwise weights of ``channel``; ``products_sum == depthwise @ pointwise``.
    """

    layer: str
    kind: str
    channel: int
    position: tuple[int, int]
    source: str
    rows: np.ndarray
    cols: np.ndarray
    padded: np.ndarray
    input_channels: tuple[int, ...]
    patch: np.ndarray
    kernel: np.ndarray
    products: np.ndarray
    products_sum: float
    bias: float
    preactivation: float
    activation: float
    model_activation: float
    activation_name: str
    activation_formula: str
    strides: tuple[int, int]
    padding: str
    dilation: tuple[int, int]
    groups: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    pixels: np.ndarray | None = None
    preprocessing: str | None = None
    depthwise: np.ndarray | None = None
    pointwise: np.ndarray | None = None

    def _parts(self):
        return (self.patch.shape, self.products_sum, self.bias, self.preactivation,
                self.patch, self.kernel, self.products)


@dataclass(frozen=True, eq=False)
class PoolArithmetic(_Contract):
    """One output of a pooling layer: a window and its maximum or mean.

    Attributes
    ----------
    layer, kind, channel, source : see :class:`ConvArithmetic`
    position : (int, int) or None
        None for global pooling (the window is the whole map).
    operation : str
        ``max`` or ``mean``.
    rows, cols : np.ndarray
        Input rows and columns of the window.
    window : np.ndarray
        (ph, pw) float64 input values; padding cells hold NaN (they take no part: Keras'
        max ignores them and its mean divides by the cells inside).
    padded : np.ndarray
        (ph, pw) bool.
    picked : (int, int) or None
        The window cell holding the maximum (max pooling).
    count : int
        Cells inside the input (the mean's divisor).
    activation, model_activation : float
    """

    layer: str
    kind: str
    channel: int
    position: tuple[int, int] | None
    source: str
    operation: str
    rows: np.ndarray
    cols: np.ndarray
    window: np.ndarray
    padded: np.ndarray
    picked: tuple[int, int] | None
    count: int
    activation: float
    model_activation: float

    def _parts(self):
        # as weights: the mean is a convolution with 1/n; max keeps the largest (weight 1)
        values = np.nan_to_num(self.window)
        if self.operation == "mean":
            weights = np.where(self.padded, 0.0, 1.0 / self.count)
        else:
            weights = np.zeros_like(values)
            weights[self.picked] = 1.0
        products = values * weights
        return (self.window.shape, products.sum(), None, None, values, weights, products)


@dataclass(frozen=True, eq=False)
class NormArithmetic(_Contract):
    """One output of BatchNormalization: ``scale · x + shift`` with the layer's four numbers.

    Attributes
    ----------
    value : float
        The input x at this position and channel.
    gamma, beta, moving_mean, moving_variance, epsilon : float
        gamma is 1 and beta 0 when the layer has none (``scale=False``, ``center=False``).
    scale, shift : float
        ``gamma / sqrt(moving_variance + epsilon)`` and ``beta - moving_mean · scale``.
    activation, model_activation : float
        ``scale · value + shift``; the model's output.
    """

    layer: str
    kind: str
    channel: int
    position: tuple[int, int] | None
    source: str
    value: float
    gamma: float
    beta: float
    moving_mean: float
    moving_variance: float
    epsilon: float
    scale: float
    shift: float
    activation: float
    model_activation: float

    def _parts(self):
        product = self.scale * self.value
        return ((1,), product, self.shift, product + self.shift,
                np.array([self.value]), np.array([self.scale]), np.array([product]))


@dataclass(frozen=True, eq=False)
class ElementArithmetic(_Contract):
    """One output of an activation layer (``ReLU``, ``Activation``): ``f(value)``."""

    layer: str
    kind: str
    channel: int
    position: tuple[int, int] | None
    source: str
    value: float
    activation_name: str
    activation_formula: str
    activation: float
    model_activation: float

    def _parts(self):
        return ((1,), self.value, None, self.value, np.array([self.value]), np.array([1.0]),
                np.array([self.value]))


@dataclass(frozen=True, eq=False)
class DenseArithmetic(_Contract):
    """One unit of a Dense layer: ``f(inputs · weights + bias)``.

    Attributes
    ----------
    inputs, weights, products : np.ndarray
        (n,) float64 each: the layer's input vector, the unit's weights, their products.
    products_sum, bias, preactivation : float
    activation_name, activation_formula : str
    activation, model_activation : float
        For a softmax layer the activation is ``softmax(logits)[channel]``, which needs every
        unit's preactivation: ``logits``.
    logits, probabilities : np.ndarray or None
        (units,) float64, softmax or sigmoid layers only.
    labels : tuple of str
        Class names when the layer is the model's output, else empty.
    flattened : tuple of int or None
        (h, w, c) when the input vector is a Flatten of that map: input ``i`` is the map's
        ``np.unravel_index(i, flattened)``.
    """

    layer: str
    kind: str
    channel: int
    position: None
    source: str
    inputs: np.ndarray
    weights: np.ndarray
    products: np.ndarray
    products_sum: float
    bias: float
    preactivation: float
    activation_name: str
    activation_formula: str
    activation: float
    model_activation: float
    logits: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    labels: tuple[str, ...] = ()
    flattened: tuple[int, ...] | None = None

    def _parts(self):
        return (self.inputs.shape, self.products_sum, self.bias, self.preactivation,
                self.inputs, self.weights, self.products)

    def input_name(self, i: int) -> str:
        """``input 17``, or ``(y 0, x 2, c 5)`` for an input read from a flattened map."""
        if self.flattened is None:
            return f"input {i}"
        y, x, c = (int(v) for v in np.unravel_index(int(i), self.flattened))
        return f"(y {y}, x {x}, c {c})"

    def top(self, k: int = 5) -> list[tuple[int, float]]:
        """The ``k`` largest (index, probability) pairs, or (index, activation) pairs."""
        return top_classes(self.probabilities, k)


@dataclass(frozen=True, eq=False)
class OutputArithmetic(_Contract):
    """The model's last step: logits to probabilities (softmax, or a sigmoid per unit).

    Attributes
    ----------
    layer : str
        The output layer's path.
    kind : str
        ``softmax`` or ``sigmoid``.
    channel : int
        The class looked at.
    logits, probabilities, model_probabilities : np.ndarray
        (units,) float64: the scores before the activation, the probabilities computed from
        them here, and the model's own output.
    labels : tuple of str
    activation, model_activation : float
        ``probabilities[channel]`` and ``model_probabilities[channel]``.
    exponentials : np.ndarray
        (units,) ``exp(logit - max logit)`` (softmax: probabilities are these over their sum).
    """

    layer: str
    kind: str
    channel: int
    position: None
    logits: np.ndarray
    probabilities: np.ndarray
    model_probabilities: np.ndarray
    labels: tuple[str, ...]
    activation: float
    model_activation: float
    exponentials: np.ndarray

    def _parts(self):
        # softmax as weights: each exponential over their sum
        if self.kind == "softmax":
            weights = np.full(self.exponentials.shape, 1.0 / self.exponentials.sum())
            values = self.exponentials
            products = values * weights
            return (self.logits.shape, None, None, float(self.logits[self.channel]),
                    values, weights, products)
        logit = np.array([self.logits[self.channel]])  # a sigmoid reads its own unit only
        return ((1,), logit[0], None, logit[0], logit, np.ones(1), logit)

    def top(self, k: int = 5) -> list[tuple[int, float]]:
        return top_classes(self.probabilities, k)


def top_classes(probabilities: np.ndarray | None, k: int) -> list[tuple[int, float]]:
    """The ``k`` largest entries as (index, value), largest first; [] for None."""
    if probabilities is None:
        return []
    order = np.argsort(-np.asarray(probabilities), kind="stable")[: max(0, int(k))]
    return [(int(i), float(probabilities[i])) for i in order]
