"""TCAV's bounds and defaults as plain data (no NumPy), so the command line checks them while
parsing, before NumPy or TensorFlow loads; :mod:`viz_core.methods.tcav` and
:mod:`viz_core.dataset.tcav_run` check with the same objects.
"""
from __future__ import annotations

from viz_core.runtime.limits import Bound

#: Runs against different random sets (the paper uses hundreds; a few already give a p-value).
RUNS = Bound("the number of random runs", 2, 50)
# Random scores swing between about 0 and 1 when the class's gradient varies little between its
# images: with 8 and 10 runs the shortcut demo's tag concept (1.0 in every run) was significant
# with one and not with the other (p = 0.002 and 0.08); with 15, 20 and 30 runs, p < 0.001.
# A run fits two classifiers on a few dozen images: milliseconds.
DEFAULT_RUNS = 20
SIGNIFICANCE = 0.05  # p-value below which a score is called significant

# At most this many images of each set are read; 500 at 224 x 224 x 3 is 75 MB as uint8, and
# one run on VGG16's last conv layer fits its classifier in well under a second.
CLASS_IMAGES = Bound("the number of class images", 1, 500)
CONCEPT_IMAGES = Bound("the number of concept images", 2, 500)
RANDOM_IMAGES = Bound("the number of random images", 3, 1000)
DEFAULT_CLASS_IMAGES = 100
DEFAULT_CONCEPT_IMAGES = 100
DEFAULT_RANDOM_IMAGES = 200
