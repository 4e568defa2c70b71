"""What Compare's metrics say about the fast methods on the demo model's sample images.

Run: ``python -m bench metrics`` (or ``python bench/bench_metrics.py``). Prints one JSON object
with the numbers per image, their mean per method and a Markdown table (``markdown``).

For each sample image, the class explained is the model's top class; each fast method
(:func:`viz_core.metrics.maps.compare_methods`) makes its compare-view map, and that map gets
every registered metric (:mod:`viz_core.metrics.registry`, through
:func:`viz_core.metrics.evaluation.map_metrics`: deletion and insertion areas with the blurred
baseline and 20 steps, ROAD, sparseness, random logit, max-sensitivity, and any metric
registered later), plus the mean rank agreement (Spearman) with the other methods' maps. The
columns, their arrows and number formats come from the registry. No target: this reports what
the metrics measured, for the notes.
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

from viz_core.inputs.intake import load_image  # noqa: E402
from viz_core.methods import registry as methods  # noqa: E402
from viz_core.methods.heatmap import top_classes  # noqa: E402
from viz_core.metrics import registry as metrics  # noqa: E402
from viz_core.metrics.agreement import rank_agreement  # noqa: E402
from viz_core.metrics.evaluation import map_metrics  # noqa: E402
from viz_core.metrics.maps import compare_methods  # noqa: E402
from viz_core.models.catalog import load_demo_model  # noqa: E402
from viz_core.models.targets import Target  # noqa: E402
from viz_core.runtime.compared import compared_map  # noqa: E402
from viz_core.runtime.workbench import Workbench  # noqa: E402

SAMPLES = ("circle.png", "star.png", "circle_and_star.png", "square_and_triangle.png")
AGREEMENT = "agreement"  # not a metric of one map: the mean Spearman with the other methods


def columns() -> list[tuple[str, str, str]]:
    """``(key, title, format)`` of every column: the registry's metrics, then agreement."""
    return ([(s.name, s.column, s.format) for s in metrics.specs()]
            + [(AGREEMENT, "mean rank agreement", "%.3f")])


def markdown(means: dict[str, dict[str, float]]) -> str:
    cols = columns()
    lines = ["| method | " + " | ".join(title for _, title, _ in cols) + " |",
             "| --- |" + " --- |" * len(cols)]
    for method, row in means.items():
        lines.append(f"| {methods.title(method)} | "
                     + " | ".join(fmt % row[key] for key, _, fmt in cols) + " |")
    return "\n".join(lines)


def run(samples: tuple[str, ...] = SAMPLES) -> dict:
    model = load_demo_model()
    bench = Workbench(allow_download=False)
    chosen = compare_methods()
    keys = [key for key, _, _ in columns()]
    per_image = {}
    start = time.perf_counter()
    for name in samples:
        data = (ROOT / "assets" / "samples" / name).read_bytes()
        view = model.view(load_image(data, name))
        k, label, probability = top_classes(model, view, 1)[0]
        target = Target(k, "logit")
        maps = {m: compared_map(bench, model, view, target, m) for m in chosen}
        agreement = rank_agreement(maps)
        rows = {}
        for i, m in enumerate(chosen):
            scores = map_metrics(model, view, target, m, run=bench.run)
            others = [agreement.matrix[i, j] for j in range(len(chosen)) if j != i]
            rows[m] = {**scores.values,
                       AGREEMENT: float(np.nanmean(others)) if others else float("nan")}
        per_image[name] = {"class": label, "probability": round(probability, 4),
                           "methods": {m: {key: round(float(r[key]), 4) for key in keys}
                                       for m, r in rows.items()}}
    means = {m: {key: statistics.fmean(per_image[n]["methods"][m][key] for n in samples)
                 for key in keys} for m in chosen}
    return {
        "model": model.name,
        "samples": list(samples),
        "methods": list(chosen),
        "metrics": metrics.as_json(),
        "per_image": per_image,
        "means": {m: {key: round(v, 4) for key, v in row.items()} for m, row in means.items()},
        "markdown": markdown(means),
        "seconds": round(time.perf_counter() - start, 1),
    }


if __name__ == "__main__":
    outcome = run()
    print(json.dumps(outcome))
    print(outcome["markdown"], file=sys.stderr)
