"""A classroom on one server: do light pages stay quick while heavy jobs queue?

A real ``streamlit run app.py`` on a loopback port and 30 simulated students at once, each a
browser session speaking Streamlit's websocket protocol: 25 visit every page of the navigation
(one session each, following the page links with their own sample image); 5 open LIME (1,000
samples) or Compare on their own image and press the page's button (a trigger sent over the
websocket, as a click). Measured:

* light-page latency (link sent until the script finished), p95 under load against the same
  student's visits alone before the class arrives (limit: 3x). The same 25 students are also
  measured without the 5 heavy ones, which splits the slow-down into what 25 students cost
  each other and what the heavy jobs add;
* heavy jobs: all finish, and they start and finish in the order the server queued them (the
  job queue is first come, first served). The queue order is when each student's progress bar
  first appeared (right after the server queued the job), not when the button was pressed:
  under load a click's run reaches the queue seconds later, so press order is not queue order;
* errors: any exception element in any page's output;
* the server's resident memory once the sessions are gone (after the disconnected-session TTL
  and the workbench's idle trim) against before the class: within 100 MB. "Before" is taken
  after a warm-up that used every page, a LIME and a Compare run once (TensorFlow's traced
  functions, kernels and thread pools are made once per process and kept, as they should be).
  The idle trim's own report (``ui.idle.REPORT_ENV``) says what the caches held.

The machine may be shared: the load average (1 min) is reported at each phase.

Bounded: 30 sessions, one server, loopback only, nothing downloaded.
Run: ``python -m bench classroom`` or ``python bench/bench_classroom.py [--think S]``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_sessions import (  # noqa: E402 - the same server and memory readings
    IDLE_TRIM_S,
    IMAGES,
    RUN_TIMEOUT_S,
    rss_mb,
    session_ttl,
    start_server,
    stop_server,
    wait_healthy,
)

PORT = 8624
LIGHT_USERS = 25
PAGES = ("", "feature_maps", "filters", "heatmaps", "lime", "compare", "sanity", "dataset")
# (page, query, button label pattern, progress label): LIME at 1,000 samples and Compare's
# default methods, alternately
HEAVY = (("lime", "lime_samples=1000", r"^Run LIME$", "Running LIME"),
         ("compare", "", r"^Compare \d+ methods$", "Comparing methods")) * 2 + (
         ("lime", "lime_samples=1000", r"^Run LIME$", "Running LIME"),)
HEAVY_GAP_S = 1.0  # between two heavy students' clicks
LATENCY_LIMIT, MEMORY_LIMIT_MB = 3.0, 100
RERUN_FINISHED = 2  # ForwardMsg.script_finished: FINISHED_EARLY_FOR_RERUN
TRIM_REPORT_ENV = "CNN_VIZ_TRIM_REPORT"  # ui.idle.REPORT_ENV (not imported: no Streamlit here)


def load() -> float:
    return round(os.getloadavg()[0], 2)


class Session:
    """One browser tab: a websocket to the server, reruns sent and read to their end."""

    def __init__(self, port: int):
        self.port = port
        self.ws = None

    async def __aenter__(self) -> "Session":
        import websockets

        # No keepalive pings: a server busy computing for a class answers them late.
        self.ws = await websockets.connect(
            f"ws://127.0.0.1:{self.port}/_stcore/stream", subprotocols=["streamlit"],
            max_size=2**28, open_timeout=RUN_TIMEOUT_S, ping_interval=None)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()

    async def run(self, page: str, query: str, trigger: str | None = None) -> dict:
        """Rerun ``page`` (with a click on the button ``trigger``, a widget id) and read until
        the script finished for good. Returns the seconds, the exception messages shown, the
        buttons drawn (label -> id) and the progress texts seen with their arrival times."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = BackMsg()
        msg.rerun_script.query_string = query
        msg.rerun_script.page_name = page
        if trigger is not None:
            state = msg.rerun_script.widget_states.widgets.add()
            state.id, state.trigger_value = trigger, True
        start = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        out = {"errors": [], "buttons": {}, "progress": []}
        while True:
            forward = ForwardMsg()
            forward.ParseFromString(await asyncio.wait_for(self.ws.recv(), RUN_TIMEOUT_S))
            kind = forward.WhichOneof("type")
            if kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
                element = forward.delta.new_element
                what = element.WhichOneof("type")
                if what == "exception":
                    out["errors"].append(element.exception.message)
                elif what == "button":
                    out["buttons"][element.button.label] = element.button.id
                elif what == "progress":
                    out["progress"].append((time.perf_counter(), element.progress.text))
            if kind == "script_finished" and forward.script_finished != RERUN_FINISHED:
                out["seconds"] = time.perf_counter() - start
                return out


async def light_student(port: int, image: str, think: float, rng: random.Random) -> dict:
    """Every page in turn, by link, with ``image``; ``think`` seconds (about) between pages."""
    seconds, errors = {}, []
    async with Session(port) as tab:
        for page in PAGES:
            if think:
                await asyncio.sleep(rng.uniform(0.5, 1.5) * think)
            out = await tab.run(page, f"image={image}")
            seconds[page or "overview"] = out["seconds"]
            errors += out["errors"]
    return {"seconds": seconds, "errors": errors}


async def heavy_student(port: int, image: str, delay: float, kind: tuple) -> dict:
    """Open a heavy page, press its button, wait for the result; the times are the bench's."""
    page, extra, button, label = kind
    await asyncio.sleep(delay)
    query = f"image={image}" + (f"&{extra}" if extra else "")
    async with Session(port) as tab:
        first = await tab.run(page, query)
        trigger = next((i for name, i in first["buttons"].items() if re.match(button, name)),
                       None)
        pressed = time.perf_counter()
        if trigger is None:
            return {"page": page, "image": image, "pressed": pressed, "queued": pressed,
                    "started": pressed, "finished": pressed, "ran": False, "was_queued": False,
                    "errors": first["errors"] + [f"no button {button} on {page}: "
                                                 f"{sorted(first['buttons'])}"]}
        out = await tab.run(page, query, trigger)
    finished = time.perf_counter()
    mine = [(t, text) for t, text in out["progress"] if text.startswith(label)]
    queued = mine[0][0] if mine else finished  # the bar appears right after it is queued
    started = next((t for t, text in mine
                    if text.startswith(label + ": ") and ": queued," not in text), finished)
    return {"page": page, "image": image, "pressed": pressed, "queued": queued,
            "started": started, "finished": finished, "ran": bool(mine),
            "was_queued": any(": queued," in text for _, text in mine),
            "errors": first["errors"] + out["errors"]}


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


async def classroom(port: int, *, heavy: bool, think: float, seed: int) -> tuple[list, list]:
    rng = random.Random(seed)
    light = [light_student(port, IMAGES[i % len(IMAGES)], think, random.Random(rng.random()))
             for i in range(LIGHT_USERS)]
    # the heavy students' own images, none of them the warm-up's, so each job computes
    work = [heavy_student(port, IMAGES[1 + i], HEAVY_GAP_S * i, kind)
            for i, kind in enumerate(HEAVY)] if heavy else []
    results = await asyncio.gather(*light, *work)
    return list(results[:LIGHT_USERS]), list(results[LIGHT_USERS:])


async def warm_up(port: int) -> list[str]:
    """Every page once, then a LIME and a Compare run (on the class's first image)."""
    errors = []
    async with Session(port) as tab:
        for page in PAGES:
            errors += (await tab.run(page, "image=circle"))["errors"]
    for kind in HEAVY[:2]:
        errors += (await heavy_student(port, "circle", 0.0, kind))["errors"]
    return errors


async def alone(port: int) -> list[float]:
    """One student by themself: every page with three of the class's images."""
    seconds = []
    for image in IMAGES[:3]:
        out = await light_student(port, image, 0.0, random.Random(0))
        seconds += out["seconds"].values()
    return seconds


def in_order(heavy: list[dict], moment: str) -> bool:
    by_queue = sorted(heavy, key=lambda h: h["queued"])
    return all(a[moment] <= b[moment] for a, b in zip(by_queue, by_queue[1:]))


def per_page(light: list[dict]) -> dict:
    pages = light[0]["seconds"].keys() if light else ()
    return {p: round(p95([s["seconds"][p] for s in light]), 2) for p in pages}


def run(think: float = 0.0, seed: int = 0, port: int = PORT) -> dict:
    cache_dir = tempfile.mkdtemp(prefix="bench_classroom_")
    report = Path(cache_dir) / "trim_report.jsonl"
    os.environ[TRIM_REPORT_ENV] = str(report)  # read by the server started below
    server = start_server(port, cache_dir)
    os.environ.pop(TRIM_REPORT_ENV, None)
    out = {"think_s": think, "load_at_start": load()}
    try:
        wait_healthy(port)
        pid = server.pid
        warm_errors = asyncio.run(warm_up(port))
        out["warm_mb"] = round(rss_mb(pid), 1)
        quiet = asyncio.run(alone(port))
        out["load_alone"] = load()
        time.sleep(5)
        start_mb = rss_mb(pid)

        t0 = time.perf_counter()
        light_only, _ = asyncio.run(classroom(port, heavy=False, think=think, seed=seed))
        out["load_light_class"] = load()
        light, heavy = asyncio.run(classroom(port, heavy=True, think=think, seed=seed + 1))
        out["load_full_class"] = load()
        class_s = time.perf_counter() - t0

        alone_p95 = p95(quiet)
        only = [s for student in light_only for s in student["seconds"].values()]
        loaded = [s for student in light for s in student["seconds"].values()]
        errors = (warm_errors + [e for s in light_only + light for e in s["errors"]]
                  + [e for h in heavy for e in h["errors"]])
        started_in_order = in_order(heavy, "started")
        finished_in_order = in_order(heavy, "finished")
        by_queue = sorted(heavy, key=lambda h: h["queued"])

        settle = session_ttl() + IDLE_TRIM_S + 40
        time.sleep(settle)
        end_mb = rss_mb(pid)
        trims = [json.loads(line) for line in report.read_text().splitlines()] \
            if report.exists() else []
        ratio = p95(loaded) / alone_p95
        out.update({
            "sessions": LIGHT_USERS + len(heavy), "heavy": [h["page"] for h in by_queue],
            "light_p95_alone_s": round(alone_p95, 2),
            "light_p95_light_class_s": round(p95(only), 2),
            "light_p95_loaded_s": round(p95(loaded), 2),
            "light_p95_ratio": round(ratio, 2), "latency_limit": LATENCY_LIMIT,
            "light_p95_ratio_light_class": round(p95(only) / alone_p95, 2),
            "heavy_jobs_added": round(p95(loaded) / p95(only), 2),
            "p95_by_page_alone": {p: round(max(quiet[i::len(PAGES)]), 2)
                                  for i, p in enumerate(("overview",) + PAGES[1:])},
            "p95_by_page_light_class": per_page(light_only),
            "p95_by_page_loaded": per_page(light),
            "heavy_queue_wait_s": [round(h["started"] - h["queued"], 1) for h in by_queue],
            "heavy_run_s": [round(h["finished"] - h["started"], 1) for h in by_queue],
            "heavy_press_to_queue_s": [round(h["queued"] - h["pressed"], 1) for h in by_queue],
            "heavy_pressed_in_queue_order": in_order(heavy, "pressed"),
            "heavy_started_in_queue_order": started_in_order,
            "heavy_finished_in_queue_order": finished_in_order,
            "heavy_all_finished": all(h["ran"] for h in heavy),
            "heavy_waited_in_queue": [h["was_queued"] for h in by_queue],
            "errors": errors[:5], "error_count": len(errors),
            "start_mb": round(start_mb, 1), "end_mb": round(end_mb, 1),
            "end_minus_start_mb": round(end_mb - start_mb, 1),
            "memory_limit_mb": MEMORY_LIMIT_MB, "idle_trims": trims,
            "class_s": round(class_s, 1), "settle_s": settle,
        })
        out["within_limits"] = bool(
            ratio <= LATENCY_LIMIT and started_in_order and finished_in_order
            and out["heavy_all_finished"] and not errors
            and end_mb - start_mb <= MEMORY_LIMIT_MB)
        return out
    finally:
        stop_server(server)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--think", type=float, default=0.0,
                        help="seconds a student reads a page before the next (about; 0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=PORT)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.think, args.seed, args.port), indent=2))


if __name__ == "__main__":
    main()
