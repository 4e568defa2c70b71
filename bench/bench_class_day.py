"""A day of classes on one server: does memory level off, class after class?

The classroom of :mod:`bench.bench_classroom` (25 light students visiting every page, 5 heavy
ones running LIME at 1,000 samples or Compare), ``--classes`` times in a row on one
``streamlit run app.py``, each class with other seeds (other picks, other timings). After each
class the server is left alone until its sessions are dropped (the disconnected-session TTL)
and the workbench's idle trim has emptied the caches; then its resident memory is read, twice
(``AGAIN_S`` apart). A reading counts only after a trim that found no session and no
unfinished job (``readings_clean``): something still running would be the bench's noise.
Reported: memory after warm-up and after each class, what each class added (both readings),
and whether each of the last five added less than ``LIMIT_MB`` (20 MB), the goal of a class
server that runs all day. To tell what moved: each reading's anonymous memory by mapping
(malloc's heap, BLAS buffers, pyarrow's mimalloc, stacks...) and the idle trim's own report
(caches, Python objects, malloc's in-use and free bytes, TensorFlow functions, sessions).

The machine may be shared: the load average (1 min) after each class is reported too.
Bounded: 30 sessions at a time, one server, loopback only, nothing downloaded.
The server runs with the class server's environment (``viz_core.cli.app.SERVER_ENV``: two
malloc arenas...), as ``cnn-explorer app`` starts it.
Run: ``python -m bench class_day`` (10 classes) or ``python bench/bench_class_day.py
--classes 10 [--think S] [--arena-max N] [--env NAME=VALUE]``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
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
    job_events,
    load,
    peak_mb,
    start_server,
    stop_server,
    warm_up,
)
from bench.bench_sessions import IDLE_TRIM_S, session_ttl, wait_healthy  # noqa: E402
from viz_core.cli.app import SERVER_ENV  # noqa: E402 - served as `cnn-explorer app` serves it

CLASSES = 10
LAST = 5  # the classes judged: by then the process has reached its working size
LIMIT_MB = 20.0
AGAIN_S = 20  # a second reading this much later: memory at rest must not move


def smaps_mb(pid: int) -> dict[str, float]:
    """The server's resident memory by kind (MB): all, anonymous, pages of mapped files, the
    anonymous part by mapping (:func:`mapping_kind`) and how much of it is in transparent huge
    pages (``huge``: ``ui.server_memory`` turns them off)."""
    maps = []  # (start, size, name, anonymous MB)
    rss = huge = 0.0
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            head = MAPPING.match(line)
            if head:
                start = int(head[1], 16)
                maps.append([start, int(head[2], 16) - start, head[3], 0.0])
            elif line.startswith("Rss:"):
                rss += int(line.split()[1]) / 1024
            elif line.startswith("Anonymous:"):
                maps[-1][3] = int(line.split()[1]) / 1024
            elif line.startswith("AnonHugePages:"):
                huge += int(line.split()[1]) / 1024
    heaps = {start for start, size, name, _ in maps if is_arena_heap(start, size, name)}
    kinds: dict[str, float] = {}
    for start, size, name, mb in maps:
        if mb:
            kind = "heap" if start - start % ARENA_HEAP in heaps else mapping_kind(start, size, name)
            kinds[kind] = kinds.get(kind, 0.0) + mb
    anon = sum(kinds.values())
    return {"rss": round(rss, 1), "anonymous": round(anon, 1), "file": round(rss - anon, 1),
            "huge": round(huge, 1),
            "anonymous_by_mapping": {k: round(v, 1) for k, v in sorted(kinds.items())}}


MAPPING = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$")
ARENA_HEAP = 2**26  # glibc's arenas other than the main one take 64 MB-aligned heaps


def is_arena_heap(start: int, size: int, name: str) -> bool:
    """Whether a mapping is where one of malloc's other arenas' heaps starts. The rest of that
    heap may be other mappings (its pages' flags differ: numpy's ``madvise`` on a big array
    splits it), all within the heap's 64 MB."""
    return not name and start % ARENA_HEAP == 0 and size <= ARENA_HEAP


def mapping_kind(start: int, size: int, name: str) -> str:
    """Who made an anonymous mapping, told by its name, place or size (Linux x86-64, glibc):
    ``heap`` (malloc's main heap and its other arenas' heaps: :func:`is_arena_heap`), ``blas``
    (OpenBLAS's 128 MB buffer per thread), ``mimalloc`` (pyarrow's allocator reserves 1 GB at a
    time), ``stack`` (8 MB thread stacks), ``files`` (private pages of mapped libraries),
    ``other`` (Python's object arenas and TensorFlow's own)."""
    mb = size / 2**20
    if name == "[heap]" or is_arena_heap(start, size, name):
        return "heap"
    if name.startswith("[stack"):
        return "stack"
    if name:
        return "files"
    if 127.9 < mb <= 128.1:
        return "blas"
    if mb >= 1024:
        return "mimalloc"
    if 7.9 < mb <= 8.1:
        return "stack"
    return "other"


def trims_since(report: Path, since: float) -> list[dict]:
    """The idle trim's reports (``ui.idle``) written after ``since`` (epoch seconds)."""
    lines = report.read_text().splitlines() if report.exists() else []
    return [t for t in map(json.loads, lines) if t["time"] > since]


def settled(pid: int, report: Path, jobs_log: Path, since: float, wait: float) -> dict:
    """Wait ``wait`` s, then until the idle trim has run after ``since`` (up to a minute
    more); read the memory once now and once more :data:`AGAIN_S` later.

    The reading counts only after a trim that found no session left and no job unfinished
    (``clean``): anything still running would be the bench's noise, not growth."""
    time.sleep(wait)
    deadline = time.monotonic() + 60
    while not trims_since(report, since) and time.monotonic() < deadline:
        time.sleep(2)
    trims = trims_since(report, since)
    trim = trims[0] if trims else None
    jobs = job_events(jobs_log, since - 600)
    unfinished = [n for n, j in jobs.items() if trim and j.get("ended", float("inf")) > trim["time"]]
    clean = bool(trim and trim["before"].get("sessions") in (0, None) and not unfinished)
    first = smaps_mb(pid)
    time.sleep(AGAIN_S)
    return {"mb": first["rss"], "again_mb": smaps_mb(pid)["rss"], "smaps_mb": first,
            "clean": clean, "trims": len(trims), "unfinished_jobs": unfinished,
            "trim": trim and {"after": trim["after"], "sessions_before":
                              trim["before"].get("sessions"), "rss_before": trim["before"]["rss_mb"]}}


def run(classes: int = CLASSES, think: float = 5.0, seed: int = 0, port: int = PORT + 1,
        env: dict | None = None) -> dict:
    """``env``: the server's environment variables (default: :data:`SERVER_ENV`, the class
    server's configuration as ``cnn-explorer app`` sets it)."""
    env = dict(SERVER_ENV if env is None else env)
    cache_dir = tempfile.mkdtemp(prefix="bench_class_day_")
    report, jobs_log = Path(cache_dir) / "trim_report.jsonl", Path(cache_dir) / "jobs.log"
    server = start_server(port, cache_dir, jobs_log, report, None, env)
    settle = session_ttl() + IDLE_TRIM_S + 20  # sessions dropped, then the idle trim
    arena_max = env.get("MALLOC_ARENA_MAX")
    out = {"classes": classes, "think_s": think, "env": env,
           "arena_max": int(arena_max) if arena_max else None, "settle_s": settle}
    try:
        wait_healthy(port)
        pid = server.pid
        t0 = time.time()
        errors = asyncio.run(warm_up(port))
        readings = [settled(pid, report, jobs_log, t0, settle)]
        out["warm_mb"] = readings[0]["mb"]
        loads, seconds = [], []
        for n in range(classes):
            t0, start = time.time(), time.perf_counter()
            light, heavy = asyncio.run(classroom(port, heavy=True, think=think,
                                                 seed=seed + 1000 * (n + 1)))
            seconds.append(round(time.perf_counter() - start, 1))
            errors += [e for s in light for e in s["errors"]]
            errors += [e for h in heavy for e in h["errors"]]
            loads.append(load())
            readings.append(settled(pid, report, jobs_log, time.time(), settle))
            r = readings[-1]
            print(f"class {n + 1}: {r['mb']:.0f} MB (+{r['mb'] - readings[-2]['mb']:.0f}) "
                  f"again {r['again_mb']:.0f}, {r['smaps_mb']}, malloc "
                  f"{r['trim'] and r['trim']['after'].get('malloc_mb')}, clean {r['clean']}",
                  file=sys.stderr, flush=True)
        after = [r["mb"] for r in readings]
        added = [round(b - a, 1) for a, b in zip(after, after[1:])]
        again = [r["again_mb"] for r in readings]
        added_again = [round(b - a, 1) for a, b in zip(again, again[1:])]
        out.update({
            "mb_after_each_class": after[1:],
            "mb_added_by_each_class": added,
            "mb_again_after_each_class": again[1:],  # the same reading AGAIN_S later
            "mb_again_added_by_each_class": added_again,
            "last_classes_max_added_mb": max(added[-LAST:]) if added else None,
            "last_classes_max_added_again_mb": max(added_again[-LAST:]) if added else None,
            "limit_mb": LIMIT_MB, "peak_mb": round(peak_mb(pid), 1),
            "class_s": seconds, "load_after_each_class": loads,
            "readings_clean": all(r["clean"] for r in readings),
            "error_count": len(errors), "errors": errors[:5],
            "readings": readings,
        })
        out["within_limits"] = bool(
            added and max(added[-LAST:]) < LIMIT_MB and max(added_again[-LAST:]) < LIMIT_MB
            and out["readings_clean"] and not errors)
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
                        help="the server's MALLOC_ARENA_MAX (default: as 'cnn-explorer app' "
                        f"sets it, {SERVER_ENV.get('MALLOC_ARENA_MAX')}; 0: glibc's own)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="more environment for the server (e.g. MALLOC_MMAP_THRESHOLD_=...)")
    args = parser.parse_args(argv)
    env = {**SERVER_ENV, **dict(item.split("=", 1) for item in args.env)}
    if args.arena_max is not None:
        env.pop("MALLOC_ARENA_MAX", None)
        if args.arena_max:
            env["MALLOC_ARENA_MAX"] = str(args.arena_max)
    print(json.dumps(run(args.classes, args.think, args.seed, args.port, env), indent=2))


if __name__ == "__main__":
    main()
