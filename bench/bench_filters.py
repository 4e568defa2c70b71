"""Benchmark: filter patterns, the tutorial's classic loop against the fast default.

Run: ``python -m bench filters`` (or ``python bench/bench_filters.py``). Prints one JSON object.
The classic side takes minutes on 2 cores.

Targets from issue 5, 64 filters of VGG16 ``block3_conv1`` (random weights; ImageNet weights
too when they are in the Keras cache), both methods compiled and warmed up, same process:

* the default method at least 20x faster than ``classic`` run filter by filter. The machine is
  shared, so its load changes during the minutes the classic run takes: the classic run is
  split into four runs of 16 filters with a fast run of all 64 before, between and after them,
  and the speed-up is the classic total over the median fast run;
* the mean activation reached, measured on the *displayed* 8-bit patterns preprocessed as the
  model expects, at least the classic method's.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from viz_core.catalog import builtin, keras_cache_dir, load_builtin_model  # noqa: E402
from viz_core.filters import (  # noqa: E402
    DEFAULT_STEPS,
    filter_patterns,
    mean_activations,
    starting_images,
)

MODEL, LAYER, FILTERS, SIZE = "vgg16", "block3_conv1", tuple(range(64)), 150
MIN_SPEEDUP = 20.0


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def _compare(model) -> dict:
    _, first_fast_s = _timed(lambda: filter_patterns(model, LAYER, [0], method="fast", steps=1))
    _, first_classic_s = _timed(
        lambda: filter_patterns(model, LAYER, [0], method="classic", steps=1))
    fast_runs, classic_parts, classic_runs = [], [], []
    for part in range(4):
        fast, seconds = _timed(lambda: filter_patterns(model, LAYER, FILTERS, size=SIZE))
        fast_runs.append(seconds)
        chunk = FILTERS[16 * part:16 * (part + 1)]
        result, seconds = _timed(
            lambda: filter_patterns(model, LAYER, chunk, method="classic", size=SIZE))
        classic_parts.append(result)
        classic_runs.append(seconds)
    fast, seconds = _timed(lambda: filter_patterns(model, LAYER, FILTERS, size=SIZE))
    fast_runs.append(seconds)
    classic_s, fast_s = sum(classic_runs), float(np.median(fast_runs))
    classic = classic_parts[0]
    classic_patterns = np.concatenate([r.patterns for r in classic_parts])
    classic_dead = np.concatenate([r.dead for r in classic_parts])
    # The same measurement for both: each displayed uint8 pattern through the model.
    act_fast = mean_activations(model, LAYER, fast.patterns, FILTERS)
    act_classic = mean_activations(model, LAYER, classic_patterns, FILTERS)
    start_fast = mean_activations(model, LAYER, starting_images(model, LAYER, FILTERS), FILTERS)
    start_classic = mean_activations(
        model, LAYER, starting_images(model, LAYER, FILTERS, method="classic"), FILTERS)
    live = ~(fast.dead | classic_dead)
    speedup = classic_s / fast_s
    return {
        "filters": len(FILTERS),
        "size_px": SIZE,
        "classic": {"steps": classic.steps, "canvas_px": classic.canvas,
                    "seconds": round(classic_s, 2),
                    "seconds_runs_of_16": [round(t, 2) for t in classic_runs],
                    "seconds_per_filter": round(classic_s / len(FILTERS), 3),
                    "mean_activation": round(float(act_classic.mean()), 4),
                    "mean_start_activation": round(float(start_classic.mean()), 4),
                    "dead": int(classic_dead.sum()),
                    "first_call_s": round(first_classic_s, 2)},
        "fast": {"steps": fast.steps, "canvas_px": fast.canvas, "period_px": fast.period,
                 "seconds": round(fast_s, 2),
                 "seconds_runs": [round(t, 2) for t in fast_runs],
                 "mean_activation": round(float(act_fast.mean()), 4),
                 "mean_start_activation": round(float(start_fast.mean()), 4),
                 "dead": int(fast.dead.sum()),
                 "first_call_s": round(first_fast_s, 2)},
        "speedup": round(speedup, 1),
        "speedup_each_part": [  # a quarter of the classic run against its neighbouring fast runs
            round(4 * c / ((a + b) / 2), 1)
            for c, a, b in zip(classic_runs, fast_runs[:-1], fast_runs[1:])],
        "activation_ratio": round(float(act_fast.mean() / max(act_classic.mean(), 1e-12)), 3),
        "share_of_live_filters_fast_at_least_classic": round(
            float(np.mean(act_fast[live] >= act_classic[live])) if live.any() else 0.0, 3),
        "reported_matches_measured": bool(np.allclose(fast.activations, act_fast, rtol=1e-4,
                                                      atol=1e-5)),
        "passed": bool(speedup >= MIN_SPEEDUP and act_fast.mean() >= act_classic.mean()),
    }


def run() -> dict:
    results = {"model": MODEL, "layer": LAYER, "default_steps": dict(DEFAULT_STEPS),
               "min_speedup": MIN_SPEEDUP}
    results["none"] = _compare(load_builtin_model(MODEL, "none", allow_download=False))
    weights = keras_cache_dir() / builtin(MODEL).weights_file
    if weights.exists():
        results["imagenet"] = _compare(load_builtin_model(MODEL, "imagenet",
                                                          allow_download=False))
    else:
        results["imagenet"] = f"skipped: {weights} is not on this machine"
    results["passed"] = all(v["passed"] for v in (results["none"], results["imagenet"])
                            if isinstance(v, dict))
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
