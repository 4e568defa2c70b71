"""Six sessions at once: different images, different pages, one shared workbench.

The dashboard keeps one :class:`~viz_core.runtime.workbench.Workbench` per server process, so every
browser session shares its caches (and the models' compiled steps). Here six threads, started
together, each make the calls one page makes for its own image, three times over (reruns), on
one workbench. Each must get exactly what it gets alone (same numbers as a run on a fresh
workbench, one session at a time), results must carry its own image, and nothing may fail.
Then six threads ask for the same missing result at the same moment: it is computed once.

(AppTest cannot run sessions in threads: each run swaps Streamlit's process-wide Runtime
instance. Real concurrent sessions of the served app are driven from several browser contexts
in ``tests/e2e/test_browser.py``.)
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from tests.conftest import tiny_cnn, wrap
from viz_core.features.activations import feature_maps
from viz_core.methods.heatmap import class_heatmap, top_classes
from viz_core.features.filters import filter_patterns
from viz_core.methods.lime import fit_explanation, perturbed_predictions
from viz_core.models.predict import predict
from viz_core.inputs.samples import sample_bytes
from viz_core.methods.superpixels import superpixels
from viz_core.models.targets import Target
from viz_core.runtime.workbench import Workbench

LABELS = ["circle", "square", "triangle", "star"]
IMAGES = ("circle", "square", "triangle", "star", "circle_and_star", "square_and_triangle")
RERUNS = 3


@pytest.fixture(scope="module")
def model():
    return wrap(tiny_cnn(size=48, classes=4), labels=LABELS, name="shared")


# One function per page: the calls that page makes through the workbench, returning the
# arrays it would show, plus the image identity each result says it belongs to.
def overview_page(bench, model, image):
    view = model.view(image)
    result = bench.run(predict, model, (view,), top=4)[0]
    return {"probabilities": result.probabilities}, {result.image}


def feature_maps_page(bench, model, image):
    view = model.view(image)
    maps = bench.run(feature_maps, model, view, layers=("conv_a", "pool_a", "conv_b"))
    return {path: maps.layer(path).values for path in ("conv_a", "pool_a", "conv_b")}, {
        maps.digest}


def heatmaps_page(method: str) -> Callable:
    def page(bench, model, image):
        view = model.view(image)
        top = top_classes(model, view, 2)
        maps = {}
        owners = set()
        for k, _, _ in top:
            result = bench.run(class_heatmap, model, view, Target(k, "logit"), method=method,
                               layer=None)
            maps[f"{method}_{k}"] = result.heatmap
            owners.add(result.image)
        return maps, owners
    return page


def lime_page(bench, model, image):
    view = model.view(image)
    segmentation = bench.run(superpixels, view, algorithm="slic", n_superpixels=20,
                             compactness=10.0, seed=0)
    predictions = bench.run(perturbed_predictions, model, view, segmentation, seed=0,
                            samples=40, hide="white")
    explanation = bench.run(fit_explanation, model, predictions, (0, 1))
    return {"segments": segmentation.segments, "weights": explanation.weights}, {
        predictions.image_digest}


def filters_page(bench, model, image):
    # Filter patterns do not depend on the image; the page still shows the selection's model.
    result = filter_patterns(model, "conv_b", (0, 1, 2), method="fast", steps=4, size=48,
                             disk=bench.disk)
    return {"patterns": result.patterns}, set()


@dataclass(frozen=True)
class Session:
    image: str
    page: Callable


SESSIONS = (
    Session("circle", overview_page),
    Session("square", feature_maps_page),
    Session("triangle", heatmaps_page("gradcam")),
    Session("star", heatmaps_page("gradcam++")),
    Session("circle_and_star", lime_page),
    Session("square_and_triangle", filters_page),
)


def owner_of(session: Session, image) -> set:
    """The identities a session's results may carry: its image's name or digest."""
    return {image.name, image.digest}


def run_alone(model, tmp_path) -> dict:
    bench = Workbench(disk_dir=tmp_path / "alone", allow_download=False)
    out = {}
    for session in SESSIONS:
        image = bench.image(sample_bytes(session.image), session.image)
        out[session.image] = session.page(bench, model, image)
    return out


def test_six_sessions_at_once_each_see_only_their_own_results(model, tmp_path):
    expected = run_alone(model, tmp_path)
    bench = Workbench(disk_dir=tmp_path / "shared", allow_download=False)
    start = threading.Barrier(len(SESSIONS))

    def session_run(session: Session):
        image = bench.image(sample_bytes(session.image), session.image)
        start.wait(timeout=60)
        seen = []
        for _ in range(RERUNS):
            seen.append(session.page(bench, model, image))
        return image, seen

    with ThreadPoolExecutor(len(SESSIONS)) as pool:
        futures = {s.image: pool.submit(session_run, s) for s in SESSIONS}
        outcomes = {name: future.result(timeout=300) for name, future in futures.items()}

    for session in SESSIONS:
        image, seen = outcomes[session.image]
        want_arrays, _ = expected[session.image]
        for arrays, owners in seen:
            assert owners <= owner_of(session, image), (session.image, owners)
            assert arrays.keys() == want_arrays.keys()
            for key, values in arrays.items():
                np.testing.assert_allclose(values, want_arrays[key], rtol=1e-5, atol=1e-6,
                                           err_msg=f"{session.image}: {key}")
    # different images really gave different answers (the check above could not mix them up)
    p_circle = expected["circle"][0]["probabilities"]
    maps = expected["triangle"][0]
    assert len({round(float(v), 6) for v in p_circle}) > 1
    assert all(np.ptp(m) > 0 for m in maps.values())


_calls = []
_calls_lock = threading.Lock()


def counted_heatmap(model, view, target):
    with _calls_lock:
        _calls.append(view.digest)
    return class_heatmap(model, view, target, method="gradcam")


def test_six_sessions_asking_for_the_same_result_compute_it_once(model, tmp_path):
    bench = Workbench(disk_dir=tmp_path, allow_download=False)
    image = bench.image(sample_bytes("circle_and_star"), "circle_and_star")
    view = model.view(image)
    start = threading.Barrier(6)
    _calls.clear()

    def ask(_):
        start.wait(timeout=60)
        return bench.run(counted_heatmap, model, view, Target(3, "logit"))

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(ask, range(6)))
    assert _calls == [view.digest]  # computed once; the other five waited for it
    assert all(r is results[0] for r in results)
    alone = class_heatmap(model, view, Target(3, "logit"), method="gradcam")
    np.testing.assert_allclose(results[0].heatmap, alone.heatmap, rtol=1e-5, atol=1e-6)
