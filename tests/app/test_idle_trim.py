"""The shared workbench gives its memory back after a quiet spell (ui.idle.IdleTrim)."""
from __future__ import annotations

import ctypes
import gc
import time

import numpy as np

from ui.idle import IdleTrim, malloc_mb, memory_report, release_memory, smaps_mb, trim
from viz_core.runtime.workbench import Workbench


def filled(tmp_path) -> Workbench:
    bench = Workbench(disk_dir=tmp_path, allow_download=False)
    bench.results.put(("a",), np.zeros(2**20, dtype=np.float32))  # 4 MB
    bench.images.put(("b",), np.zeros(2**18, dtype=np.uint8))
    return bench


def wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_trim_empties_the_memory_caches_and_says_how_much(tmp_path):
    bench = filled(tmp_path)
    assert trim(bench) == 4 * 2**20 + 2**18
    assert (len(bench.results), len(bench.images), len(bench.models)) == (0, 0, 0)
    assert bench.results.total_bytes == 0


def test_an_idle_workbench_is_trimmed_once_a_busy_one_never(tmp_path):
    idle_bench, busy_bench = filled(tmp_path / "idle"), filled(tmp_path / "busy")
    idle = IdleTrim(idle_bench, idle=0.2, check=0.05).start()
    busy = IdleTrim(busy_bench, idle=0.2, check=0.05).start()
    try:
        stop = time.monotonic() + 0.6
        while time.monotonic() < stop:  # a session reading the cache on every run
            busy_bench.results.get(("a",))
            time.sleep(0.02)
        assert wait_for(lambda: idle.trims == 1)
        assert len(idle_bench.results) == 0
        assert busy.trims == 0 and len(busy_bench.results) == 1
        time.sleep(0.4)
        assert idle.trims == 1  # nothing new to give back: no second trim
    finally:
        idle.stop()
        busy.stop()


def test_an_idle_trim_renews_the_job_queues_workers_once(tmp_path):
    # the server's trim lets the heavy-job workers go, and with them TensorFlow's kernels
    # kept per thread (ui.state.workbench passes JobQueue.renew_workers)
    from viz_core.runtime.jobs import JobQueue

    queue, bench = JobQueue(workers=1), filled(tmp_path)  # the watcher holds bench weakly
    before = queue.worker_threads()
    idle = IdleTrim(bench, idle=0.1, check=0.02, also=(queue.renew_workers,))
    try:
        idle.start()
        assert wait_for(lambda: idle.trims == 1 and queue.renewed == 1)
        assert queue.worker_threads()[0] is not before[0]
        time.sleep(0.2)
        assert (idle.trims, queue.renewed) == (1, 1)  # quiet since: nothing more to let go
    finally:
        idle.stop()
        queue.close()


def test_the_servers_workbench_trim_renews_the_servers_job_queue(monkeypatch):
    from ui import state

    made = []

    class Recorder:
        def __init__(self, bench, **options):
            made.append(options)

        def start(self):
            return self

    monkeypatch.setattr(state, "IdleTrim", Recorder)
    state.workbench.clear()
    try:
        state.workbench()
        (renew,) = made[0]["also"]
        assert renew.func == state.job_queue().renew_workers  # the same queue's bound method
        assert renew.keywords == {"wait": state.RENEW_WAIT_S}  # ended before the trim
    finally:
        state.workbench.clear()  # the next test gets a workbench with its real watcher


def test_the_watcher_ends_with_its_workbench(tmp_path):
    bench = filled(tmp_path)
    watcher = IdleTrim(bench, idle=10, check=0.02).start()
    del bench
    gc.collect()
    assert wait_for(lambda: not watcher._thread.is_alive())


def test_smaps_and_malloc_see_a_64_mb_block_come_and_go():
    before_smaps, before_malloc = smaps_mb(), malloc_mb()
    block = np.ones(2**23)  # 64 MB, touched: above malloc's mmap threshold, mapped apart
    during_smaps, during_malloc = smaps_mb(), malloc_mb()
    del block
    after_smaps, after_malloc = smaps_mb(), malloc_mb()
    assert abs(during_smaps["anonymous"] - before_smaps["anonymous"] - 64) < 8
    assert abs(during_malloc["mmapped"] - before_malloc["mmapped"] - 64) < 1
    assert abs(during_smaps["anonymous"] - after_smaps["anonymous"] - 64) < 8
    assert abs(during_malloc["mmapped"] - after_malloc["mmapped"] - 64) < 1
    assert abs(during_smaps["rss"] - during_smaps["anonymous"] - during_smaps["file"]) < 0.2


def test_freed_heap_shows_as_free_until_the_trim_hands_its_pages_back():
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size, count = 16 * 1024, 2048  # 32 MB in blocks below the mmap threshold: on the heap
    blocks = [libc.malloc(size) for _ in range(count)]
    pin = libc.malloc(size)  # keeps the freed blocks off the heap's top (no automatic trim)
    for b in blocks:
        ctypes.memset(b, 1, size)  # touched: resident
    used = malloc_mb()
    for b in blocks:
        libc.free(b)
    freed, resident = malloc_mb(), smaps_mb()
    release_memory()
    trimmed = smaps_mb()
    libc.free(pin)
    assert freed["free"] - used["free"] > 30  # 32 MB free, not yet given back
    assert used["in_use"] - freed["in_use"] > 30
    assert resident["anonymous"] - trimmed["anonymous"] > 25  # malloc_trim gave the pages back


def test_the_report_says_what_malloc_and_the_system_hold(tmp_path):
    report = memory_report(filled(tmp_path))
    assert report["results"] == [1, 4 * 2**20]
    # the 4 MB array is malloc's own mapping; anonymous memory holds at least that much (not
    # all of what malloc mapped need be resident, so the two are not compared)
    assert report["malloc_mb"]["mmapped"] >= 4 and report["smaps_mb"]["anonymous"] >= 4
    assert report["native_threads"] >= report["threads"] >= 1
    assert report["sessions"] is None and report["media_files"] is None  # no server here


def test_the_report_says_whether_huge_pages_are_off(tmp_path):
    from ui.server_memory import PR_GET_THP_DISABLE, PR_SET_THP_DISABLE

    libc = ctypes.CDLL("libc.so.6")
    was = libc.prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0)
    try:
        for off in (1, 0):
            libc.prctl(PR_SET_THP_DISABLE, off, 0, 0, 0)
            assert memory_report(filled(tmp_path))["huge_pages_off"] is bool(off)
    finally:
        libc.prctl(PR_SET_THP_DISABLE, was, 0, 0, 0)


def test_the_report_counts_the_graphs_tensorflow_traced():
    import tensorflow as tf

    from ui.idle import _tf_functions

    before = _tf_functions()

    @tf.function
    def double(x):
        return 2 * x

    double(tf.constant(1.0))
    double(tf.constant([1.0, 2.0]))  # another shape: another graph
    assert _tf_functions() - before >= 2
