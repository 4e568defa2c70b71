"""The range of every number a user sets, in one light module (pure Python: no NumPy, no Keras).

The backend checks its parameters with these bounds (``BOUND.check(value)``) and the command
line builds its argparse types from the same objects, so a bad value is refused, with the same
words, before any model is loaded. Upper bounds keep one request within minutes and a few GB
on a 2-core, 24 GB class server; the reason is next to each bound.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from viz_core.errors import ParameterError


@dataclass(frozen=True)
class Bound:
    """A range ``[low, high]`` of whole numbers (``integer``) or finite floats; with
    ``above_low`` the low end is excluded, ``(low, high]``, for a value that is divided by
    (or loops) at ``low``.

    ``what`` names the parameter in a user's words ("the number of LIME samples").
    """

    what: str
    low: float
    high: float
    integer: bool = True
    above_low: bool = False

    def describe(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        # whole numbers written out in full (a seed's 2147483647, not 2.14748e+09)
        low, high = ((f"{int(self.low)}", f"{int(self.high)}") if self.integer
                     else (f"{self.low:g}", f"{self.high:g}"))
        if self.above_low:
            return f"{kind} above {low}, up to {high}"
        return f"{kind} from {low} to {high}"

    def contains(self, value: float) -> bool:
        """Whether a number already of the right kind lies in the range."""
        low_ok = value > self.low if self.above_low else value >= self.low
        return low_ok and value <= self.high

    def check(self, value):
        """``value`` as ``int`` (or ``float``) when it lies in the range.

        Raises
        ------
        ParameterError
            Not a number of the right kind (bools, NaN and infinity included), or out of range.
        """
        ok = not isinstance(value, bool)
        if ok and self.integer:
            ok = _is_integer(value)
            value = int(value) if ok else value
        elif ok:
            try:
                value = float(value)
            except (TypeError, ValueError):
                ok = False
            else:
                ok = math.isfinite(value)
        if not ok or not self.contains(value):
            raise ParameterError(f"{self.what[0].upper()}{self.what[1:]} must be "
                                 f"{self.describe()}; got {value!r}.")
        return value


def _is_integer(value) -> bool:
    # Python and NumPy integers (NumPy's have __index__), never floats such as 3.0.
    try:
        return not isinstance(value, float) and int(value.__index__()) == value
    except (AttributeError, TypeError):
        return False


# Seeds go to numpy.random (0 to 2**32 - 1); below 2**31 leaves room for derived seeds
# (LIME's stability runs use seed + 1 and seed + 2).
SEED = Bound("the random seed", 0, 2**31 - 1)
# Class listings: ImageNet-21k models have 21,843 classes; a listing stays a few MB.
TOP = Bound("the number of top classes", 1, 100_000)

# Images named on one command line: each is decoded and kept (up to 50 MB files).
IMAGES = Bound("the number of images in one run", 1, 256)

# Display settings of heatmap pictures (heatmap, compare) and the sanity check's verdict.
OPACITY = Bound("the heatmap opacity", 0.0, 1.0, integer=False)
HEAT_THRESHOLD = Bound("the heat threshold", 0.0, 1.0, integer=False)
SIMILARITY_THRESHOLD = Bound("the similarity threshold", -1.0, 1.0, integer=False)

# Feature maps: a grid of at most 2,048 channels x 256^2 px tiles stays under 400 MB of RGB.
ACTIVATION_PER_ROW = Bound("the number of channels per row", 1, 256)
ACTIVATION_TILE = Bound("the tile size in pixels", 4, 256)

# LIME: 20,000 perturbed images is about 40 minutes of VGG16 on 2 cores; 1,000 is lime's default.
# Dataset runs: images per batch, images used (--limit), Ray actors, heatmap clusters per class
BATCH_SIZE = Bound("the number of images per batch", 1, 512)
DATASET_LIMIT = Bound("the number of images used", 1, 10_000_000)
RAY_WORKERS = Bound("the number of Ray workers", 1, 1024)
CLUSTERS = Bound("the number of heatmap clusters per class", 1, 12)

LIME_SAMPLES = Bound("the number of LIME samples", 10, 20000)
SUPERPIXELS = Bound("the number of superpixels", 2, 500)
# SLIC divides by the compactness (0 was "float division by zero"); quickshift's ratio
# 10 / (10 + c) is the colour weight, so one range serves both.
COMPACTNESS = Bound("the superpixel compactness", 0.0, 1000.0, integer=False, above_low=True)
LIME_FEATURES = Bound("the number of superpixels shown", 1, 500)
# Pictures are enlarged by whole factors: the LIME page draws a model input's longer side at
# about 450 px (a factor of 28 for a 16-pixel model); the side it gives is bounded separately.
LIME_SCALE = Bound("the enlargement factor", 1, 32)
LIME_PICTURE_SIDE = 4096  # pixels per side of an enlarged picture (48 MB as RGB)
MASK_OPACITY = Bound("the evidence mask's opacity", 0.0, 1.0, integer=False)

# Filter patterns: steps and sizes as viz_core.features.filters checks them (MAX_STEPS, SIZE_RANGE);
# at most 1,024 filters in one run (the widest layers of the built-in models have 2,048).
FILTER_STEPS = Bound("the number of gradient-ascent steps", 1, 500)
FILTER_SIZE = Bound("the pattern size in pixels", 16, 512)
FILTER_PER_ROW = Bound("the number of patterns per row", 1, 64)
FILTER_COUNT = Bound("the number of filters in one run", 1, 1024)
FILTER_INDEX = Bound("a filter index", 0, 65535)


def filter_indices(text: str) -> range | tuple[int, ...]:
    """Filter indices from ``"0:64"`` (Python slice, end excluded, kept as a ``range`` so a huge
    one costs nothing until its size is checked), ``"5"`` or ``"1,4,9"``.

    Raises
    ------
    ParameterError
        The text is not of these forms.
    """
    raw = str(text).strip()
    try:
        if ":" in raw:
            parts = raw.split(":")
            if len(parts) not in (2, 3):
                raise ValueError
            start = int(parts[0]) if parts[0].strip() else 0
            stop = int(parts[1])
            step = int(parts[2]) if len(parts) == 3 and parts[2].strip() else 1
            if step <= 0:
                raise ValueError
            return range(start, stop, step)
        return tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ParameterError(
            f"Cannot read the filters {text!r}; write a range like 0:64 or a list like 1,4,9."
        ) from None
