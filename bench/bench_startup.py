"""Cold start (import + demo model load + first prediction, in a fresh process) against a
cached rerun (same calls answered by the workbench caches), as a ratio."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_COLD = r"""
import json, time
t0 = time.perf_counter()
from viz_core.runtime.workbench import Workbench
from viz_core.inputs.samples import sample_bytes
from viz_core.models.predict import predict
t1 = time.perf_counter()
bench = Workbench()
model = bench.builtin_model("demo")
t2 = time.perf_counter()
image = bench.image(sample_bytes("circle"), "circle")
view = model.view(image)
bench.run(predict, model, (view,), top=5)
t3 = time.perf_counter()
for _ in range(20):  # what a Streamlit rerun does: every call answered from the caches
    m = bench.builtin_model("demo")
    i = bench.image(sample_bytes("circle"), "circle")
    bench.run(predict, m, (m.view(i),), top=5)
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "model_load_s": t2 - t1, "first_prediction_s": t3 - t2,
                  "cached_rerun_s": (t4 - t3) / 20}))
"""


def run() -> dict:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _COLD], capture_output=True, text=True,
                         cwd=ROOT, check=True, env={"TF_CPP_MIN_LOG_LEVEL": "3",
                                                    "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    numbers = json.loads(out.stdout.strip().splitlines()[-1])
    cold = numbers["import_s"] + numbers["model_load_s"] + numbers["first_prediction_s"]
    numbers = {k: round(v, 4) for k, v in numbers.items()}
    numbers.update(cold_start_s=round(cold, 3), process_wall_s=round(wall, 3),
                   cold_over_cached_rerun=round(cold / max(numbers["cached_rerun_s"], 1e-6), 1))
    return numbers


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
