"""The workbench: the cached front door used by the dashboard, the command line and benches.

It owns the caches (one mechanism, :class:`viz_core.runtime.cache.BoundedCache`) and nothing else:

* ``models``: loaded models, few entries (they are large);
* ``results``: any technique's result, keyed by the function and the *content* of its
  arguments (model identity, image digest, parameters), bounded by entries and bytes;
* ``disk``: arrays that are slow to make (filter patterns), kept across restarts.

The dashboard makes one workbench per server process (``st.cache_resource``); tests and the
command line make their own. There is no module-level state.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Sequence

from viz_core.runtime.cache import BoundedCache, DiskCache, content_key, default_cache_dir
from viz_core.models.catalog import LoadedModel, builtin, load_builtin_model, load_uploaded_model
from viz_core.models.downloads import DownloadProgress
from viz_core.inputs.intake import LoadedImage, load_image
from viz_core.runtime.settings import Settings

# Arguments that steer how work is reported or cached (``run``: a cache runner handed down,
# as map_metrics takes), not what it computes: never part of a key.
_NOT_IN_KEY = frozenset({"progress", "should_stop", "run"})


class Workbench:
    """Caches around :mod:`viz_core` calls.

    Parameters
    ----------
    max_models : int
        Loaded models kept in memory.
    max_result_entries, max_result_bytes : int
        Bounds of the result cache.
    disk_dir : path or None
        Folder for the disk cache; ``None`` uses :func:`viz_core.runtime.cache.default_cache_dir`.
    allow_download : bool
        Whether missing ImageNet weights may be fetched from the network.
    """

    def __init__(
        self,
        *,
        max_models: int = 3,
        max_result_entries: int = 256,
        max_result_bytes: int = 768 * 2**20,
        disk_dir: str | Path | None = None,
        disk_bytes: int = 512 * 2**20,
        allow_download: bool = True,
    ):
        self.models = BoundedCache(max_entries=max_models, max_bytes=2**50)
        self.images = BoundedCache(max_entries=64, max_bytes=256 * 2**20)
        self.results = BoundedCache(max_entries=max_result_entries, max_bytes=max_result_bytes)
        self.disk = DiskCache(disk_dir or default_cache_dir(), max_bytes=disk_bytes)
        self.allow_download = allow_download

    @classmethod
    def from_settings(cls, settings: Settings, **options) -> "Workbench":
        """A workbench bounded by ``settings`` (see :func:`viz_core.runtime.settings.read_settings`);
        ``options`` are the other constructor arguments."""
        return cls(max_models=settings.models, max_result_entries=settings.cache_entries,
                   max_result_bytes=settings.cache_bytes, **options)

    # -- models and images -------------------------------------------------------------
    def builtin_model(
        self,
        name: str,
        weights: str = "imagenet",
        *,
        allow_download: bool | None = None,
        progress: DownloadProgress | None = None,
    ) -> LoadedModel:
        """A built-in model (``demo``, ``vgg16``...), loaded once per process.

        ``allow_download`` overrides the workbench's setting for this call; ``progress``
        (``progress(done_bytes, total_bytes, seconds)``) hears about a weights download, if
        this call is the one that loads the model. A bundled model has one entry whatever
        ``weights`` says.
        """
        key = ("builtin", name, "bundled" if builtin(name).bundled else weights)
        download = self.allow_download if allow_download is None else allow_download
        return self.models.get_or_compute(
            key, lambda: load_builtin_model(name, weights, allow_download=download,
                                            progress=progress)
        )

    def uploaded_model(
        self,
        data: bytes,
        filename: str = "model",
        *,
        preprocessing: str = "unit",
        labels: Sequence[str] | None = None,
    ) -> LoadedModel:
        """An uploaded model, loaded once per distinct file content and settings."""
        key = ("upload", hashlib.sha256(data).hexdigest(), preprocessing, tuple(labels or ()))
        return self.models.get_or_compute(
            key,
            lambda: load_uploaded_model(
                data, filename, preprocessing=preprocessing, labels=labels
            ),
        )

    def image(self, data: bytes, name: str = "image") -> LoadedImage:
        """Decoded image, once per distinct file content."""
        key = ("image", hashlib.sha256(data).hexdigest(), name)
        return self.images.get_or_compute(key, lambda: load_image(data, name))

    # -- results -------------------------------------------------------------------------
    def run(self, function: Callable[..., Any], *args, **kwargs) -> Any:
        """``function(*args, **kwargs)``, cached by the function and its arguments' content.

        ``progress`` and ``should_stop`` keyword arguments are passed through but are not part
        of the key. Any argument must be keyable by :func:`viz_core.runtime.cache.content_key`.
        """
        key = _result_key(function, args, kwargs)
        return self.results.get_or_compute(key, lambda: function(*args, **kwargs))

    def is_cached(self, function: Callable[..., Any], *args, **kwargs) -> bool:
        """Whether :meth:`run` with these arguments would be answered from the cache."""
        return _result_key(function, args, kwargs) in self.results


def _result_key(function: Callable[..., Any], args: tuple, kwargs: dict) -> tuple:
    keyed = {k: v for k, v in kwargs.items() if k not in _NOT_IN_KEY}
    return (f"{function.__module__}.{function.__qualname__}", content_key(args),
            content_key(keyed))
