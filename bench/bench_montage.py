"""Benchmark: drawing all 512 channels of a 14x14 layer (VGG16 ``block5_conv3``'s size).

Run: ``python -m bench montage`` (or ``python bench/bench_montage.py``). Prints one JSON object.

Targets from issue 4:

* the montage (numpy + colour lookup table) of 512 channels of 14x14 in under 100 ms;
* montage + PNG at least 20x faster than the tutorial's way, measured in the same process: one
  matplotlib subplot per channel (``image()`` with terrain colours, 16 per row, 58 px per
  channel), saved as one PNG.

Both sides draw the same 58 px tiles with the terrain colour map and write a PNG.
"""
from __future__ import annotations

import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from viz_core.render import png_bytes  # noqa: E402
from viz_core.render.montage import montage  # noqa: E402

CHANNELS, SIZE, PER_ROW, TILE = 512, 14, 16, 58
MAX_MONTAGE_MS = 100.0
MIN_SPEEDUP = 20.0


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _tutorial_way(values: np.ndarray) -> bytes:
    """One subplot per channel, as the tutorial's R loop does with par(mfrow) and image()."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = values.shape[2] // PER_ROW
    dpi = 100
    fig, axes = plt.subplots(rows, PER_ROW, figsize=(PER_ROW * TILE / dpi, rows * TILE / dpi),
                             dpi=dpi, gridspec_kw=dict(wspace=0.02, hspace=0.02))
    for k, ax in enumerate(axes.ravel()):
        ax.imshow(values[:, :, k], cmap="terrain", interpolation="nearest")
        ax.set_axis_off()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def run() -> dict:
    rng = np.random.default_rng(0)
    values = np.maximum(rng.normal(size=(SIZE, SIZE, CHANNELS)), 0).astype("float32")
    values[:, :, ::7] = 0.0  # some dead channels, as after a ReLU

    montage(values, tile=TILE, colormap="terrain")  # warm-up (colour tables loaded once)
    native_ms = 1000 * _median_time(lambda: montage(values, colormap="terrain"), 15)
    tiled_ms = 1000 * _median_time(lambda: montage(values, tile=TILE, colormap="terrain"), 15)
    ours_s = _median_time(
        lambda: png_bytes(montage(values, tile=TILE, colormap="terrain").image), 7)
    _tutorial_way(values[:, :, :32])  # warm-up: matplotlib import and font cache
    baseline_s = _median_time(lambda: _tutorial_way(values), 2)
    speedup = baseline_s / ours_s
    return {
        "channels": CHANNELS,
        "size": SIZE,
        "tile_px": TILE,
        "montage_native_ms": round(native_ms, 2),
        "montage_58px_ms": round(tiled_ms, 2),
        "montage_58px_png_ms": round(1000 * ours_s, 2),
        "matplotlib_subplots_png_ms": round(1000 * baseline_s, 1),
        "speedup_vs_matplotlib": round(speedup, 1),
        "montage_under_100ms": bool(tiled_ms < MAX_MONTAGE_MS),
        "speedup_at_least_20x": bool(speedup >= MIN_SPEEDUP),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
