"""What Compare's metrics say about the fast methods on the demo model's sample images.

Run: ``python -m bench metrics`` (or ``python bench/bench_metrics.py``). Prints one JSON object
with the numbers per image, their mean per method and a Markdown table (``markdown``).

For each sample image, the class explained is the model's top class; each fast method
(:func:`viz_core.metrics.faithfulness.compare_methods`) makes its compare-view map, and that map gets
every metric of the Compare page: deletion and insertion areas (blurred baseline, 20 steps),
ROAD's MoRF and LeRF areas, sparseness (Gini), the random-logit SSIM and max-sensitivity
(:func:`viz_core.metrics.faithfulness.map_metrics`), and the mean rank agreement (Spearman) with the
other methods' maps. No target: this reports what the metrics measured, for the notes.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from viz_core.methods import registry as methods  # noqa: E402
from viz_core.methods.heatmap import top_classes  # noqa: E402
from viz_core.models.catalog import load_demo_model  # noqa: E402
from viz_core.metrics.faithfulness import (  # noqa: E402
    _map_call,
    compare_methods,
    deletion_insertion,
    map_metrics,
    rank_agreement,
)
from viz_core.inputs.intake import load_image  # noqa: E402
from viz_core.models.targets import Target  # noqa: E402

SAMPLES = ("circle.png", "star.png", "circle_and_star.png", "square_and_triangle.png")
COLUMNS = (("deletion", "deletion AUC (lower better)"), ("insertion", "insertion AUC (higher)"),
           ("road_morf", "ROAD MoRF (lower)"), ("road_lerf", "ROAD LeRF (higher)"),
           ("sparseness", "sparseness (Gini)"), ("random_logit_ssim", "random-logit SSIM (lower)"),
           ("max_sensitivity", "max-sensitivity (lower)"), ("agreement", "mean rank agreement"))


def markdown(means: dict[str, dict[str, float]]) -> str:
    lines = ["| method | " + " | ".join(title for _, title in COLUMNS) + " |",
             "| --- |" + " --- |" * len(COLUMNS)]
    for method, row in means.items():
        lines.append(f"| {methods.title(method)} | "
                     + " | ".join(f"{row[key]:.3f}" for key, _ in COLUMNS) + " |")
    return "\n".join(lines)


def run(samples: tuple[str, ...] = SAMPLES) -> dict:
    model = load_demo_model()
    chosen = compare_methods()
    per_image = {}
    start = time.perf_counter()
    for name in samples:
        data = (ROOT / "assets" / "samples" / name).read_bytes()
        view = model.view(load_image(data, name))
        k, label, probability = top_classes(model, view, 1)[0]
        target = Target(k)
        maps = {m: _map_call(model, view, target, m) for m in chosen}
        agreement = rank_agreement(maps)
        rows = {}
        for i, m in enumerate(chosen):
            curves = deletion_insertion(model, view, k, maps[m])
            extra = map_metrics(model, view, target, m)
            others = [agreement.matrix[i, j] for j in range(len(chosen)) if j != i]
            rows[m] = {"deletion": curves.deletion_auc, "insertion": curves.insertion_auc,
                       "road_morf": extra.road_morf, "road_lerf": extra.road_lerf,
                       "sparseness": extra.sparseness,
                       "random_logit_ssim": extra.random_logit_ssim,
                       "max_sensitivity": extra.max_sensitivity,
                       "agreement": float(np.nanmean(others)) if others else float("nan")}
        per_image[name] = {"class": label, "probability": round(probability, 4),
                           "methods": {m: {key: round(float(v), 4) for key, v in r.items()}
                                       for m, r in rows.items()}}
    means = {m: {key: statistics.fmean(per_image[n]["methods"][m][key] for n in samples)
                 for key, _ in COLUMNS} for m in chosen}
    return {
        "model": model.name,
        "samples": list(samples),
        "methods": list(chosen),
        "per_image": per_image,
        "means": {m: {key: round(v, 4) for key, v in row.items()} for m, row in means.items()},
        "markdown": markdown(means),
        "seconds": round(time.perf_counter() - start, 1),
    }


if __name__ == "__main__":
    outcome = run()
    print(json.dumps(outcome))
    print(outcome["markdown"], file=sys.stderr)
