"""AppTest: Class heatmaps' slow methods wait their turn in the server's job queue, light ones
never do.

The queue's workers are held busy by jobs of other (made-up) sessions; Grad-CAM is drawn at
once all the same, while Score-CAM's run shows its place ("queued, 1 job ahead of you") and,
once the workers are free, draws the very map ``class_heatmap`` computes directly.
"""
from __future__ import annotations

import json
import threading

import numpy as np

import ui.feedback
from tests.app.media import values
from tests.app.test_heatmaps_page import app, downloaded, selected  # noqa: F401 - fixture
from viz_core.methods import registry as methods
from viz_core.methods.heatmap import class_heatmap
from viz_core.render import overlay_heatmap
from viz_core.models.targets import Target


class _Recorder:
    """Stands in for ``st.progress``'s element: keeps the texts it is given."""

    def __init__(self):
        self.texts = []

    def progress(self, value, text=""):
        self.texts.append(text)


def test_a_slow_method_is_queued_behind_busy_workers_and_draws_the_direct_map(app,  # noqa: F811
                                                                               monkeypatch):
    from ui.state import job_queue

    at, loaded, media = app
    queue = job_queue()
    release, started = threading.Event(), threading.Semaphore(0)

    def hold(progress):  # another student's heavy job
        started.release()
        assert release.wait(60)

    blockers = [queue.submit(("other", i), hold, owner=f"other student {i}", label="LIME")
                for i in range(queue.workers)]
    shown = []
    original = ui.feedback.ProgressBar.queued

    def queued(bar, ahead, wait_seconds):
        real, bar.bar = bar.bar, _Recorder()
        original(bar, ahead, wait_seconds)
        shown.extend(bar.bar.texts)
        bar.bar = real
        real.progress(0.0, text=shown[-1])
        release.set()  # the others' jobs end: this one runs next

    monkeypatch.setattr(ui.feedback.ProgressBar, "queued", queued)
    try:
        for _ in blockers:
            assert started.acquire(timeout=30)
        original_image = selected(at)
        view = loaded.view(original_image)
        k = at.radio(key="cam_class").value
        # Light work while every worker is busy: Grad-CAM is drawn in this run, not queued.
        at.run()
        gradcam = class_heatmap(loaded, view, Target(k))
        np.testing.assert_array_equal(downloaded(at, media, original_image, k),
                                      overlay_heatmap(original_image.pixels, gradcam.heatmap))
        assert not shown and not release.is_set()

        at.selectbox(key="cam_method").set_value("scorecam").run()
        assert "Compute Score-CAM" in [b.label for b in at.button]
        at.button(key="cam_run").click().run()
        assert not at.exception, at.exception
        assert not at.error, [e.value for e in at.error]
    finally:
        release.set()
    ahead = "1 job" if queue.workers == 1 else f"{queue.workers} jobs"
    assert shown and shown[0].startswith(f"Computing Score-CAM: queued, {ahead} ahead of you")
    assert all(b.finished.is_set() for b in blockers)

    spec = methods.get("scorecam")
    direct = class_heatmap(loaded, view, Target(k), "scorecam", "conv_b", **spec.page_params(6))
    np.testing.assert_array_equal(downloaded(at, media, original_image, k),
                                  overlay_heatmap(original_image.pixels, direct.heatmap))
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    heat = next(t for t in chart["data"] if t["type"] == "heatmap")
    np.testing.assert_allclose(values(heat["z"]), direct.heatmap, atol=1e-6)
    second = at.selectbox(key="cam_class_2").value  # the runner-up, computed by the same job
    other = class_heatmap(loaded, view, Target(second), "scorecam", "conv_b",
                          **spec.page_params(6))
    np.testing.assert_array_equal(downloaded(at, media, original_image, second),
                                  overlay_heatmap(original_image.pixels, other.heatmap))
