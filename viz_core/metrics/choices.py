"""The metrics' choices and defaults as plain data: the pointing game's scenes and tolerance,
the sanity check's similarity measures, threshold, seed and control.

No NumPy import, so the command line lists these while parsing, before NumPy or TensorFlow
loads; :mod:`viz_core.metrics.pointing` and :mod:`viz_core.metrics.sanity` import them from here.
"""
from __future__ import annotations

# -- the pointing game
POINTING_FIRST_SEED = 1_500_000_000  # scenes from here on were never used in training
DEFAULT_TOLERANCE = 4  # pixels the shape's box is widened by
DEFAULT_SCENES = 20
MAX_SCENES = 2000

# -- the sanity check (cascading randomisation)
EDGE_CONTROL = "edges"  # a map that ignores the model: it must stay the same (a control)
METRICS = ("spearman", "ssim")
DEFAULT_METRIC = "spearman"
DEFAULT_THRESHOLD = 0.9
DEFAULT_SEED = 0
