"""Server settings read from the environment: the memory bounds of a class server.

A container (``compose.yaml``) or a shell sets them; the dashboard reads them once when it
builds its workbench (:func:`ui.state.workbench`). Nothing is read on import. Unset means the
default, which is what the workbench had before these settings existed.

=============================== ============================================== ==========
variable                        meaning                                        default
=============================== ============================================== ==========
``CNN_EXPLORER_CACHE_ENTRIES``  results (pictures, maps) kept in memory        256
``CNN_EXPLORER_CACHE_MB``       memory those results may take, in MB           768
``CNN_EXPLORER_MODELS``         loaded models kept in memory                   3
``CNN_EXPLORER_PROXIES``        reverse proxies in front of the server that    0
                                add ``X-Forwarded-For`` (then loopback
                                clients are told apart by that header)
=============================== ============================================== ==========

Where things are stored is set by two other variables, read where they are used:
``CNN_VIZ_CACHE`` (the filter-pattern disk cache, :func:`viz_core.runtime.cache.default_cache_dir`) and
``KERAS_HOME`` (Keras' weights cache, :func:`viz_core.models.catalog.keras_cache_dir`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from viz_core.errors import ParameterError


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, the field it sets, its range and its meaning."""

    variable: str
    field: str
    low: int
    high: int
    meaning: str


SETTINGS: tuple[Setting, ...] = (
    Setting("CNN_EXPLORER_CACHE_ENTRIES", "cache_entries", 1, 100_000,
            "the number of results kept in memory"),
    Setting("CNN_EXPLORER_CACHE_MB", "cache_mb", 16, 1_048_576,
            "the memory results may take, in MB"),
    Setting("CNN_EXPLORER_MODELS", "models", 1, 64, "the number of models kept in memory"),
    Setting("CNN_EXPLORER_PROXIES", "proxies", 0, 8,
            "the number of reverse proxies in front of the server"),
)
#: Every variable this module reads.
VARIABLES: tuple[str, ...] = tuple(s.variable for s in SETTINGS)


@dataclass(frozen=True)
class Settings:
    """Memory bounds of the process-wide workbench, and the proxies in front of the server.

    Attributes
    ----------
    cache_entries : int
        Results kept in memory, >= 1.
    cache_mb : int
        Memory the results may take, in MB (2**20 bytes), >= 16.
    models : int
        Loaded models kept in memory, >= 1.
    proxies : int
        Reverse proxies on the server's machine in front of it, each adding the address it
        saw to ``X-Forwarded-For``; 0 (no proxy) means loopback clients are the machine's own.
    """

    cache_entries: int = 256
    cache_mb: int = 768
    models: int = 3
    proxies: int = 0

    @property
    def cache_bytes(self) -> int:
        return self.cache_mb * 2**20


def read_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings in ``environ`` (``os.environ`` when None); unset or blank means default.

    Raises
    ------
    ParameterError
        A variable is not a whole number in its range; the message names the variable, the
        value and the range.
    """
    environ = os.environ if environ is None else environ
    values = {}
    for setting in SETTINGS:
        text = environ.get(setting.variable, "").strip()
        if not text:
            continue
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            value = None
        if value is None or not setting.low <= value <= setting.high:
            raise ParameterError(
                f"The setting {setting.variable} ({setting.meaning}) must be a whole number "
                f"from {setting.low:,} to {setting.high:,}; got {text[:40]!r}.")
        values[setting.field] = value
    return Settings(**values)
