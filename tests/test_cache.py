"""The cache: bounded by entries and bytes, LRU, single flight under threads, disk round trip."""
from __future__ import annotations

import threading
import time

import numpy as np

from viz_core.runtime.cache import BoundedCache, DiskCache, content_key
from viz_core.runtime.workbench import Workbench


def test_entries_bound_evicts_least_recently_used():
    cache = BoundedCache(max_entries=2, max_bytes=10**9)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now most recent
    cache.put("c", 3)
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.stats.evictions == 1


def test_bytes_bound():
    cache = BoundedCache(max_entries=100, max_bytes=3000)
    for i in range(5):
        cache.put(i, np.zeros(1000, dtype="uint8"))
    assert len(cache) == 3 and cache.total_bytes == 3000
    cache.put("huge", np.zeros(5000, dtype="uint8"))  # larger than the bound: not kept
    assert "huge" not in cache


def test_single_flight_computes_once_under_threads():
    cache = BoundedCache()
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return 42

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_compute("k", slow)))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [42] * 6 and len(calls) == 1
    assert cache.stats.misses == 1


def test_failed_compute_is_not_cached():
    cache = BoundedCache()

    def boom():
        raise ValueError("no")

    for _ in range(2):
        try:
            cache.get_or_compute("k", boom)
        except ValueError:
            pass
    assert "k" not in cache and cache.stats.misses == 2


def test_content_key_uses_identity_and_array_content():
    a = np.arange(6.0).reshape(2, 3)
    assert content_key(a) == content_key(a.copy())
    assert content_key(a) != content_key(a + 1)
    assert content_key({"x": 1, "y": (2, 3)}) == content_key({"y": [2, 3], "x": 1})


def test_disk_cache_round_trip_and_bound(tmp_path):
    disk = DiskCache(tmp_path, max_bytes=10**9)
    arrays = {"pattern": np.arange(12, dtype="uint8").reshape(3, 4), "score": np.float32(2.5)}
    disk.put(("model", "layer", 3), arrays)
    again = DiskCache(tmp_path).get(("model", "layer", 3))  # a new object: as after a restart
    np.testing.assert_array_equal(again["pattern"], arrays["pattern"])
    assert float(again["score"]) == 2.5
    assert disk.get(("model", "layer", 4)) is None
    small = DiskCache(tmp_path / "small", max_bytes=1)
    small.put("a", {"x": np.zeros(100)})
    assert small.get("a") is None


def test_workbench_run_ignores_progress_in_key(tmp_path):
    bench = Workbench(disk_dir=tmp_path)
    calls = []

    def square(x, *, progress=None):
        calls.append(x)
        if progress:
            progress(1.0, "done")
        return x * x

    seen = []
    assert bench.run(square, 3, progress=lambda f, m: seen.append(f)) == 9
    assert bench.run(square, 3, progress=None) == 9
    assert bench.is_cached(square, 3) and not bench.is_cached(square, 4)
    assert calls == [3] and seen == [1.0]
