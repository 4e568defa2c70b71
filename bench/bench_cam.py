"""Benchmark: Grad-CAM cost on VGG16 (random weights, 224x224) against one forward pass.

Run: ``python -m bench cam`` (or ``python bench/bench_cam.py``). Prints one JSON object.

Targets from issue 6, as ratios measured in the same process:

* Grad-CAM of a new image <= 1.3x one forward pass of the same model;
* Grad-CAM of another class of an image already seen <= 0.3x one forward pass.

Each timing is the median of several repeats after a warm-up (tracing ``tf.function`` is a
one-off cost per model, not per image); the three measurements are interleaved so a busy shared
machine slows them alike. Every repeat uses a fresh image, so no cache is hit by the "new image"
case. The forward-pass baseline is the faster of a compiled and an eager call of the model.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from viz_core.cam import class_heatmap  # noqa: E402
from viz_core.catalog import load_builtin_model  # noqa: E402
from viz_core.intake import image_from_array  # noqa: E402
from viz_core.targets import Target  # noqa: E402

MAX_NEW_IMAGE_RATIO = 1.3
MAX_CLASS_SWITCH_RATIO = 0.3


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(repeats: int = 7, model_name: str = "vgg16") -> dict:
    """Measure and return the timings (seconds) and ratios; ``ok`` says whether both hold."""
    model = load_builtin_model(model_name, "none", allow_download=False)
    rng = np.random.default_rng(0)
    h, w, _ = model.info.input_shape
    images = [model.view(image_from_array(rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
                                          f"bench{i}"))
              for i in range(repeats + 1)]
    keras_model = model.model
    forward = tf.function(lambda x: keras_model(x, training=False))
    batches = [tf.constant(model.batch([img])) for img in images]

    # Warm-up: trace every compiled function once.
    forward(batches[0])
    class_heatmap(model, images[0], Target(0))
    class_heatmap(model, images[0], Target(1))
    class_heatmap(model, images[0], Target(2), "gradcam++")

    # Interleaved, so that the load of a shared machine hits all three alike.
    times = {"forward": [], "eager": [], "new": [], "switch": []}
    for i in range(repeats):
        image, batch = images[1 + i], batches[1 + i]
        times["forward"].append(_timed(lambda: np.asarray(forward(batch))))
        times["eager"].append(_timed(lambda: np.asarray(keras_model(batch, training=False))))
        times["new"].append(_timed(lambda: class_heatmap(model, image, Target(3))))
        # another class of the image just seen: its forward pass is cached, the class is new
        times["switch"].append(_timed(lambda: class_heatmap(model, image, Target(10 + i))))
    forward_s, eager_forward_s, new_image_s, switch_s = (
        statistics.median(times[k]) for k in ("forward", "eager", "new", "switch"))
    baseline = min(forward_s, eager_forward_s)
    result = {
        "model": model_name,
        "input": [h, w],
        "forward_s": round(baseline, 4),
        "forward_compiled_s": round(forward_s, 4),
        "forward_eager_s": round(eager_forward_s, 4),
        "gradcam_new_image_s": round(new_image_s, 4),
        "gradcam_class_switch_s": round(switch_s, 4),
        "new_image_ratio": round(new_image_s / baseline, 3),
        "class_switch_ratio": round(switch_s / baseline, 3),
        "max_new_image_ratio": MAX_NEW_IMAGE_RATIO,
        "max_class_switch_ratio": MAX_CLASS_SWITCH_RATIO,
    }
    result["ok"] = (result["new_image_ratio"] <= MAX_NEW_IMAGE_RATIO
                    and result["class_switch_ratio"] <= MAX_CLASS_SWITCH_RATIO)
    return result


if __name__ == "__main__":
    outcome = run()
    print(json.dumps(outcome))
    sys.exit(0 if outcome["ok"] else 1)
