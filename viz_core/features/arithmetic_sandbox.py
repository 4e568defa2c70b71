"""The convolution sandbox: a small grid of whole numbers and a kernel, with stride, padding and
dilation to play with, and the output size formula written out with the numbers in it.

Pure NumPy and no model: every output cell is a sum a student can redo by hand. Uses the same
window arithmetic as the model's layers (:mod:`viz_core.features.arithmetic_math`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from viz_core.errors import ParameterError
from viz_core.features.arithmetic_math import output_size

# (smallest, largest) of each setting: small enough to print every number
SIZES = (3, 12)
KERNELS = (1, 5)
STRIDES = (1, 4)
PADDINGS = (0, 3)
DILATIONS = (1, 3)


@dataclass(frozen=True, eq=False)
class Sandbox:
    """A convolution of a small grid, every number kept.

    Attributes
    ----------
    inputs : np.ndarray
        (n, n) float64, the grid before padding.
    kernel : np.ndarray
        (k, k) float64.
    stride, padding, dilation : int
        ``padding`` zeros on each side.
    padded : np.ndarray
        (n + 2·padding, n + 2·padding) float64, zeros around ``inputs``.
    output : np.ndarray
        (size, size) float64, no bias and no activation.
    size : int
        Output side, :func:`viz_core.features.arithmetic_math.output_size`.
    formula : str
        The output size formula with the numbers in it.
    unused : int
        Rows (and columns) at the end of the padded grid that no window reaches (the stride
        does not divide the rest).
    """

    inputs: np.ndarray
    kernel: np.ndarray
    stride: int
    padding: int
    dilation: int
    padded: np.ndarray
    output: np.ndarray
    size: int
    formula: str
    unused: int

    def reads(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """(k,) rows and (k,) columns of ``padded`` that output (i, j) reads."""
        k = self.kernel.shape[0]
        taps = self.dilation * np.arange(k)
        return i * self.stride + taps, j * self.stride + taps

    def products(self, i: int, j: int) -> np.ndarray:
        """(k, k) the element-wise products of output (i, j); they sum to ``output[i, j]``."""
        rows, cols = self.reads(i, j)
        return self.padded[np.ix_(rows, cols)] * self.kernel


def _check(what: str, value, bounds: tuple[int, int]) -> int:
    low, high = bounds
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ParameterError(f"The {what} is a whole number from {low} to {high}; "
                             f"got {value!r}.") from None
    if not low <= number <= high or number != value:
        raise ParameterError(f"The {what} must be a whole number from {low} to {high}; "
                             f"got {value!r}.")
    return number


def size_formula(size: int, kernel: int, stride: int, padding: int, dilation: int) -> str:
    """``⌊(n + 2p − d·(k − 1) − 1) / s⌋ + 1`` with the numbers in, and its value."""
    out = output_size(size, kernel, stride, padding, dilation)
    inner = size + 2 * padding - dilation * (kernel - 1) - 1
    return (f"⌊({size} + 2·{padding} − {dilation}·({kernel} − 1) − 1) / {stride}⌋ + 1 = "
            f"⌊{inner} / {stride}⌋ + 1 = {out}")


def default_grid(size: int) -> np.ndarray:
    """(size, size): a bright square (9) on a dim background (1), so an edge kernel lights
    its borders."""
    grid = np.ones((size, size))
    low, high = size // 4, size - size // 4
    grid[low:high, low:high] = 9.0
    return grid


def default_kernel(size: int) -> np.ndarray:
    """(size, size): a vertical edge detector, +1 in the left column and -1 in the right
    (all ones for size 1)."""
    kernel = np.zeros((size, size))
    kernel[:, 0] += 1.0
    kernel[:, -1] -= 1.0
    return kernel if size > 1 else np.ones((1, 1))


def sandbox(size: int = 7, kernel_size: int = 3, stride: int = 1, padding: int = 0,
            dilation: int = 1, *, inputs: np.ndarray | None = None,
            kernel: np.ndarray | None = None) -> Sandbox:
    """Convolve a small grid by hand.

    Parameters
    ----------
    size, kernel_size, stride, padding, dilation : int
        Within :data:`SIZES`, :data:`KERNELS`, :data:`STRIDES`, :data:`PADDINGS`,
        :data:`DILATIONS`.
    inputs : (size, size) array, optional
        Default :func:`default_grid`.
    kernel : (kernel_size, kernel_size) array, optional
        Default :func:`default_kernel`.

    Raises
    ------
    ParameterError
        A setting out of range, arrays of other shapes, or a dilated kernel wider than the
        padded grid (no output at all).
    """
    n = _check("grid size", size, SIZES)
    k = _check("kernel size", kernel_size, KERNELS)
    s = _check("stride", stride, STRIDES)
    p = _check("padding", padding, PADDINGS)
    d = _check("dilation", dilation, DILATIONS)
    grid = default_grid(n) if inputs is None else np.asarray(inputs, dtype="float64")
    weights = default_kernel(k) if kernel is None else np.asarray(kernel, dtype="float64")
    if grid.shape != (n, n) or weights.shape != (k, k):
        raise ParameterError(f"The grid must be {n}x{n} and the kernel {k}x{k}; got "
                             f"{grid.shape} and {weights.shape}.")
    span = d * (k - 1) + 1
    if span > n + 2 * p:
        raise ParameterError(f"The kernel reaches over {span} cells (dilation {d}: "
                             f"{d}·({k} − 1) + 1) but the padded grid has only {n + 2 * p}; "
                             "make the kernel or the dilation smaller, or pad more.")
    out = output_size(n, k, s, p, d)
    padded = np.pad(grid, p)
    result = np.empty((out, out))
    box = Sandbox(grid, weights, s, p, d, padded, result, out, size_formula(n, k, s, p, d),
                  (n + 2 * p - span) % s)
    for i in range(out):
        for j in range(out):
            result[i, j] = box.products(i, j).sum()
    return box
