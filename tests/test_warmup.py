"""Presenter warm-up: afterwards the pages' default calls are answered from the caches."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from viz_core.features.activations import feature_map_layers, feature_maps, layer_chunks
from viz_core.methods.heatmap import class_heatmap
from viz_core.models.catalog import DEMO_MODEL_FILE
from viz_core.metrics.faithfulness import deletion_insertion
from viz_core.metrics.maps import COMPARE_METHODS
from viz_core.runtime.compared import compared_map, compared_map_ready
from viz_core.features.filters import cached_filter_patterns, pattern_layers
from viz_core.models.predict import predict
from viz_core.inputs.samples import sample_bytes
from viz_core.metrics.sanity import DEFAULT_METHODS, FAST_PARAMS, cascading_randomisation
from viz_core.models.targets import Target
from viz_core.runtime.warmup import warm_up

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


@dataclass(frozen=True)
class Stopped:
    """What a warm-up stopped by the user did, read right after it stopped."""

    messages: tuple[str, ...]
    done: int
    ready: dict[str, bool]  # comparison method -> its map cached
    sanity_cached: bool
    questions_after_curves: int = 0


@pytest.fixture(scope="module")
def warmed(tmp_path_factory):
    """The dashboard's own workbench (a private disk cache), warmed up on the circle only.

    Three runs on the same workbench, each going on from where the caches left off, so that
    together they cost about one warm-up: stopped between steps at the first comparison,
    stopped inside the sanity check, then to the end. Yields the workbench, the last run's
    messages and step count, and what each stopped run left behind.
    """
    from ui.state import workbench

    patch = pytest.MonkeyPatch()
    patch.setenv("CNN_VIZ_CACHE", str(tmp_path_factory.mktemp("warm_disk")))
    workbench.clear()
    bench = workbench()
    stops = []
    messages = []
    done = warm_up(bench, samples=("circle",), progress=lambda f, m: messages.append(m),
                   should_stop=lambda: messages[-1].startswith("circle: compare"))
    model = bench.builtin_model("demo")
    view = model.view(bench.image(sample_bytes("circle"), "circle"))
    k = bench.run(predict, model, (view,), top=5)[0].top[0].class_index
    params = {m: FAST_PARAMS[m] for m in DEFAULT_METHODS if m in FAST_PARAMS}

    def sanity_cached() -> bool:
        return bench.is_cached(cascading_randomisation, model, view, Target(k),
                               methods=tuple(DEFAULT_METHODS), steps=8, params=params, seed=0)

    stops.append(Stopped(tuple(messages), done, {
        m: compared_map_ready(bench, model, view, Target(k), m) for m in ("gradcam", "lime")},
        sanity_cached()))

    # A stop asked inside a long step ends it there (Cancelled), without caching a result:
    # let the step before the sanity check finish, then say stop when the check asks.
    asked_after = []

    def stop_inside_sanity() -> bool:
        if messages[-1] != "circle: compare, random-order curves":
            return False
        asked_after.append(True)
        return len(asked_after) > 1  # the first question is the one between steps

    messages = []
    done = warm_up(bench, samples=("circle",), progress=lambda f, m: messages.append(m),
                   should_stop=stop_inside_sanity)
    stops.append(Stopped(tuple(messages), done, {}, sanity_cached(), len(asked_after)))

    progress = []
    done = warm_up(bench, samples=("circle",), progress=lambda f, m: progress.append((f, m)))
    yield bench, progress, done, stops
    workbench.clear()
    patch.undo()


@pytest.mark.slow  # a whole warm-up of the demo model (filter patterns, compare, sanity): 20-35 s
def test_compare_and_sanity_come_last_and_are_cached_as_the_pages_ask(warmed):
    bench, messages, done, _ = warmed
    model = bench.builtin_model("demo")
    assert done == len(messages) and messages[-1] == (1.0, "circle: sanity check")
    texts = [m for _, m in messages]
    first_compare = texts.index("circle: compare, gradcam")
    assert texts[first_compare - 1] == f"filter patterns of {pattern_layers(model)[-1]}"
    assert texts[first_compare:] == (
        [f"circle: compare, {m}{part}" for m in COMPARE_METHODS for part in ("", " curves")]
        + ["circle: compare, random-order curves", "circle: sanity check"])
    for layer in pattern_layers(model):  # as the Filter patterns page asks on arrival
        assert cached_filter_patterns(model, layer, disk=bench.disk) is not None

    # The calls of pages/compare.py and pages/sanity.py with their defaults, written out.
    view = model.view(bench.image(sample_bytes("circle"), "circle"))
    k = bench.run(predict, model, (view,), top=5)[0].top[0].class_index
    for method in COMPARE_METHODS:
        assert compared_map_ready(bench, model, view, Target(k, "logit"), method), method
        heat = compared_map(bench, model, view, Target(k, "logit"), method)
        assert bench.is_cached(deletion_insertion, model, view, k, heat, steps=20,
                               baseline="blurred"), method
    assert bench.is_cached(deletion_insertion, model, view, k, np.zeros((150, 150), "float32"),
                           steps=20, baseline="blurred")
    params = {m: FAST_PARAMS[m] for m in DEFAULT_METHODS if m in FAST_PARAMS}
    assert bench.is_cached(cascading_randomisation, model, view, Target(k),
                           methods=tuple(DEFAULT_METHODS), steps=8, params=params, seed=0)


@pytest.mark.slow  # a whole warm-up of the demo model (filter patterns, compare, sanity): 20-35 s
def test_compare_and_sanity_pages_open_from_the_warm_caches(warmed):
    bench, _, _, _ = warmed
    misses = bench.results.stats.misses
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    assert at.sidebar.selectbox(key="image").value == "circle"
    at.switch_page("pages/compare.py")
    at.run()
    assert not at.exception, at.exception
    assert "cmp_run" not in [b.key for b in at.button]  # no "Compare 6 methods": all cached
    assert {m.value for m in at.markdown} >= {"**Grad-CAM**", "**EigenCAM**"}  # fast ones
    at.switch_page("pages/sanity.py")
    at.run()
    assert not at.exception, at.exception
    assert "san_run" not in [b.key for b in at.button]  # the report is drawn from the cache
    assert any(e.value.startswith("**Edge detector (control)**: does not explain")
               for e in at.warning)  # the control is flagged (its expected verdict: orange)
    assert bench.results.stats.misses == misses  # nothing was computed again


@pytest.mark.slow  # a whole warm-up of the demo model (filter patterns, compare, sanity): 20-35 s
def test_stopping_inside_the_last_steps_leaves_them_undone(warmed):
    # The warm-up stopped between steps at the first comparison, then inside the sanity check
    # (the `warmed` fixture's first two runs, read when each stopped).
    between, inside = warmed[3]
    assert between.messages[-1] == "circle: compare, gradcam"
    assert between.done == len(between.messages)
    assert between.ready == {"gradcam": True, "lime": False}
    assert not between.sanity_cached

    assert inside.messages[-1] == "circle: compare, random-order curves"
    assert inside.done == len(inside.messages)
    assert inside.questions_after_curves == 2  # stopped at the sanity check's first question
    assert not inside.sanity_cached
