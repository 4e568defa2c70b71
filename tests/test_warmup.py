"""Presenter warm-up: afterwards the pages' default calls are answered from the caches."""
from __future__ import annotations

import pytest

from viz_core.activations import feature_map_layers, feature_maps, layer_chunks
from viz_core.cam import class_heatmap
from viz_core.catalog import DEMO_MODEL_FILE
from viz_core.predict import predict
from viz_core.samples import sample_bytes
from viz_core.targets import Target
from viz_core.warmup import warm_up

pytestmark = pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not built")


def test_warm_up_fills_the_caches_the_pages_read(bench):
    # Stop after the first sample's predictions, feature maps and Grad-CAM: enough to check
    # that the keys match what the pages ask for, without the filter patterns' cost.
    calls = []
    done = warm_up(bench, progress=lambda f, m: calls.append(m),
                   should_stop=lambda: len(calls) >= 5)
    assert done == 5
    model = bench.builtin_model("demo")
    view = model.view(bench.image(sample_bytes("circle"), "circle"))
    misses = bench.results.stats.misses
    top = bench.run(predict, model, (view,), top=5)[0]
    for chunk in layer_chunks(model.info, feature_map_layers(model.info)):
        assert bench.is_cached(feature_maps, model, view, layers=chunk)
    assert bench.is_cached(class_heatmap, model, view, Target(top.top[0].class_index, "logit"),
                           method="gradcam", layer=model.info.last_conv_layer)
    assert bench.results.stats.misses == misses  # the prediction was a hit
    assert top.top[0].label == "circle"
