"""Run the benchmarks and print their numbers as JSON: ``python -m bench [startup montage ...]``."""
from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    available = sorted(p.stem[len("bench_"):] for p in here.glob("bench_*.py"))
    wanted = argv or available
    unknown = [w for w in wanted if w not in available]
    if unknown:
        print(f"error: unknown benchmark(s) {unknown}; available: {available}", file=sys.stderr)
        return 2
    results = {}
    for name in wanted:
        start = time.perf_counter()
        module = importlib.import_module(f"bench.bench_{name}")
        results[name] = module.run()
        results[name]["bench_seconds"] = round(time.perf_counter() - start, 2)
        print(json.dumps({name: results[name]}), flush=True)
    out = here / "results.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    previous.update(results)
    out.write_text(json.dumps(previous, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
