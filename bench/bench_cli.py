"""Command-line start-up (issue 15): ``--help``, an argument error and a quiet run, each in a
fresh process, as ratios to ``python -c pass`` measured in the same run (median of 5), with
the lines each prints on stderr."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = str(ROOT / "assets" / "samples" / "circle.png")
CASES = {
    "help": ["--help"],
    "argument_error": ["predict", "--image", SAMPLE, "--top", "-3"],
    "predict_run": ["predict", "--image", SAMPLE, "--top", "1"],
}


def _timed(argv: list[str], runs: int) -> tuple[float, int]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the command quiets TensorFlow by itself
    times, lines = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env)
        times.append(time.perf_counter() - start)
        lines = len(out.stderr.splitlines())
    return statistics.median(times), lines


def run() -> dict:
    baseline, _ = _timed([sys.executable, "-c", "pass"], 5)
    numbers = {"python_pass_s": round(baseline, 3)}
    for name, args in CASES.items():
        seconds, lines = _timed([sys.executable, "-m", "viz_core", *args],
                                1 if name == "predict_run" else 5)
        numbers[f"{name}_s"] = round(seconds, 3)
        numbers[f"{name}_over_python"] = round(seconds / baseline, 1)
        numbers[f"{name}_stderr_lines"] = lines
    return numbers


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
