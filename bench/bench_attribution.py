"""Relevance propagation and Guided Backprop on VGG16 (random weights), against their baselines.

In one process, on ``vgg16`` with ``weights=None`` (nothing downloaded) and one 224x224 image:

* ``forward``: one compiled forward pass of the image (the model in a ``tf.function``);
* ``gradient``: a plain saliency map (``class_heatmap(..., "saliency")``: one forward and one
  backward pass, the baseline of a guided gradient);
* ``lrp_epsilon``, ``lrp_composite``, ``lrp_alphabeta``: one LRP map each;
* ``guided_backprop``: one Guided Backprop map;
* ``batch_forward`` and ``batch_<lrp method>``: the same for a batch of :data:`BATCH` images
  (``class_heatmaps``, one LRP sweep per batch), reported per image as
  ``<lrp method>_batched_per_forward``.

Goals (issue 26): an LRP map costs at most **3x** one forward pass; Guided Backprop at most
**1.5x** a plain gradient. Each call is traced first, then rounds alternate the calls and the
fastest of each counts (the machine is shared). Every call uses a new image so no cached step
result is reused.

Run: ``python -m bench attribution``, or ``python bench/bench_attribution.py`` to print without
updating ``bench/results.json``.
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

ROUNDS = 7
BATCH = 4
LRP = ("lrp_epsilon", "lrp_composite", "lrp_alphabeta")
LRP_GOAL = 3.0
GUIDED_GOAL = 1.5


def run() -> dict:
    import numpy as np
    import tensorflow as tf

    import viz_core as vc
    from viz_core.inputs.intake import image_from_array
    from viz_core.methods.heatmap import class_heatmap, class_heatmaps
    from viz_core.models.targets import Target

    model = vc.load_model("vgg16", weights="none")
    rng = np.random.default_rng(0)
    compiled = tf.function(lambda x: model.model(x, training=False))

    def fresh():
        pixels = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
        return model.view(image_from_array(pixels, f"bench_{rng.integers(1 << 30)}"))

    def forward():
        compiled(model.batch(fresh().pixels[None].astype("float32"))).numpy()

    def heatmap(method):
        return lambda: class_heatmap(model, fresh(), Target(1), method)

    def batch_forward():
        compiled(model.batch(np.stack([fresh().pixels for _ in range(BATCH)]))).numpy()

    def heatmaps(method):
        return lambda: class_heatmaps(model, [fresh() for _ in range(BATCH)], Target(1), method)

    single = {"forward": forward, "gradient": heatmap("saliency"),
              "guided_backprop": heatmap("guided_backprop"),
              **{name: heatmap(name) for name in LRP}}
    batched = {"batch_forward": batch_forward, **{f"batch_{name}": heatmaps(name) for name in LRP}}
    best: dict[str, float] = {}
    # the batches after the single images: their large allocations would slow the next calls
    for calls in (single, batched):
        for call in calls.values():  # trace every step once
            call()
        best.update({name: float("inf") for name in calls})
        for _ in range(ROUNDS):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                best[name] = min(best[name], time.perf_counter() - start)
    ratios = {f"{name}_per_forward": round(best[name] / best["forward"], 2) for name in LRP}
    ratios.update({f"{name}_batched_per_forward": round(best[f"batch_{name}"]
                                                        / best["batch_forward"], 2)
                   for name in LRP})
    ratios["guided_per_gradient"] = round(best["guided_backprop"] / best["gradient"], 2)
    return {
        "seconds": {name: round(value, 4) for name, value in best.items()},
        **ratios,
        "lrp_within_goal": all(ratios[f"{n}_per_forward"] <= LRP_GOAL for n in LRP),
        "guided_within_goal": ratios["guided_per_gradient"] <= GUIDED_GOAL,
        "load_average": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
