"""A classroom on one server: do light pages stay quick while heavy jobs queue?

A real ``streamlit run app.py`` on a loopback port and 30 simulated students at once, each a
browser session speaking Streamlit's websocket protocol: 25 visit every page of the navigation
(one session each, following the page links with their own sample image); 5 open LIME (1,000
samples) or Compare on their own image and press the page's button (a trigger sent over the
websocket, as a click). Measured:

* light-page latency (link sent until the script finished), p95 under load against the same
  student's visits alone before the class arrives (limit: 3x). Students read each page for
  about ``--think`` seconds (default 5, uniform 0.5x-1.5x) before the next link; ``--think 0``
  sends every link at once. The same 25 students are also measured without the 5 heavy ones
  first, which splits the slow-down into what 25 students cost each other and what the heavy
  jobs add;
* heavy jobs: all finish, and they start (and, with one worker, finish) in the order the server
  queued them. The order is read from the server's own job log (``viz_core.runtime.jobs`` logs each job
  queued, started and ended, by number), not from the clients' clocks: under load a click's run
  reaches the queue tens of seconds after the press, and a client busy reading 30 sockets
  timestamps late, so neither press order nor arrival times are the queue's order;
* errors: any exception element in any page's output;
* the server's resident memory once the class's sessions are gone (after the disconnected-session
  TTL and the workbench's idle trim) against the same reading after an earlier full class (the
  same 30 students with other seeds): within 100 MB. The "before" is taken once a whole class,
  heavy jobs included, has come and gone, so what a process makes once and keeps (TensorFlow's
  traced functions, kernels and thread pools; the allocator's arenas at a class's peak) is in
  both; what grows with each class is the difference. What the first full class kept over the
  light-only class is reported too (``first_class_kept_mb``): measured, 306 MB after the first
  full class, then 74 and 17 MB after the second and third, so it is the process reaching its
  working size, not a leak (141-160 MB since the post-run collection became periodic). The idle trim's own report (``ui.idle.REPORT_ENV``) says what the
  caches held; the peak (VmHWM) is reported too.

The machine may be shared: the load average (1 min) is reported at each phase.

With ``--quiz`` the class plays the Class quiz instead: a teacher session draws the questions
and starts a quiz; one student plays it alone three times (the baseline); then 30 students at
once open the Overview and the quiz page, join with the code and answer every question (a
random choice, about ``--think`` seconds apart) while the teacher's page reruns every 2 s
(a whole rerun: more than its results fragment costs). Measured: the p95 of every student page
run (Overview, quiz page, join, each answer) against the same runs alone (limit: 3x), and
whether the teacher's last view counts every student and every answer.

Bounded: 30 sessions, one server, loopback only, nothing downloaded.
Run: ``python -m bench classroom`` or ``python bench/bench_classroom.py [--think S] [--quiz]``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
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
    stop_server,
    wait_healthy,
)

PORT = 8624
LIGHT_USERS = 25
PAGES = ("", "feature_maps", "filters", "heatmaps", "lime", "compare", "sanity", "dataset")
# (page, query, button label pattern, progress label): LIME at 1,000 samples and Compare's
# default methods at 50 curve steps, alternately. The light students' visits make Compare's
# default view themselves (pictures first: quick work starts on arrival), so the heavy ones ask
# for finer curves, work no one else asks for.
HEAVY = (("lime", "lime_samples=1000", r"^Run LIME$", "Running LIME"),
         ("compare", "cmp_steps=50", r"^Compare \d+ methods$", "Comparing methods")) * 2 + (
         ("lime", "lime_samples=1000", r"^Run LIME$", "Running LIME"),)
HEAVY_GAP_S = 1.0  # between two heavy students' clicks
LATENCY_LIMIT, MEMORY_LIMIT_MB = 3.0, 100
RERUN_FINISHED = 2  # ForwardMsg.script_finished: FINISHED_EARLY_FOR_RERUN
TRIM_REPORT_ENV = "CNN_VIZ_TRIM_REPORT"  # ui.idle.REPORT_ENV (not imported: no Streamlit here)


# `streamlit run`, with the job queue's events (viz_core.runtime.jobs logs one INFO line per job queued,
# started and ended) written to a file: the server's own order, not the clients' clocks.
SERVER = ("import logging, sys; handler = logging.FileHandler(sys.argv.pop(1)); "
          "handler.setFormatter(logging.Formatter('%(created).3f %(message)s')); "
          "log = logging.getLogger('viz_core.runtime.jobs'); log.addHandler(handler); "
          "log.setLevel(logging.INFO); from streamlit.web.cli import main; "
          "main(prog_name='streamlit')")
JOB_LINE = re.compile(r"^(?P<t>[\d.]+) job (?P<n>\d+) (?P<event>queued|started|done|failed|"
                      r"cancelled) \((?P<label>[^)]*)\)")


def start_server(port: int, cache_dir: str, jobs_log: Path, trim_report: Path,
                 arena_max: int | None = None, extra_env: dict | None = None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CNN_VIZ_CACHE": cache_dir,
           "PYTHONPATH": str(ROOT), TRIM_REPORT_ENV: str(trim_report), **(extra_env or {})}
    if arena_max:  # glibc's malloc arenas (default 8 per core): fewer, less fragmentation
        env["MALLOC_ARENA_MAX"] = str(arena_max)
    return subprocess.Popen(
        [sys.executable, "-c", SERVER, str(jobs_log), "run", "app.py", "--server.port",
         str(port), "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=open(Path(cache_dir) / "server.log", "wb"))  # noqa: SIM115 - the server's


def job_events(jobs_log: Path, since: float) -> dict[int, dict]:
    """The queue's jobs from ``since`` (epoch seconds): number -> event -> time, label."""
    jobs: dict[int, dict] = {}
    for line in jobs_log.read_text().splitlines() if jobs_log.exists() else ():
        m = JOB_LINE.match(line)
        if m and float(m["t"]) >= since:
            job = jobs.setdefault(int(m["n"]), {"label": m["label"]})
            job["ended" if m["event"] not in ("queued", "started") else m["event"]] = \
                float(m["t"])
            if m["event"] not in ("queued", "started"):
                job["state"] = m["event"]
    return jobs


def peak_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


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

    async def run(self, page: str, query: str, trigger: str | None = None,
                  states: tuple = (), fragment: str = "") -> dict:
        """Rerun ``page`` (with a click on the button ``trigger``, a widget id, and the widget
        values ``states``: ``(id, field, value)`` as ``("...", "string_value", "Teacher")``) and read
        until the script finished for good. Returns the seconds, the exception messages shown,
        the buttons drawn (label -> id), the progress texts seen with their arrival times, the
        radios and text inputs drawn (``widgets``: (kind, label, id, options, fragment id),
        in page order), the markdown texts and the metrics (label -> value). With
        ``fragment`` only that fragment runs, as when a widget inside it changes."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = BackMsg()
        msg.rerun_script.query_string = query
        msg.rerun_script.page_name = page
        msg.rerun_script.fragment_id = fragment
        if trigger is not None:
            state = msg.rerun_script.widget_states.widgets.add()
            state.id, state.trigger_value = trigger, True
        for widget, field, value in states:
            state = msg.rerun_script.widget_states.widgets.add()
            state.id = widget
            setattr(state, field, value)
        start = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        out = {"errors": [], "buttons": {}, "progress": [], "widgets": [], "markdown": [],
               "metrics": {}, "auto_rerun": None, "full": False}
        while True:
            forward = ForwardMsg()
            forward.ParseFromString(await asyncio.wait_for(self.ws.recv(), RUN_TIMEOUT_S))
            kind = forward.WhichOneof("type")
            if kind == "auto_rerun":  # a fragment the browser reruns every interval
                out["auto_rerun"] = (forward.auto_rerun.interval, forward.auto_rerun.fragment_id)
            if kind == "delta" and not forward.delta.fragment_id:
                out["full"] = True  # the whole page ran, not only a fragment
            if kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
                element = forward.delta.new_element
                what = element.WhichOneof("type")
                if what == "exception":
                    out["errors"].append(element.exception.message)
                elif what == "button":
                    out["buttons"][element.button.label] = element.button.id
                elif what == "progress":
                    out["progress"].append((time.perf_counter(), element.progress.text))
                elif what in ("radio", "text_input"):
                    widget = getattr(element, what)
                    out["widgets"].append((what, widget.label, widget.id,
                                           tuple(getattr(widget, "options", ())),
                                           forward.delta.fragment_id))
                elif what == "markdown":
                    out["markdown"].append(element.markdown.body)
                elif what == "metric":
                    out["metrics"][element.metric.label] = element.metric.body
            if kind == "script_finished" and forward.script_finished != RERUN_FINISHED:
                out["seconds"] = time.perf_counter() - start
                return out

    async def follow(self, page: str, query: str, trigger: str | None = None,
                     out: dict | None = None) -> dict:
        """Press ``trigger`` (or, with ``out``, a page run that started a job on its own) and
        follow the job as a browser does: its bar is a fragment the page asks to rerun every
        interval (``ui.feedback``), until the page is drawn whole again without it (the job
        ended). :meth:`run`'s output, progress and errors gathered."""
        given = out is not None  # its progress and errors are the caller's already
        if out is None:
            out = await self.run(page, query, trigger)
        progress = [] if given else list(out["progress"])
        errors, following = [] if given else list(out["errors"]), None
        while out["auto_rerun"] is not None or (following is not None and not out["full"]):
            following = out["auto_rerun"] or following
            await asyncio.sleep(following[0])
            out = await self.run(page, query, fragment=following[1])
            progress += out["progress"]
            errors += out["errors"]
            if out["full"] and out["auto_rerun"] is None:
                break
        return {**out, "progress": progress, "errors": errors}


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
    """Open a heavy page, press its button (or follow the work it starts on its own, as
    Compare does on a model where that is quick), wait for the result; the times are the
    bench's."""
    page, extra, button, label = kind
    await asyncio.sleep(delay)
    query = f"image={image}" + (f"&{extra}" if extra else "")
    async with Session(port) as tab:
        out = await tab.run(page, query)
        pressed = time.perf_counter()
        progress, errors, trigger = list(out["progress"]), list(out["errors"]), None
        followed = False  # the page ran work of its own (its bar's fragment reruns are not
        # always parsed for progress texts, so having followed it is what counts)
        for _ in range(4):  # a page may run its own jobs on arrival (Compare: maps, then curves)
            trigger = next((i for name, i in out["buttons"].items() if re.match(button, name)),
                           None)
            if trigger is None and out["auto_rerun"] is None:
                break  # nothing runs, nothing to press: the page drew what it had
            if trigger is not None:
                pressed = time.perf_counter()
            followed = followed or trigger is None
            out = await tab.follow(page, query, trigger,
                                   out=None if trigger is not None else out)
            progress += out["progress"]
            errors += out["errors"]
            if trigger is not None:
                break
        if not followed and not any(text.startswith(label) for _, text in progress):
            return {"page": page, "image": image, "pressed": pressed, "queued": pressed,
                    "started": pressed, "finished": pressed, "ran": False, "was_queued": False,
                    "errors": errors + [f"no button {button} on {page} and no job of its own: "
                                        f"{sorted(out['buttons'])}"]}
        out = {**out, "progress": progress, "errors": errors}
    finished = time.perf_counter()
    mine = [(t, text) for t, text in out["progress"] if text.startswith(label)]
    queued = mine[0][0] if mine else finished  # the bar appears right after it is queued
    started = next((t for t, text in mine
                    if text.startswith(label + ": ") and ": queued," not in text), finished)
    return {"page": page, "image": image, "pressed": pressed, "queued": queued,
            "started": started, "finished": finished, "ran": bool(mine) or followed,
            "was_queued": any(": queued," in text for _, text in mine),
            "errors": out["errors"]}


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
    """Whether ``moment`` (client clock) follows the order the students' bars appeared."""
    by_queue = sorted(heavy, key=lambda h: h["queued"])
    return all(a[moment] <= b[moment] for a, b in zip(by_queue, by_queue[1:]))


def per_page(light: list[dict]) -> dict:
    pages = light[0]["seconds"].keys() if light else ()
    return {p: round(p95([s["seconds"][p] for s in light]), 2) for p in pages}


def run(think: float = 5.0, seed: int = 0, port: int = PORT,
        arena_max: int | None = None) -> dict:
    from viz_core.runtime.jobs import default_workers  # the server's worker count (same machine)

    cache_dir = tempfile.mkdtemp(prefix="bench_classroom_")
    report, jobs_log = Path(cache_dir) / "trim_report.jsonl", Path(cache_dir) / "jobs.log"
    server = start_server(port, cache_dir, jobs_log, report, arena_max)
    out = {"think_s": think, "arena_max": arena_max, "workers": default_workers(),
           "load_at_start": load()}
    settle = session_ttl() + IDLE_TRIM_S + 40  # sessions dropped, then the idle trim
    try:
        wait_healthy(port)
        pid = server.pid
        warm_errors = asyncio.run(warm_up(port))
        quiet = asyncio.run(alone(port))
        out["load_alone"] = load()
        out["warm_mb"] = round(rss_mb(pid), 1)

        # A first class of light students only: what 25 students cost each other.
        light_only, _ = asyncio.run(classroom(port, heavy=False, think=think, seed=seed))
        out["load_light_class"] = load()
        time.sleep(settle)
        light_mb = rss_mb(pid)
        # A first full class: the process reaches its working size. Once it has gone, the
        # "before" of the measured class.
        asyncio.run(classroom(port, heavy=True, think=think, seed=seed + 100))
        time.sleep(settle)
        start_mb = rss_mb(pid)
        out["first_class_kept_mb"] = round(start_mb - light_mb, 1)

        since = time.time()
        t0 = time.perf_counter()
        light, heavy = asyncio.run(classroom(port, heavy=True, think=think, seed=seed + 1))
        out["load_full_class"] = load()
        class_s = time.perf_counter() - t0
        jobs = job_events(jobs_log, since)
        out["peak_mb"] = round(peak_mb(pid), 1)

        alone_p95 = p95(quiet)
        only = [s for student in light_only for s in student["seconds"].values()]
        loaded = [s for student in light for s in student["seconds"].values()]
        errors = (warm_errors + [e for s in light_only + light for e in s["errors"]]
                  + [e for h in heavy for e in h["errors"]])
        numbers = sorted(jobs)
        started = sorted(numbers, key=lambda n: jobs[n].get("started", float("inf")))
        ended = sorted(numbers, key=lambda n: jobs[n].get("ended", float("inf")))
        started_in_order = started == numbers
        # With one worker, first come first served also means first finished; with more,
        # jobs of different lengths overlap and only the start order is the queue's.
        finished_in_order = ended == numbers if out["workers"] == 1 else None
        all_done = len(jobs) >= len(heavy) and all(j.get("state") == "done"
                                                   for j in jobs.values())

        time.sleep(settle)
        end_mb = rss_mb(pid)
        trims = [json.loads(line) for line in report.read_text().splitlines()] \
            if report.exists() else []
        ratio = p95(loaded) / alone_p95
        out.update({
            "sessions": LIGHT_USERS + len(heavy),
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
            "jobs": [(n, jobs[n]["label"], jobs[n].get("state"),
                      round(jobs[n].get("started", 0) - jobs[n].get("queued", 0), 1),
                      round(jobs[n].get("ended", 0) - jobs[n].get("started", 0), 1))
                     for n in numbers],  # number, label, state, wait s, run s
            "heavy_press_to_queue_s": [round(h["queued"] - h["pressed"], 1) for h in heavy],
            "heavy_pressed_in_queue_order": in_order(heavy, "pressed"),
            "heavy_started_in_queue_order": started_in_order,
            "heavy_finished_in_queue_order": finished_in_order,
            "heavy_all_finished": all_done and all(h["ran"] for h in heavy),
            "errors": errors[:5], "error_count": len(errors),
            "start_mb": round(start_mb, 1), "end_mb": round(end_mb, 1),
            "end_minus_start_mb": round(end_mb - start_mb, 1),
            "end_minus_warm_mb": round(end_mb - out["warm_mb"], 1),
            "memory_limit_mb": MEMORY_LIMIT_MB, "idle_trims": trims,
            "class_s": round(class_s, 1), "settle_s": settle,
        })
        out["within_limits"] = bool(
            ratio <= LATENCY_LIMIT and started_in_order and finished_in_order is not False
            and out["heavy_all_finished"] and not errors
            and end_mb - start_mb <= MEMORY_LIMIT_MB)
        return out
    finally:
        stop_server(server)


# -- the quiz class (--quiz): 30 students play the Class quiz while the teacher watches -------
QUIZ_STUDENTS = 30
TEACHER_EVERY_S = 2.0  # the teacher's page refreshes its results this often (ui.quiz)


def widget_ids(out: dict, kind: str, label: str) -> list[tuple[str, tuple, str]]:
    """(id, options, fragment id) of the ``kind`` widgets labelled ``label``, in page order
    (a radio's value is the text of its option)."""
    return [(i, n, f) for k, name, i, n, f in out["widgets"] if k == kind and name == label]


async def start_quiz(tab: Session) -> tuple[str, str]:
    """As a teacher: choose the role, draw the questions (a queued job, the first time), start
    the quiz. Returns the quiz's code and the role radio's id."""
    first = await tab.run("quiz", "")
    role = widget_ids(first, "radio", "I am")[0][0]
    teacher = ((role, "string_value", "Teacher"),)
    out = await tab.run("quiz", "", states=teacher)
    if "Draw the questions" in out["buttons"]:
        out = await tab.run("quiz", "", out["buttons"]["Draw the questions"], teacher)
    out = await tab.run("quiz", "", out["buttons"]["Start the quiz"], teacher)
    codes = [m for m in out["markdown"] if m.startswith("### Quiz code: ")]
    if not codes:
        raise RuntimeError(f"no quiz code on the teacher's page: {out['errors']}")
    return codes[0].removeprefix("### Quiz code: `").removesuffix("`"), role


async def quiz_student(port: int, code: str, name: str, image: str, think: float,
                       rng: random.Random) -> dict:
    """The Overview by link, the quiz page, join with ``code`` and ``name``, then every
    question answered (a random choice; only the question's answer box runs again, as in the
    browser), ``think`` seconds (about) before each step."""
    steps, errors = [], []
    query = f"image={image}"
    async with Session(port) as tab:
        async def step(what: str, *args, **kwargs) -> dict:
            if think:
                await asyncio.sleep(rng.uniform(0.5, 1.5) * think)
            out = await tab.run(*args, **kwargs)
            steps.append((what, out["seconds"]))
            errors.extend(out["errors"])
            return out

        await step("overview", "", query)
        out = await step("quiz", "quiz", query)
        (code_id, *_), (name_id, *_) = (widget_ids(out, "text_input", "Quiz code")[0],
                                      widget_ids(out, "text_input", "Your name")[0])
        out = await step("join", "quiz", query, out["buttons"]["Join"],
                         ((code_id, "string_value", code), (name_id, "string_value", name)))
        questions = widget_ids(out, "radio", "Your answer")
        if not questions:
            errors.append(f"{name} could not join {code}: {out['markdown'][:3]}")
        for radio, options, fragment in questions:  # each answer box is a fragment (ui.quiz)
            await step("answer", "quiz", query, states=((radio, "string_value",
                                                         rng.choice(options)),),
                       fragment=fragment)
    return {"steps": steps, "errors": errors, "answered": len(questions)}


async def watch_results(tab: Session, role: str, until: asyncio.Event) -> dict:
    """The teacher's page rerun every :data:`TEACHER_EVERY_S` until ``until`` is set (a whole
    rerun each time: more than the page's own fragment costs); its last metrics."""
    last, runs = {}, 0
    while True:
        out = await tab.run("quiz", "", states=((role, "string_value", "Teacher"),))
        last, runs = out["metrics"], runs + 1
        if until.is_set():
            return {"metrics": last, "runs": runs}
        await asyncio.sleep(TEACHER_EVERY_S)


async def warm_light(port: int) -> list[str]:
    """The student's pages once (the model loaded, the first forward passes traced)."""
    async with Session(port) as tab:
        return [e for page in ("", "quiz") for e in (await tab.run(page, "image=circle"))["errors"]]


async def quiz_class(port: int, think: float, seed: int) -> dict:
    """A teacher starts a quiz; one student plays it alone three times (the baseline); then
    the class of 30 plays it at once while the teacher's results refresh."""
    rng = random.Random(seed)
    async with Session(port) as teacher:
        code, role = await start_quiz(teacher)
        alone = [await quiz_student(port, code, f"alone {i}", IMAGES[i], 0.0,
                                    random.Random(i)) for i in range(3)]
        done = asyncio.Event()
        watcher = asyncio.create_task(watch_results(teacher, role, done))
        t0 = time.perf_counter()
        students = await asyncio.gather(*[
            quiz_student(port, code, f"student {i}", IMAGES[i % len(IMAGES)], think,
                         random.Random(rng.random())) for i in range(QUIZ_STUDENTS)])
        class_s = time.perf_counter() - t0
        done.set()
        seen = await watcher
    return {"code": code, "alone": alone, "students": students, "teacher": seen,
            "class_s": class_s}


def run_quiz(think: float = 5.0, seed: int = 0, port: int = PORT) -> dict:
    """The quiz class on a real server: light-page p95 (every student's page runs: Overview,
    the quiz page, joining, each answer) under the class against one student alone."""
    cache_dir = tempfile.mkdtemp(prefix="bench_classroom_quiz_")
    report, jobs_log = Path(cache_dir) / "trim_report.jsonl", Path(cache_dir) / "jobs.log"
    server = start_server(port, cache_dir, jobs_log, report)
    out = {"mode": "quiz", "think_s": think, "load_at_start": load()}
    try:
        wait_healthy(port)
        warm_errors = asyncio.run(warm_light(port))
        played = asyncio.run(quiz_class(port, think, seed))
        out["load_quiz_class"] = load()
        alone = [s for student in played["alone"] for _, s in student["steps"]]
        loaded = [s for student in played["students"] for _, s in student["steps"]]
        by_step = {}
        for student in played["students"]:
            for what, seconds in student["steps"]:
                by_step.setdefault(what, []).append(seconds)
        errors = warm_errors + [e for s in played["alone"] + played["students"]
                                for e in s["errors"]]
        questions = played["students"][0]["answered"]
        players = QUIZ_STUDENTS + len(played["alone"])
        metrics = played["teacher"]["metrics"]
        expected = {"Students": str(players), "Answers": str(players * questions)}
        ratio = p95(loaded) / p95(alone)
        out.update({
            "students": QUIZ_STUDENTS, "questions": questions,
            "light_p95_alone_s": round(p95(alone), 2),
            "light_p95_loaded_s": round(p95(loaded), 2),
            "light_p95_ratio": round(ratio, 2), "latency_limit": LATENCY_LIMIT,
            "p95_by_step_loaded": {k: round(p95(v), 2) for k, v in by_step.items()},
            "teacher_metrics": metrics, "teacher_refreshes": played["teacher"]["runs"],
            "teacher_saw_every_answer": all(metrics.get(k) == v for k, v in expected.items()),
            "errors": errors[:5], "error_count": len(errors),
            "class_s": round(played["class_s"], 1), "peak_mb": round(peak_mb(server.pid), 1),
        })
        out["within_limits"] = bool(ratio <= LATENCY_LIMIT and not errors
                                    and out["teacher_saw_every_answer"])
        return out
    finally:
        stop_server(server)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--think", type=float, default=5.0,
                        help="seconds a student reads a page before the next link (about; "
                             "0: every link at once)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--arena-max", type=int, default=None,
                        help="the server's MALLOC_ARENA_MAX (default: glibc's own)")
    parser.add_argument("--quiz", action="store_true",
                        help="instead: the 30 students play the Class quiz while the teacher's "
                             "results refresh (light-page p95 against one student alone)")
    args = parser.parse_args(argv)
    if args.quiz:
        print(json.dumps(run_quiz(args.think, args.seed, args.port), indent=2))
        return
    print(json.dumps(run(args.think, args.seed, args.port, args.arena_max), indent=2))


if __name__ == "__main__":
    main()
