"""Server memory after a burst of sessions: does it come back once they close?

A real ``streamlit run app.py`` on a loopback port; ten simulated users at once, each opening
four pages by link (``?image=<sample>``: overview, feature maps, class heatmaps, LIME), as a
browser does over Streamlit's websocket (one connection per page load, closed when the run
finishes). The server's resident memory (``/proc/<pid>/status`` VmRSS) is read at the start
(just after one warm-up visit, so TensorFlow and the demo model are loaded), at the peak of the
burst, and every few seconds after the last session closed, until the disconnected sessions'
time to live (``server.disconnectedSessionTTL`` of ``.streamlit/config.toml``) and the
workbench's idle trim (``ui.idle``) have passed. The number that matters: the end minus the
start, which must stay under 200 MB.

Bounded: ten users, four pages each, one server; loopback only, nothing downloaded.
Run: ``python -m bench sessions`` or ``python bench/bench_sessions.py``.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USERS = 10
PAGES = ("", "feature_maps", "heatmaps", "lime")  # "" is the default page (overview)
IMAGES = ("circle", "square", "triangle", "star", "circle_and_star", "square_and_triangle",
          "all_four_shapes", "plain_square", "triangle_heavy_clutter", "circle")
LIMIT_MB = 200
STREAMLIT_DEFAULT_TTL_S = 120
IDLE_TRIM_S = 60  # ui.idle.IDLE_SECONDS (not imported: that would import Streamlit here)
RUN_TIMEOUT_S = 600


def session_ttl() -> int:
    """The app's ``server.disconnectedSessionTTL`` (seconds), Streamlit's default if unset."""
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    return int(config.get("server", {}).get("disconnectedSessionTTL", STREAMLIT_DEFAULT_TTL_S))


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, cache_dir: str) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CNN_VIZ_CACHE": cache_dir,
           "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=open(Path(cache_dir) / "server.log", "wb"))  # noqa: SIM115 - the server's


def stop_server(server: subprocess.Popen) -> None:
    """Stop a server started by :func:`start_server`; a bench must not leave it running."""
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


def wait_healthy(port: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the server on port {port} did not start in {timeout:.0f} s")


async def visit(port: int, page: str, image: str) -> float:
    """One page load: connect, run the script with the link's query, wait for the end."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    start = time.perf_counter()
    url = f"ws://127.0.0.1:{port}/_stcore/stream"
    # No keepalive pings: a server busy computing for ten users answers them late.
    async with websockets.connect(url, subprotocols=["streamlit"], max_size=2**28,
                                  ping_interval=None) as ws:
        msg = BackMsg()
        msg.rerun_script.query_string = f"image={image}"
        msg.rerun_script.page_name = page
        await ws.send(msg.SerializeToString())
        while True:
            forward = ForwardMsg()
            forward.ParseFromString(await asyncio.wait_for(ws.recv(), RUN_TIMEOUT_S))
            if forward.WhichOneof("type") == "script_finished":
                break
    return time.perf_counter() - start


async def user(port: int, image: str) -> list[float]:
    return [await visit(port, page, image) for page in PAGES]


async def burst(port: int, pid: int, samples: list) -> list[list[float]]:
    async def watch():
        while True:
            samples.append(("burst", rss_mb(pid)))
            await asyncio.sleep(1.0)

    watcher = asyncio.create_task(watch())
    try:
        return await asyncio.gather(*(user(port, IMAGES[i % len(IMAGES)]) for i in range(USERS)))
    finally:
        watcher.cancel()


def run() -> dict:
    cache_dir = tempfile.mkdtemp(prefix="bench_sessions_")
    port = free_port()
    server = start_server(port, cache_dir)
    try:
        wait_healthy(port)
        pid = server.pid
        asyncio.run(visit(port, "", "circle"))  # warm-up: imports, demo model, first pictures
        time.sleep(5)
        start_mb = rss_mb(pid)
        ttl = session_ttl()
        settle = ttl + IDLE_TRIM_S + 30
        samples: list = []
        t0 = time.perf_counter()
        seconds = asyncio.run(burst(port, pid, samples))
        burst_s = time.perf_counter() - t0
        closed_mb = rss_mb(pid)
        after = []
        for _ in range(int(settle / 5)):
            time.sleep(5)
            after.append(round(rss_mb(pid), 1))
        end_mb = after[-1]
        return {
            "users": USERS, "pages_per_user": len(PAGES),
            "session_ttl_s": ttl, "settle_s": settle,
            "start_mb": round(start_mb, 1),
            "peak_mb": round(max(mb for _, mb in samples), 1),
            "at_close_mb": round(closed_mb, 1),
            "after_close_mb_every_5s": after,
            "end_mb": end_mb,
            "end_minus_start_mb": round(end_mb - start_mb, 1),
            "limit_mb": LIMIT_MB,
            "within_limit": bool(end_mb - start_mb < LIMIT_MB),
            "burst_s": round(burst_s, 1),
            "slowest_page_s": round(max(max(s) for s in seconds), 1),
        }
    finally:
        stop_server(server)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
