"""The choices of filter patterns: methods (with what each does), steps, sizes, counts.

Plain data with no NumPy or TensorFlow import, so the command line lists and checks them
while parsing, before TensorFlow loads; :mod:`viz_core.features.filters` makes the patterns.
"""
from __future__ import annotations

from viz_core.runtime.limits import FILTER_SIZE, FILTER_STEPS

METHODS = ("fast", "classic", "fourier", "maco")
METHOD_HELP = {
    "fast": "small periodic tile sized by the receptive field, optimised as displayed, "
            "all filters in one compiled batch",
    "classic": "the tutorial: 150 px canvas, one filter at a time, 40 normalised steps",
    "fourier": "Lucid's recipe: smooth Fourier-parameterised picture with natural colours that "
               "must survive random shifts, zooms and turns",
    "maco": "MACO: only the Fourier phase changes under a photograph's spectrum, seen through "
            "random crops; transparency shows where the pattern matters",
}
DEFAULT_STEPS = {"classic": 40, "fast": 10, "fourier": 32, "maco": 32}
# The Filter patterns page opens on the most readable method that draws 64 filters of the demo
# model's deepest conv layer within 20 s on 2 shared cores (bench/bench_filters.py). Measured
# (conv2d_4, measuring included, machine under load): fast 22 s, classic 126 s, fourier 131 s,
# maco 250 s; only fast comes near, so it stays the default and the others wait for a click.
PAGE_METHOD = "fast"
DEFAULT_SIZE = 150
DEFAULT_COUNT = 64
MAX_STEPS = int(FILTER_STEPS.high)
SIZE_RANGE = (int(FILTER_SIZE.low), int(FILTER_SIZE.high))
