"""TensorFlow's tensor memory on the class server: oneDNN's pool or malloc's heap?

With oneDNN on (TensorFlow's default on x86), tensors of 4 KB and more come from a BFC pool
that grows in doubling regions (2, 4, ..., 128 MB) and never gives them back: an idle class
server kept 254 MB of it (``bench class_day``: malloc's mmapped bytes at rest 128 MB warm,
254 MB after the first classes), grown to the largest moment any class had. The dashboard
(``app.py``, :func:`ui.server_memory.take_memory_as_a_server`) takes them from malloc instead
and has malloc keep big blocks in its heap until the idle trim hands them back.

This measures what that costs: the same workload (the demo model's class heatmaps for six
images with four methods, LIME with 1,000 samples, feature maps; a MobileNetV2 of random
weights at 224 px, a batch of 16 through Grad-CAM and 4 through Score-CAM) in fresh
processes, the two ways alternating, ``ROUNDS`` each, each process timing its workload after
one warm-up pass (the faster of ``PASSES``). Reported: the median seconds of each, their ratio
(server / pool; the goal is at most ``GOAL``), and each process's malloc figures and resident
memory after a trim at the end.

Measured while choosing (3 rounds, another bench beside it): tensors from malloc as glibc
comes (mmap threshold adapting, trim on free) took 1.14x the pool; with big blocks kept in the
heap, 1.03x. Resident at rest: 1,127 MB with the pool, 868 MB without. With transparent huge
pages off as well (the server's settings since): 1.01x (3.19 s against 3.16 s, 5 rounds).

Run: ``python -m bench allocator`` or ``python bench/bench_allocator.py``.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 5
GOAL = 1.10
SETTINGS = ("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")

PASSES = 2
_WORK = r"""
import ctypes, json, sys, time
if sys.argv[1] == "server":
    from ui.server_memory import take_memory_as_a_server
    take_memory_as_a_server()
import numpy as np
import keras
import viz_core as vc
from ui.idle import malloc_mb, resident_mb

demo = vc.load_model("demo", allow_download=False)
images = [vc.load_image(f"assets/samples/{name}.png") for name in
          ("circle", "square", "triangle", "star", "circle_and_star", "square_and_triangle")]
net = vc.load_model(keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3)),
                    labels=[f"class {i}" for i in range(1000)])
batch = np.random.default_rng(0).integers(0, 256, (16, 224, 224, 3), dtype=np.uint8)


def work():
    for method in ("gradcam", "layercam", "scorecam", "saliency"):
        vc.explain(demo, images, method)
    vc.lime(demo, images[0], samples=1000)
    vc.feature_maps(demo, images[4])
    vc.explain(net, batch, "gradcam")
    vc.explain(net, batch[:4], "scorecam")


work()  # traces every step once
passes = []
for _ in range(PASSES):
    start = time.perf_counter()
    work()
    passes.append(time.perf_counter() - start)
seconds = min(passes)  # the machine may be shared: the least disturbed pass
ctypes.CDLL("libc.so.6").malloc_trim(0)
print(json.dumps({"seconds": seconds, "malloc_mb": malloc_mb(), "rss_mb": resident_mb()}))
"""


def one(mode: str) -> dict:
    """One fresh process's workload; ``mode``: ``pool`` (TensorFlow's and glibc's defaults) or
    ``server`` (the dashboard's :func:`ui.server_memory.take_memory_as_a_server`)."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", f"PASSES = {PASSES}\n" + _WORK, mode],
                         capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(rounds: int = ROUNDS) -> dict:
    runs = {"pool": [], "server": []}
    for _ in range(rounds):
        for mode in runs:
            runs[mode].append(one(mode))
    median = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
    ratio = median["server"] / median["pool"]
    return {"rounds": rounds, "median_s": {k: round(v, 2) for k, v in median.items()},
            "ratio_server_to_pool": round(ratio, 3), "goal": GOAL,
            "within_goal": ratio <= GOAL,
            "at_rest": {k: [{"rss_mb": round(r["rss_mb"], 1), **r["malloc_mb"]} for r in v]
                        for k, v in runs.items()},
            "seconds": {k: [round(r["seconds"], 2) for r in v] for k, v in runs.items()}}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
