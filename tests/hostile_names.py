"""A model whose layer and class names look like command-line options, shell code or nothing.

Keras accepts any layer name without ``/``; class names come from a labels box or file. Every
page, export and command must treat them as data (issue: an uploaded model could end the
server through Export bundle). Layer names TensorFlow cannot use as a name scope are renamed
when the model is loaded (``-h`` becomes ``layer_-h``, see
:func:`viz_core.models.inspect.make_names_scope_safe`); :func:`shown` gives the name the app shows.
"""
from __future__ import annotations

import keras

LONG = "n" * 300
# Layer names Keras accepts (no "/"), each a trap for argparse, a shell or a file system.
LAYER_NAMES = ("-h", "$(touch x)", LONG)
# Class names as typed in the labels box (one per line).
CLASS_NAMES = ("-h", "--out=/tmp/x", "$(touch x)", LONG)


def shown(name: str) -> str:
    """The name the app shows for the layer ``name`` of an uploaded model."""
    from viz_core.models.inspect import _SCOPE_SAFE, scope_safe_name

    return name if _SCOPE_SAFE.fullmatch(name) else scope_safe_name(name)


def hostile_names_cnn(size: int = 32, seed: int = 0) -> keras.Model:
    """Three conv layers named :data:`LAYER_NAMES` (the last conv is the 300-character one),
    global average pooling and a 4-way softmax head, seeded."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", name=LAYER_NAMES[0]),
            keras.layers.MaxPooling2D(2, name="--out.x"),
            keras.layers.Conv2D(5, 3, padding="same", activation="relu", name=LAYER_NAMES[1]),
            keras.layers.Conv2D(6, 3, padding="same", activation="relu", name=LAYER_NAMES[2]),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(len(CLASS_NAMES), activation="softmax", name="head"),
        ],
        name="hostile",
    )
