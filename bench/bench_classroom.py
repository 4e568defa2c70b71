"""A classroom on one server: do light pages stay quick while heavy jobs queue?

A real ``streamlit run app.py`` on a loopback port and 30 simulated students at once, each
speaking Streamlit's websocket protocol as a browser does (:mod:`bench.bench_sessions`): 25 visit
every page by link with their own sample image; 5 open LIME with 1,000 samples and press
**Run LIME** (a trigger sent over the websocket, as a click), a second apart. Measured:

* light-page latency (link sent until the script finished), p95 under load against the same
  pages visited by one student alone before the class arrives: must stay at most 3x;
* heavy jobs: all finish, and they finish in the order their buttons were pressed (the job queue
  is first come, first served);
* errors: any exception element in any page's output;
* the server's resident memory just before the class and once the sessions are gone (after the
  disconnected-session TTL and the workbench's idle trim): within 100 MB.

Bounded: 30 sessions, one server, loopback only, nothing downloaded.
Run: ``python -m bench classroom`` or ``python bench/bench_classroom.py``.
"""
from __future__ import annotations

import asyncio
import json
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
    free_port,
    rss_mb,
    session_ttl,
    start_server,
    stop_server,
    wait_healthy,
)

LIGHT_USERS, HEAVY_USERS = 25, 5
LIGHT_PAGES = ("", "feature_maps", "heatmaps", "lime", "compare", "sanity")
HEAVY_QUERY = "lime_samples=1000"
LATENCY_LIMIT, MEMORY_LIMIT_MB = 3.0, 100
RERUN_FINISHED = 2  # ForwardMsg.script_finished: FINISHED_EARLY_FOR_RERUN


async def _run(ws, msg) -> tuple[list[str], dict[str, str]]:
    """Send one rerun request and read until the script finished for good (not for a rerun).
    Returns the exception messages shown and the buttons drawn (label -> widget id)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    await ws.send(msg.SerializeToString())
    errors: list[str] = []
    buttons: dict[str, str] = {}
    while True:
        forward = ForwardMsg()
        forward.ParseFromString(await asyncio.wait_for(ws.recv(), RUN_TIMEOUT_S))
        kind = forward.WhichOneof("type")
        if kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
            element = forward.delta.new_element
            if element.WhichOneof("type") == "exception":
                errors.append(element.exception.message)
            if element.WhichOneof("type") == "button":
                buttons[element.button.label] = element.button.id
        if kind == "script_finished" and forward.script_finished != RERUN_FINISHED:
            return errors, buttons


def _rerun(page: str, query: str):
    from streamlit.proto.BackMsg_pb2 import BackMsg

    msg = BackMsg()
    msg.rerun_script.query_string = query
    msg.rerun_script.page_name = page
    return msg


async def light_visit(port: int, page: str, image: str) -> tuple[float, list[str]]:
    import websockets

    start = time.perf_counter()
    async with websockets.connect(f"ws://127.0.0.1:{port}/_stcore/stream",
                                  subprotocols=["streamlit"], max_size=2**28,
                                  open_timeout=RUN_TIMEOUT_S,
                                  ping_interval=None) as ws:
        errors, _ = await _run(ws, _rerun(page, f"image={image}"))
    return time.perf_counter() - start, errors


async def heavy_student(port: int, image: str, delay: float) -> dict:
    """Open LIME, press Run LIME, wait for the explanation; the times are the bench's."""
    import websockets

    await asyncio.sleep(delay)
    query = f"image={image}&{HEAVY_QUERY}"
    async with websockets.connect(f"ws://127.0.0.1:{port}/_stcore/stream",
                                  subprotocols=["streamlit"], max_size=2**28,
                                  open_timeout=RUN_TIMEOUT_S,
                                  ping_interval=None) as ws:
        errors, buttons = await _run(ws, _rerun("lime", query))
        click = _rerun("lime", query)
        state = click.rerun_script.widget_states.widgets.add()
        state.id = buttons["Run LIME"]
        state.trigger_value = True
        pressed = time.perf_counter()
        more, _ = await _run(ws, click)
        return {"image": image, "pressed": pressed, "finished": time.perf_counter(),
                "errors": errors + more}


async def light_student(port: int, image: str) -> tuple[list[float], list[str]]:
    seconds, errors = [], []
    for page in LIGHT_PAGES:
        s, e = await light_visit(port, page, image)
        seconds.append(s)
        errors += e
    return seconds, errors


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


async def classroom(port: int) -> tuple[list, list]:
    light = [light_student(port, IMAGES[i % len(IMAGES)]) for i in range(LIGHT_USERS)]
    heavy = [heavy_student(port, IMAGES[i % len(IMAGES)], delay=1.0 * i)
             for i in range(HEAVY_USERS)]
    results = await asyncio.gather(*light, *heavy)
    return list(results[:LIGHT_USERS]), list(results[LIGHT_USERS:])


def run() -> dict:
    cache_dir = tempfile.mkdtemp(prefix="bench_classroom_")
    port = free_port()
    server = start_server(port, cache_dir)
    try:
        wait_healthy(port)
        pid = server.pid
        for page in LIGHT_PAGES:  # warm-up: imports, the demo model, compiled steps
            asyncio.run(light_visit(port, page, "circle"))
        # One student alone, the same pages and images as the class will use.
        alone = [asyncio.run(light_visit(port, page, image))[0]
                 for image in IMAGES[:3] for page in LIGHT_PAGES]
        time.sleep(5)
        start_mb = rss_mb(pid)
        t0 = time.perf_counter()
        light, heavy = asyncio.run(classroom(port))
        class_s = time.perf_counter() - t0
        loaded = [s for seconds, _ in light for s in seconds]
        errors = [e for _, errs in light for e in errs] + [e for h in heavy for e in h["errors"]]
        by_press = sorted(heavy, key=lambda h: h["pressed"])
        in_order = all(a["finished"] <= b["finished"] for a, b in zip(by_press, by_press[1:]))
        settle = session_ttl() + IDLE_TRIM_S + 30
        time.sleep(settle)
        end_mb = rss_mb(pid)
        ratio = p95(loaded) / p95(alone)
        return {
            "sessions": LIGHT_USERS + HEAVY_USERS, "heavy_sessions": HEAVY_USERS,
            "light_p95_alone_s": round(p95(alone), 2),
            "light_p95_loaded_s": round(p95(loaded), 2),
            "light_p95_ratio": round(ratio, 2), "latency_limit": LATENCY_LIMIT,
            "heavy_wait_then_run_s": [round(h["finished"] - h["pressed"], 1) for h in by_press],
            "heavy_in_queue_order": in_order,
            "errors": errors[:5], "error_count": len(errors),
            "start_mb": round(start_mb, 1), "end_mb": round(end_mb, 1),
            "end_minus_start_mb": round(end_mb - start_mb, 1),
            "memory_limit_mb": MEMORY_LIMIT_MB,
            "within_limits": bool(ratio <= LATENCY_LIMIT and in_order and not errors
                                  and end_mb - start_mb <= MEMORY_LIMIT_MB),
            "class_s": round(class_s, 1), "settle_s": settle,
        }
    finally:
        stop_server(server)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
