"""The neuron atlas against the forward passes it cannot avoid, and its memory as images grow.

In one process, on the demo model's last conv layer and ``ATLAS_BENCH_IMAGES`` (default 512)
generated shapes scenes read through the dataset:

* ``forward``: the baseline: the same images read through the dataset and run to the layer in
  batches of 32 by the atlas's own compiled step (``viz_core.dataset.atlas._forward``), nothing
  else;
* ``atlas``: :func:`viz_core.dataset.atlas.neuron_atlas` (k = 8, every channel): the same reads
  and passes plus each channel's maximum and mean, the bounded top and bottom heaps, the
  histograms and the class means.

Goal (issue 25): the atlas at most **1.3x** the forward passes. Rounds alternate the two and
the fastest of each counts (the machine is shared).

Memory: the atlas over 1,000 and over 5,000 scenes, each in a fresh process, reporting the
process's peak resident memory (VmHWM) after the run; the goal is less than 100 MB between
them (what the atlas keeps is O(channels x k), not O(images)). ``ATLAS_BENCH_MEMORY=0`` skips
it.

Run: ``python -m bench atlas``, or ``python bench/bench_atlas.py`` to print without updating
``bench/results.json``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

IMAGES = int(os.environ.get("ATLAS_BENCH_IMAGES", "512"))
MEMORY_SIZES = (1000, 5000)
BATCH = 32
ROUNDS = 3
GOAL, MEMORY_GOAL_MB = 1.3, 100.0


def _setup(count: int):
    from viz_core.dataset.readers import sample_dataset
    from viz_core.models.catalog import load_builtin_model

    model = load_builtin_model("demo")
    return model, sample_dataset("shapes", model.labels, count=count), \
        model.info.last_conv_layer


def _forward_only(model, data, layer) -> None:
    import numpy as np

    from viz_core.dataset.atlas import _forward
    from viz_core.inputs.intake import LoadedImage, load_image

    forward = _forward(model, layer, False)
    entries = data.entries
    for start in range(0, len(entries), BATCH):
        pixels = []
        for entry in entries[start:start + BATCH]:
            got = data.reader(entry.path)
            image = got if isinstance(got, LoadedImage) else load_image(got, entry.path)
            pixels.append(model.view(image).pixels)
        forward(np.stack(pixels))


def peak_for(count: int) -> dict:
    """In this process: the atlas over ``count`` scenes; resident memory before and peak."""
    from viz_core.dataset.atlas import neuron_atlas

    model, data, layer = _setup(count)
    neuron_atlas(model, data.subset(BATCH) if hasattr(data, "subset") else data, layer, k=8)
    before = _status("VmRSS")
    start = time.perf_counter()
    atlas = neuron_atlas(model, data, layer, k=8)
    return {"images": atlas.images, "rss_before_mb": before, "peak_mb": _status("VmHWM"),
            "seconds": round(time.perf_counter() - start, 1)}


def _status(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def run(images: int = IMAGES) -> dict:
    from viz_core.dataset.atlas import neuron_atlas

    model, data, layer = _setup(images)
    _forward_only(model, data, layer)  # warm: traced step, scenes drawn once
    neuron_atlas(model, data, layer, k=8)
    times = {"forward": [], "atlas": []}
    for _ in range(ROUNDS):
        start = time.perf_counter()
        _forward_only(model, data, layer)
        times["forward"].append(time.perf_counter() - start)
        start = time.perf_counter()
        neuron_atlas(model, data, layer, k=8)
        times["atlas"].append(time.perf_counter() - start)
    best = {k: min(v) for k, v in times.items()}
    out = {"images": images, "layer": layer, "seconds": {k: round(v, 3) for k, v in best.items()},
           "atlas_per_forward": round(best["atlas"] / best["forward"], 2), "goal": GOAL,
           "load_average": round(os.getloadavg()[0], 2)}
    out["within_goal"] = out["atlas_per_forward"] <= GOAL
    if os.environ.get("ATLAS_BENCH_MEMORY", "1") != "0":
        sizes = {}
        for count in MEMORY_SIZES:
            done = subprocess.run([sys.executable, __file__, "--peak", str(count)],
                                  capture_output=True, text=True, cwd=ROOT, timeout=3600,
                                  env=dict(os.environ, PYTHONPATH=str(ROOT)))
            sizes[count] = json.loads(done.stdout.strip().splitlines()[-1])
        out["memory"] = sizes
        grew = sizes[MEMORY_SIZES[1]]["peak_mb"] - sizes[MEMORY_SIZES[0]]["peak_mb"]
        out["peak_growth_mb"] = round(grew, 1)
        out["memory_within_goal"] = grew < MEMORY_GOAL_MB
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["--peak"]:
        print(json.dumps(peak_for(int(sys.argv[2]))))
    else:
        print(json.dumps(run(), indent=2))
