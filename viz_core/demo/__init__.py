"""The bundled demo: generated "shapes" scenes and the small CNN trained on them, fully offline.

* ``shapes``: seeded scene generator (circle, square, triangle, star on cluttered backgrounds),
  with the exact mask and box of every shape.
* ``train``: ``python -m viz_core.demo.train`` rebuilds ``assets/demo/shapes_cnn.keras`` and its
  card ``shapes_cnn.json``.
* ``evaluate``: held-out accuracy and Grad-CAM pointing checks used by training and tests.
* ``gallery``: ``python -m viz_core.demo.gallery`` rewrites the sample scenes in ``assets/samples``.
"""
