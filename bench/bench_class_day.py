"""A day of classes on one server: does memory level off, class after class?

The classroom of :mod:`bench.bench_classroom` (25 light students visiting every page, 5 heavy
ones running LIME at 1,000 samples or Compare), ``--classes`` times in a row on one
``streamlit run app.py``, each class with other seeds (other picks, other timings). After each
class the server is left alone until its sessions are dropped (the disconnected-session TTL)
and the workbench's idle trim has emptied the caches; then its resident memory is read.
Reported: memory after warm-up and after each class, what each class added, and whether each
of the last five added less than ``LIMIT_MB`` (20 MB), the goal of a class server that runs
all day. The idle trim's own reports say what the caches held each time.

The machine may be shared: the load average (1 min) after each class is reported too.
Bounded: 30 sessions at a time, one server, loopback only, nothing downloaded.
Run: ``python -m bench class_day`` (10 classes) or ``python bench/bench_class_day.py
--classes 10 [--think S]``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_classroom import (  # noqa: E402 - the same server, class and readings
    PORT,
    classroom,
    load,
    peak_mb,
    start_server,
    stop_server,
    warm_up,
)
from bench.bench_sessions import IDLE_TRIM_S, rss_mb, session_ttl, wait_healthy  # noqa: E402

CLASSES = 10
LAST = 5  # the classes judged: by then the process has reached its working size
LIMIT_MB = 20.0


def run(classes: int = CLASSES, think: float = 5.0, seed: int = 0, port: int = PORT + 1,
        arena_max: int | None = None) -> dict:
    cache_dir = tempfile.mkdtemp(prefix="bench_class_day_")
    report, jobs_log = Path(cache_dir) / "trim_report.jsonl", Path(cache_dir) / "jobs.log"
    server = start_server(port, cache_dir, jobs_log, report, arena_max)
    settle = session_ttl() + IDLE_TRIM_S + 40  # sessions dropped, then the idle trim
    out = {"classes": classes, "think_s": think, "arena_max": arena_max, "settle_s": settle}
    try:
        wait_healthy(port)
        pid = server.pid
        errors = asyncio.run(warm_up(port))
        time.sleep(settle)
        after = [rss_mb(pid)]
        out["warm_mb"] = round(after[0], 1)
        loads, seconds = [], []
        for n in range(classes):
            t0 = time.perf_counter()
            light, heavy = asyncio.run(classroom(port, heavy=True, think=think,
                                                 seed=seed + 1000 * (n + 1)))
            seconds.append(round(time.perf_counter() - t0, 1))
            errors += [e for s in light for e in s["errors"]]
            errors += [e for h in heavy for e in h["errors"]]
            loads.append(load())
            time.sleep(settle)
            after.append(rss_mb(pid))
            print(f"class {n + 1}: {after[-1]:.0f} MB (+{after[-1] - after[-2]:.0f})",
                  file=sys.stderr, flush=True)
        added = [round(b - a, 1) for a, b in zip(after, after[1:])]
        trims = [json.loads(line) for line in report.read_text().splitlines()] \
            if report.exists() else []
        out.update({
            "mb_after_each_class": [round(m, 1) for m in after[1:]],
            "mb_added_by_each_class": added,
            "last_classes_max_added_mb": max(added[-LAST:]) if added else None,
            "limit_mb": LIMIT_MB, "peak_mb": round(peak_mb(pid), 1),
            "class_s": seconds, "load_after_each_class": loads,
            "error_count": len(errors), "errors": errors[:5],
            "idle_trims": trims[-3:],
        })
        out["within_limits"] = bool(added and max(added[-LAST:]) < LIMIT_MB and not errors)
        return out
    finally:
        stop_server(server)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", type=int, default=CLASSES)
    parser.add_argument("--think", type=float, default=5.0,
                        help="seconds a student reads a page before the next link (about)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=PORT + 1)
    parser.add_argument("--arena-max", type=int, default=None,
                        help="the server's MALLOC_ARENA_MAX (default: glibc's own)")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.classes, args.think, args.seed, args.port, args.arena_max),
                     indent=2))


if __name__ == "__main__":
    main()
