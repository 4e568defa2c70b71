"""LIME's choices and defaults as plain data: superpixel algorithms, how hidden superpixels are
filled, the page's defaults, the stability check's sizes.

No NumPy import, so the command line lists these choices while parsing, before NumPy or
TensorFlow loads; :mod:`viz_core.methods.lime` and :mod:`viz_core.methods.superpixels` import them
from here.
"""
from __future__ import annotations

from types import MappingProxyType

ALGORITHMS = ("slic", "quickshift", "felzenszwalb")
ALGORITHM_HELP = {
    "slic": "SLIC: compact, similar-sized regions on a grid (the R tutorial's choice)",
    "quickshift": "Quickshift: regions follow colour, sizes vary (Python lime's default)",
    "felzenszwalb": "Felzenszwalb: graph-based, follows edges closely; compactness is ignored",
}

HIDE_COLOURS = ("mean", "white", "black", "blurred")
# Blurred, not the tutorial's white: on the demo model, white (and black) patches make new
# shapes: the top superpixel sat on the shape in 2 of 12 scenes (seeds 9000-9011, 300
# samples); blurred, in 12 of 12.
DEFAULT_HIDE = "blurred"
HIDE_HELP = {
    "mean": "each hidden superpixel becomes its own mean colour (Python lime's default)",
    "white": "hidden superpixels become white (the R tutorial's background = \"white\"); flat "
             "patches add new edges, which a shape model can read as shapes",
    "black": "hidden superpixels become black",
    "blurred": "hidden superpixels become a strongly blurred copy of the image: detail goes, "
               "no new edges appear (the default)",
}

#: The LIME page's starting settings: the tutorial's 35 superpixels and weight (compactness)
#: 10, and the blurred hide colour.
PAGE_DEFAULTS = MappingProxyType({"algorithm": "slic", "n_superpixels": 35, "compactness": 10.0,
                                  "samples": 500, "hide": DEFAULT_HIDE, "seed": 0})
STABILITY_RUNS = 3
STABILITY_K = 3  # size of the compared top sets
