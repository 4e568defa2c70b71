"""Dataset mode: the local engine against batched forward passes and a one-image loop.

In one process, on the demo model and the built-in shapes sample (scenes drawn once and held in
memory, so drawing is not timed):

* ``forward``: batched forward passes only (the model in a ``tf.function``, batches of 32): the
  baseline the issue asks for ("at most 1.6x");
* ``engine``: :func:`viz_core.batch.run_dataset` (predictions + batched Grad-CAM + small maps);
* ``loop``: one image at a time, ``top_classes`` then ``class_heatmap`` of the top class (what a
  user's loop over ``heatmap`` does).

Memory: resident memory (``VmRSS``) after engine runs on ``small`` and on ``large`` images; its
growth should be the small maps and rows of the extra images, not their pixels.

Run: ``python -m bench dataset`` (``DATASET_BENCH_IMAGES`` sets the timed count, default 256).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

IMAGES = int(os.environ.get("DATASET_BENCH_IMAGES", "256"))
LOOP_IMAGES = 32  # the one-image loop is timed on fewer images, reported per image


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run() -> dict:
    import numpy as np

    from viz_core.batch import run_dataset
    from viz_core.cam import class_heatmap, top_classes
    from viz_core.catalog import load_demo_model
    from viz_core.dataset import Dataset, sample_dataset
    from viz_core.intake import image_from_array
    from viz_core.targets import Target

    model = load_demo_model()
    sample = sample_dataset("shapes", model.labels, count=IMAGES)
    loaded = {e.path: sample.load(e) for e in sample.entries}  # drawn once, not timed
    held = Dataset(sample.name, sample.layout, sample.entries, (), sample.classes, (),
                   sample.identity + ":held", lambda path: loaded[path])
    pixels = np.stack([model.view(img).pixels for img in loaded.values()])
    import tensorflow as tf

    run_dataset(model, held.subset(32), batch_size=32)  # compile
    compiled = tf.function(lambda x: model.model(x, training=False), reduce_retracing=True)
    compiled(model.batch(pixels[:32]))

    start = time.perf_counter()
    for i in range(0, len(pixels), 32):
        compiled(model.batch(pixels[i:i + 32])).numpy()
    forward = time.perf_counter() - start

    start = time.perf_counter()
    result = run_dataset(model, held, batch_size=32)
    engine = time.perf_counter() - start

    views = [model.view(image_from_array(img.pixels, f"x{i}"))
             for i, img in enumerate(list(loaded.values())[:LOOP_IMAGES])]
    class_heatmap(model, views[0], Target(0))  # compile
    start = time.perf_counter()
    for view in views[1:]:
        k = top_classes(model, view, 1)[0][0]
        class_heatmap(model, view, Target(k))
    loop = (time.perf_counter() - start) / (len(views) - 1)

    small = max(32, IMAGES // 4)
    before = rss_mb()
    run_dataset(model, held.subset(small), batch_size=32)
    after_small = rss_mb()
    run_dataset(model, held, batch_size=32)
    after_large = rss_mb()
    return {
        "images": IMAGES,
        "accuracy": round(float(result.accuracy), 4),
        "forward_images_per_s": round(IMAGES / forward, 1),
        "engine_images_per_s": round(IMAGES / engine, 1),
        "loop_images_per_s": round(1.0 / loop, 1),
        "engine_over_forward": round(engine / forward, 2),
        "loop_over_engine_per_image": round(loop / (engine / IMAGES), 2),
        "small_maps_mb": round(result.maps.nbytes / 2**20, 3),
        "rss_mb_before": round(before, 1),
        "rss_growth_mb_small_run": round(after_small - before, 1),
        "rss_growth_mb_large_after_small": round(after_large - after_small, 1),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
