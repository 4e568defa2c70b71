"""Metrics: how far to trust an explanation, and how readable a filter pattern is.

:mod:`.registry` is the one list of metrics (TensorFlow-free); each metric is one function in a
module named for its family: :mod:`.faithfulness` (deletion / insertion), :mod:`.road`,
:mod:`.randomisation` (random logit), :mod:`.robustness` (max-sensitivity), :mod:`.complexity`
(sparseness); :mod:`.evaluation` runs them all on one method's map. Beside them:
:mod:`.agreement` (rank correlation between methods), :mod:`.maps` (which methods are judged),
:mod:`.sanity` (cascading randomisation), :mod:`.pointing` (the pointing game) and
:mod:`.readability`. Nothing here draws: pictures are :mod:`viz_core.render.compare`'s.
"""
