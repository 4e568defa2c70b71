"""Prepare the demo model's results ahead, so a class demo never waits (presenter mode).

Runs the same cached calls the pages make with their default settings, through the
workbench, for every generated sample: predictions, all feature maps, Grad-CAM for the two
most likely classes, and the first 64 filter patterns of every conv layer (disk-cached).
"""
from __future__ import annotations

from typing import Callable

from .activations import feature_map_layers, feature_maps, layer_chunks
from .cam import class_heatmap
from .errors import VizError
from .filters import DEFAULT_SIZE, DEFAULT_STEPS, filter_count, filter_patterns, pattern_layers
from .predict import predict
from .samples import list_samples, sample_bytes
from .targets import Target


def warm_up(bench, *, should_stop: Callable[[], bool] | None = None,
            progress: Callable[[float, str], None] | None = None) -> int:
    """Compute the demo model's default views for every generated sample.

    Returns the number of results prepared. Stops early (quietly) when ``should_stop()``.
    """
    model = bench.builtin_model("demo")
    info = model.info
    samples = [s for s in list_samples() if s.kind == "shapes"]
    chunks = layer_chunks(info, feature_map_layers(info))
    conv = pattern_layers(model)
    total = len(samples) * (2 + len(chunks) + 2) + len(conv)
    done = 0

    def tick(message: str) -> bool:
        nonlocal done
        done += 1
        if progress:
            progress(done / total, message)
        return bool(should_stop and should_stop())

    try:
        for sample in samples:
            view = model.view(bench.image(sample_bytes(sample.name), sample.name))
            first = bench.run(predict, model, (view,), top=5)[0]
            if tick(f"{sample.name}: prediction"):
                return done
            bench.run(predict, model, (view,), top=len(model.labels))
            if tick(f"{sample.name}: ranking"):
                return done
            for chunk in chunks:
                bench.run(feature_maps, model, view, layers=chunk)
                if tick(f"{sample.name}: feature maps"):
                    return done
            for score in first.top[:2]:
                bench.run(class_heatmap, model, view, Target(score.class_index, "logit"),
                          method="gradcam", layer=info.last_conv_layer)
                if tick(f"{sample.name}: Grad-CAM of {score.label}"):
                    return done
        for layer in conv:
            filters = tuple(range(min(64, filter_count(model, layer))))
            filter_patterns(model, layer, filters, disk=bench.disk, method="fast",
                            steps=DEFAULT_STEPS["fast"], size=DEFAULT_SIZE)
            if tick(f"filter patterns of {layer}"):
                return done
    except VizError:
        return done  # the demo model is missing: nothing to prepare
    return done
