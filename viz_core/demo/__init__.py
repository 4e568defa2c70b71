"""The bundled demo: generated "shapes" scenes with known answers, and the small CNNs trained on
them, fully offline. ``shapes`` is data that the pointing game and dataset samples draw from;
the rest trains and evaluates the bundled models (the catalogue loads them by name).

Modules:
    shapes    seeded scene generator (circle, square, triangle, star on clutter), exact masks
    train     ``python -m viz_core.demo.train`` rebuilds ``assets/demo/shapes_cnn.keras``
    evaluate  held-out accuracy and pointing checks used by training and tests
    shortcut  the model that learned a corner tag: training, scenes, its loader
    gallery   ``python -m viz_core.demo.gallery`` rewrites the sample scenes in ``assets/samples``
"""
