"""Shared fixtures: tiny seeded models with hand-checkable structure, and a private workbench."""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from viz_core.models.catalog import LoadedModel  # noqa: E402
from viz_core.models.inspect import inspect_model  # noqa: E402
from viz_core.runtime.workbench import Workbench  # noqa: E402


def wrap(model, *, labels=None, preprocessing="unit", name="test") -> LoadedModel:
    """A keras model as a :class:`LoadedModel` (what the catalogue would return)."""
    info = inspect_model(model)
    return LoadedModel(
        model=model,
        name=name,
        title=name,
        identity=f"{name}@{id(model)}",
        weights="test",
        preprocessing=preprocessing,
        labels=tuple(labels or (f"class {i}" for i in range(info.num_classes))),
        info=info,
    )


def tiny_cnn(size=32, channels=3, classes=3, activation="softmax", seed=0):
    """Two conv layers (4 and 6 filters), max pooling, global average pooling, dense head."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((size, size, channels)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a"),
            keras.layers.MaxPooling2D(2, name="pool_a"),
            keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_b"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(classes, activation=activation, name="head"),
        ],
        name="tiny",
    )


def clashing_names_cnn():
    """A layer named "conv" inside a nested model and another "conv" outside it: a model
    Keras cannot rebuild as one flat graph."""
    base = keras.Sequential([keras.Input((16, 16, 3)),
                             keras.layers.Conv2D(3, 3, activation="relu", name="conv")],
                            name="base")
    return keras.Sequential([keras.Input((16, 16, 3)), base,
                             keras.layers.Conv2D(2, 3, activation="relu", name="conv"),
                             keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(2, activation="softmax", name="out")])


def nested_cnn(size=32, classes=1, seed=0):
    """The usual transfer-learning shape: Sequential([base CNN, Flatten, Dense(sigmoid)])."""
    keras.utils.set_random_seed(seed)
    base = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a"),
            keras.layers.MaxPooling2D(2, name="pool_a"),
            keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_b"),
        ],
        name="base",
    )
    return keras.Sequential(
        [keras.Input((size, size, 3)), base, keras.layers.Flatten(name="flatten"),
         keras.layers.Dense(classes, activation="sigmoid" if classes == 1 else "softmax",
                            name="head")],
        name="transfer",
    )


@pytest.fixture
def bench(tmp_path):
    """A workbench with its own disk cache folder and no network."""
    return Workbench(disk_dir=tmp_path / "disk_cache", allow_download=False)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


E2E_FOLDER = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(items):
    """Every browser test (marker ``e2e``, or any test under ``tests/e2e/``) is also ``slow``:
    each starts ``streamlit run`` and Chromium, so ``pytest -m "not slow"`` leaves them out."""
    for item in items:
        if item.get_closest_marker("e2e") is not None or E2E_FOLDER in item.path.parents:
            item.add_marker(pytest.mark.slow)
