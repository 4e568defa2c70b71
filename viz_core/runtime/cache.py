"""One caching mechanism: bounded (entries and bytes), thread-safe, keyed by content.

:class:`BoundedCache` keeps results in memory (LRU); :class:`DiskCache` keeps arrays on disk
(``.npz``, no pickle) so slow results such as filter patterns survive a restart. Keys are built
with :func:`content_key` from objects' ``cache_key`` (model identity, image digest) and plain
parameters, so a display option that is not part of the key never triggers recomputation.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np

_MISSING = object()


def content_key(value: Any) -> Any:
    """A hashable key for ``value``: ``cache_key`` attributes, arrays by hash, containers by
    their items. Raises TypeError for values that cannot be keyed (so bugs are loud)."""
    key = getattr(value, "cache_key", _MISSING)
    if key is not _MISSING and not callable(key):
        return (type(value).__name__, key)
    if value is None or isinstance(value, (str, int, float, bool, bytes)):
        return value
    if isinstance(value, np.ndarray):
        return ("ndarray", value.shape, str(value.dtype), hashlib.sha256(value.tobytes()).hexdigest())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return tuple(content_key(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), content_key(v)) for k, v in value.items()))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__,) + tuple(
            (f.name, content_key(getattr(value, f.name))) for f in dataclasses.fields(value)
        )
    raise TypeError(f"Cannot build a cache key from {type(value).__name__}")


def estimate_bytes(value: Any, _depth: int = 0) -> int:
    """Rough memory size of a result: arrays by ``nbytes``, containers summed."""
    if _depth > 6:
        return 0
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (bytes, bytearray, str)):
        return len(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return sum(estimate_bytes(v, _depth + 1) for v in value) + 64
    if isinstance(value, dict):
        return sum(estimate_bytes(v, _depth + 1) for v in value.values()) + 64
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(estimate_bytes(getattr(value, f.name), _depth + 1) for f in dataclasses.fields(value))
    count_params = getattr(value, "count_params", None)
    if callable(count_params):
        try:
            return int(count_params()) * 4
        except (ValueError, RuntimeError):
            return 0
    return sys.getsizeof(value)


@dataclasses.dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0


class BoundedCache:
    """A thread-safe LRU cache bounded by number of entries and total bytes.

    Concurrent requests for the same missing key compute it once: later callers wait for the
    first one's result ("single flight"), so two browser sessions never load a model twice.

    Parameters
    ----------
    max_entries : int
    max_bytes : int
        Estimated with :func:`estimate_bytes`; an entry larger than this is returned but not kept.
    """

    def __init__(self, max_entries: int = 256, max_bytes: int = 512 * 2**20):
        self.max_entries = int(max_entries)
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._inflight: dict[Any, threading.Event] = {}
        self._lock = threading.Lock()
        self._bytes = 0
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._items

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def get(self, key, default=None):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.stats.hits += 1
                return self._items[key][0]
        return default

    def put(self, key, value, size: int | None = None) -> None:
        size = estimate_bytes(value) if size is None else int(size)
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            if size > self.max_bytes:
                return
            self._items[key] = (value, size)
            self._bytes += size
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                _, (_, old) = self._items.popitem(last=False)
                self._bytes -= old
                self.stats.evictions += 1

    def get_or_compute(self, key, compute: Callable[[], Any]):
        """Return the cached value for ``key`` or compute, store and return it."""
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    self.stats.hits += 1
                    return self._items[key][0]
                event = self._inflight.get(key)
                if event is None:
                    event = self._inflight[key] = threading.Event()
                    self.stats.misses += 1
                    break
            event.wait()  # someone else computes it; then look again
        try:
            value = compute()
            self.put(key, value)
            return value
        finally:
            with self._lock:
                self._inflight.pop(key, None)
            event.set()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


def default_cache_dir() -> Path:
    """``$CNN_VIZ_CACHE`` or ``$XDG_CACHE_HOME/cnn_viz`` (``~/.cache/cnn_viz``)."""
    explicit = os.environ.get("CNN_VIZ_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnn_viz"


class DiskCache:
    """Named numpy arrays on disk, one ``.npz`` per key, bounded by total bytes (oldest out).

    Files are written atomically (temporary file, then rename) and read without pickle.
    """

    def __init__(self, directory: str | os.PathLike, max_bytes: int = 512 * 2**20):
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()

    def _path(self, key) -> Path:
        digest = hashlib.sha256(repr(content_key(key)).encode()).hexdigest()
        return self.directory / f"{digest}.npz"

    def get(self, key) -> dict[str, np.ndarray] | None:
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            os.utime(path)
            return arrays
        except (OSError, ValueError, EOFError):
            return None

    def put(self, key, arrays: dict[str, np.ndarray]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        self._trim()

    def _trim(self) -> None:
        with self._lock:
            files = sorted(self.directory.glob("*.npz"), key=lambda p: p.stat().st_mtime)
            total = sum(p.stat().st_size for p in files)
            while files and total > self.max_bytes:
                oldest = files.pop(0)
                total -= oldest.stat().st_size
                oldest.unlink(missing_ok=True)
