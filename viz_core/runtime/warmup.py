"""Prepare the demo model's results ahead, so a class demo never waits (presenter mode).

Runs the same cached calls the pages make with their default settings, through the
workbench, for every generated sample, most wanted first: predictions, all feature maps,
Grad-CAM for the two most likely classes, the first 64 filter patterns of every conv layer
(disk-cached), then, last, the Compare page (its default maps and their deletion / insertion curves)
and the Sanity page (cascading randomisation) for each sample's most likely class.

Every step is cut short by ``should_stop``: between steps, and inside the long ones (they
take it too), so a stopping server never waits long nor kills a thread inside TensorFlow.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from viz_core.features.activations import feature_map_layers, feature_maps, layer_chunks
from viz_core.methods.heatmap import class_heatmap, top_classes
from viz_core.errors import VizError
from viz_core.metrics.faithfulness import DEFAULT_BASELINE, DEFAULT_CURVE_STEPS, deletion_insertion
from viz_core.metrics.maps import compare_methods
from viz_core.runtime.compared import compared_map
from viz_core.features.filters import (
    DEFAULT_COUNT,
    DEFAULT_SIZE,
    DEFAULT_STEPS,
    filter_count,
    filter_patterns,
    pattern_layers,
)
from viz_core.models.predict import predict
from viz_core.inputs.samples import list_samples, sample_bytes
from viz_core.metrics.sanity import (
    DEFAULT_SEED,
    cascading_randomisation,
    default_methods,
    default_steps,
    fast_params,
    weighted_layers,
)
from viz_core.models.targets import Target


def compare_defaults() -> dict:
    """Keyword arguments of the Compare page's default deletion / insertion curves
    (pages/compare.py reads the same constants of :mod:`viz_core.metrics.faithfulness`)."""
    return dict(steps=DEFAULT_CURVE_STEPS, baseline=DEFAULT_BASELINE)


def sanity_defaults(model) -> dict:
    """Keyword arguments of the Sanity page's default cascading randomisation of ``model``
    (pages/sanity.py reads the same defaults of :mod:`viz_core.metrics.sanity`)."""
    steps = default_steps(len(weighted_layers(model.model)))
    methods = default_methods()
    return dict(methods=methods, steps=steps, params=fast_params(methods), seed=DEFAULT_SEED)


def warm_up(bench, *, samples: Sequence[str] | None = None,
            should_stop: Callable[[], bool] | None = None,
            progress: Callable[[float, str], None] | None = None) -> int:
    """Compute the demo model's default views for the generated samples.

    Parameters
    ----------
    bench : Workbench
        Whose caches are filled (the dashboard's, so its pages then answer from them).
    samples : sequence of str or None
        Names of sample images (:func:`viz_core.inputs.samples.list_samples`); None means every
        generated shape scene.
    should_stop : callable() -> bool or None
        Asked after every step and inside the long ones; True ends the work quietly.
    progress : callable(fraction, message) or None
        Called after every step, ``fraction`` in [0, 1].

    Returns
    -------
    int
        The number of steps done.
    """
    stop = should_stop or (lambda: False)
    try:
        model = bench.builtin_model("demo")
        info = model.info
        names = ([s.name for s in list_samples() if s.kind == "shapes"] if samples is None
                 else list(samples))
        views = [model.view(bench.image(sample_bytes(name), name)) for name in names]
    except VizError:
        return 0  # the demo model is missing: nothing to prepare
    chunks = layer_chunks(info, feature_map_layers(info))
    conv = pattern_layers(model)
    compared = compare_methods()  # the Compare page's default methods, from the registry
    per_compare = 2 * len(compared) + 1  # each map, its curves, the random order
    total = len(names) * (2 + len(chunks) + 2) + len(conv) + len(names) * (per_compare + 1)
    done = 0

    def tick(message: str) -> bool:
        nonlocal done
        done += 1
        if progress:
            progress(done / total, message)
        return stop()

    try:
        for name, view in zip(names, views):
            first = bench.run(predict, model, (view,), top=5)[0]
            if tick(f"{name}: prediction"):
                return done
            bench.run(predict, model, (view,), top=len(model.labels))
            if tick(f"{name}: ranking"):
                return done
            for chunk in chunks:
                bench.run(feature_maps, model, view, layers=chunk)
                if tick(f"{name}: feature maps"):
                    return done
            for score in first.top[:2]:
                bench.run(class_heatmap, model, view, Target(score.class_index, "logit"),
                          method="gradcam", layer=info.last_conv_layer)
                if tick(f"{name}: Grad-CAM of {score.label}"):
                    return done
        for layer in conv:
            filters = tuple(range(min(DEFAULT_COUNT, filter_count(model, layer))))
            filter_patterns(model, layer, filters, disk=bench.disk, method="fast",
                            steps=DEFAULT_STEPS["fast"], size=DEFAULT_SIZE, should_stop=stop)
            if tick(f"filter patterns of {layer}"):
                return done
        # Lowest priority: the Compare and Sanity pages, for the class each page opens on.
        for name, view in zip(names, views):
            k = top_classes(model, view, 1)[0][0]
            target = Target(k, "logit")
            for method in compared:
                heat = compared_map(bench, model, view, target, method, should_stop=stop)
                if tick(f"{name}: compare, {method}"):
                    return done
                bench.run(deletion_insertion, model, view, k, heat, should_stop=stop,
                          **compare_defaults())
                if tick(f"{name}: compare, {method} curves"):
                    return done
            random_order = np.zeros(info.input_shape[:2], dtype="float32")  # all ties
            bench.run(deletion_insertion, model, view, k, random_order, should_stop=stop,
                      **compare_defaults())
            if tick(f"{name}: compare, random-order curves"):
                return done
            bench.run(cascading_randomisation, model, view, Target(k), should_stop=stop,
                      **sanity_defaults(model))
            if tick(f"{name}: sanity check"):
                return done
    except VizError:
        return done  # stopped inside a step (Cancelled), or a result the model cannot make
    return done
