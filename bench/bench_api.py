"""The public API: ``vc.explain`` on a batch of demo images against batched forward passes.

In one process, on the demo model and ``API_BENCH_IMAGES`` (default 64) demo scenes held in
memory as one (N, 150, 150, 3) uint8 array, what a notebook user passes:

* ``forward``: the model's forward passes of the same images (preprocessing included, the
  model in a ``tf.function``, batches of 32): the baseline;
* ``explain``: ``vc.explain(model, images, method="layercam")``, each image's top class, the
  whole call (arrays checked and wrapped, maps resized and normalised, results built).

Goal (issue 24): explain at most **1.2x** forward. Rounds alternate the two and the fastest of
each counts (the machine is shared); the median of the rounds' own ratios is printed too. Every map is also checked against the single-image
``class_heatmap`` (what ``heatmap --method layercam`` writes) of the same image and class:
equal within 1e-4.

Run: ``python -m bench api``, or ``python bench/bench_api.py`` to print without updating
``bench/results.json``.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

IMAGES = int(os.environ.get("API_BENCH_IMAGES", "64"))
BATCH = 32
ROUNDS = 7
GOAL = 1.2
TOLERANCE = 1e-4


def run(images: int = IMAGES) -> dict:
    import numpy as np
    import tensorflow as tf

    import viz_core as vc
    from viz_core.demo.shapes import dataset_scene
    from viz_core.methods.heatmap import class_heatmap
    from viz_core.inputs.intake import image_from_array
    from viz_core.models.targets import Target

    model = vc.load_model("demo")
    pixels = np.stack([dataset_scene(seed).image for seed in range(images)])
    compiled = tf.function(lambda x: model.model(x, training=False), reduce_retracing=True)

    def forward():
        for i in range(0, len(pixels), BATCH):
            compiled(model.batch(pixels[i:i + BATCH].astype("float32"))).numpy()

    forward()  # trace
    vc.explain(model, pixels[:BATCH])  # trace
    forwards, explains, results = [], [], None
    for _ in range(ROUNDS):
        start = time.perf_counter()
        forward()
        forwards.append(time.perf_counter() - start)
        start = time.perf_counter()
        results = vc.explain(model, pixels, method="layercam")
        explains.append(time.perf_counter() - start)

    worst = 0.0
    for i, result in enumerate(results):
        view = model.view(image_from_array(pixels[i], f"check {i}"))
        single = class_heatmap(model, view, Target(result.class_index), "layercam")
        worst = max(worst, float(np.abs(single.heatmap - result.map).max()))
    ratio = min(explains) / min(forwards)
    return {
        "images": images,
        "forward_s": round(min(forwards), 4),
        "explain_s": round(min(explains), 4),
        "explain_over_forward": round(ratio, 3),
        "explain_over_forward_each_round": [round(e / f, 2) for e, f in zip(explains, forwards)],
        "explain_over_forward_median_round": round(float(np.median(
            [e / f for e, f in zip(explains, forwards)])), 3),
        "explain_over_forward_goal": GOAL,
        "max_difference_from_single_image_heatmap": worst,
        "ok": ratio <= GOAL and worst <= TOLERANCE,
        "load_average": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
