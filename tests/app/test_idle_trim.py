"""The shared workbench gives its memory back after a quiet spell (ui.idle.IdleTrim)."""
from __future__ import annotations

import gc
import time

import numpy as np

from ui.idle import IdleTrim, trim
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


def test_the_watcher_ends_with_its_workbench(tmp_path):
    bench = filled(tmp_path)
    watcher = IdleTrim(bench, idle=10, check=0.02).start()
    del bench
    gc.collect()
    assert wait_for(lambda: not watcher._thread.is_alive())
