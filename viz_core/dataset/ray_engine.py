"""The Ray engine: the dataset run's batches on a Ray cluster (or a local Ray), same results.

Ray Data streams the dataset's entries (position and path only) through ``map_batches`` with a
pool of actors; each actor loads the model once, from a :class:`ModelRecipe`, and runs
:func:`viz_core.dataset.engine.explain_entries`, the local engine's per-batch function, on its batches:
it reads the images itself (through the dataset's picklable reader), predicts and explains
them, and writes the full-size maps. Only positions, probability rows and small maps come back
to the driver, where :class:`viz_core.dataset.engine.RunCollector` puts them in dataset order, so the
result is the same :class:`viz_core.dataset.engine.DatasetRun` as the local engine's.

Ray is an optional extra (``pip install -r requirements-ray.txt``, or ``cnn-explorer[ray]``) and
is imported only here, only when this engine runs.

On a cluster every worker needs this package installed and the dataset (a folder or a ZIP) and
the output folder at the same path (shared storage); built-in samples are drawn by the workers.
"""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from viz_core.dataset.engine import (DEFAULT_BATCH_SIZE, DEFAULT_MAP_SIZE, DatasetRun, EntriesResult,
                    RunCollector, check_run_options, explain_entries)
from viz_core.models.catalog import LoadedModel
from viz_core.dataset.readers import Dataset, SkippedFile
from viz_core.errors import Cancelled, ParameterError, VizError
from viz_core.runtime.quiet import stderr_silenced

ProgressFn = Callable[[float, str], None]
StopFn = Callable[[], bool]

INSTALL_HINT = "pip install -r requirements-ray.txt (or pip install 'cnn-explorer[ray]')"
#: Local Ray: CPUs it may use, and its shared object store (small: only small maps travel).
LOCAL_CPUS = 2
LOCAL_OBJECT_STORE_BYTES = 200 * 2**20
DEFAULT_WORKERS = 2
#: CPUs each actor asks Ray for, and the TensorFlow threads it uses.
WORKER_CPUS = 1


class RayUnavailableError(ParameterError):
    """Ray is not installed, or the cluster cannot be reached."""


@dataclass(frozen=True)
class ModelRecipe:
    """How a worker loads the same model the driver has: a built-in name, or a model file's
    bytes with its settings. Small and picklable (a file's bytes travel once per worker).

    Attributes
    ----------
    builtin : str or None
        A built-in model name (``demo``, ``shortcut_demo``, ``vgg16``...).
    weights : str
        ``imagenet`` or ``none`` for a built-in Keras Application.
    allow_download : bool
    file_bytes : bytes or None
        An uploaded ``.keras``/``.h5`` file (loaded with ``safe_mode`` on, as on the driver).
    filename : str
    preprocessing : str
    labels : tuple of str or None
    """

    builtin: str | None = None
    weights: str = "imagenet"
    allow_download: bool = False
    file_bytes: bytes | None = None
    filename: str = "model"
    preprocessing: str = "unit"
    labels: tuple[str, ...] | None = None

    def load(self) -> LoadedModel:
        from viz_core.models.catalog import load_builtin_model, load_uploaded_model

        if self.builtin is not None:
            return load_builtin_model(self.builtin, self.weights,
                                      allow_download=self.allow_download)
        if self.file_bytes is None:
            raise ParameterError("A model recipe needs a built-in name or a model file.")
        return load_uploaded_model(self.file_bytes, self.filename,
                                   preprocessing=self.preprocessing, labels=self.labels)


class ExplainWorker:
    """The Ray Data actor: the model loaded once, then one :func:`explain_entries` per batch.

    A batch comes as ``{"position": (n,) int64, "path": (n,) str}`` and goes back as one row
    per entry: ``position``, ``ok``, ``reason`` (why it was skipped), ``probabilities``
    (n, classes), ``predicted``, ``maps`` (n, s, s) and ``npy`` (full map file or "").
    """

    def __init__(self, recipe: ModelRecipe, read, layer: str, map_size: int,
                 full_maps_dir: str | None, threads: int = 1, method: str = "gradcam",
                 params: dict | None = None):
        import tensorflow as tf

        try:  # as many TensorFlow threads as the actor has CPUs, not one per core of the node
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TensorFlow already started in this worker process
            pass
        self.model = recipe.load()
        self.read, self.layer, self.map_size = read, layer, map_size
        self.full_maps_dir = full_maps_dir
        self.method, self.params = method, dict(params or {})

    def __call__(self, batch: dict) -> dict:
        pairs = [(int(i), str(p)) for i, p in zip(batch["position"], batch["path"])]
        part = explain_entries(self.model, self.read, pairs, layer=self.layer,
                               map_size=self.map_size, full_maps_dir=self.full_maps_dir,
                               method=self.method, params=self.params)
        return to_rows(part, len(self.model.labels), self.map_size)


def to_rows(part: EntriesResult, classes: int, map_size: int) -> dict:
    """An :class:`EntriesResult` as equal-length columns (Ray Data's batch format)."""
    n_ok, n_bad = len(part.positions), len(part.failed)
    files = list(part.files) or [""] * n_ok
    return {
        "position": np.concatenate([part.positions,
                                    np.asarray([f[0] for f in part.failed], np.int64)]),
        "ok": np.asarray([True] * n_ok + [False] * n_bad),
        "path": np.asarray([""] * n_ok + [f[1].file for f in part.failed], dtype=object),
        "reason": np.asarray([""] * n_ok + [f[1].reason for f in part.failed], dtype=object),
        "probabilities": np.concatenate([part.probabilities,
                                         np.zeros((n_bad, classes), np.float32)]),
        "predicted": np.concatenate([part.predicted, np.zeros(n_bad, np.int64)]),
        "maps": np.concatenate([part.maps, np.zeros((n_bad, map_size, map_size), np.float32)]),
        "npy": np.asarray(files + [""] * n_bad, dtype=object),
    }


def from_rows(rows: dict, with_files: bool) -> EntriesResult:
    """The inverse of :func:`to_rows`."""
    ok = np.asarray(rows["ok"], bool)
    failed = tuple((int(p), SkippedFile(str(f), str(r)))
                   for p, f, r, good in zip(rows["position"], rows["path"], rows["reason"], ok)
                   if not good)
    return EntriesResult(
        positions=np.asarray(rows["position"], np.int64)[ok],
        probabilities=np.asarray(rows["probabilities"], np.float32)[ok],
        predicted=np.asarray(rows["predicted"], np.int64)[ok],
        maps=np.asarray(rows["maps"], np.float32)[ok],
        files=tuple(str(f) for f in np.asarray(rows["npy"])[ok]) if with_files else (),
        failed=failed,
    )


def import_ray():
    """``ray`` and ``ray.data``, or a :class:`RayUnavailableError` saying how to install them."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise RayUnavailableError(
            f"The Ray engine needs Ray, which is not installed; install it with {INSTALL_HINT}, "
            "or use --engine local."
        ) from None
    return ray


CONNECT_TIMEOUT_S = 30.0  # a cluster address that does not answer: Ray itself retried for minutes
GREETING_TIMEOUT_S = 10.0  # a listener that is not Ray: Ray's own connect waited forever
# A gRPC (HTTP/2) client's opening: the connection preface and an empty SETTINGS frame. Ray's
# GCS and Ray Client ports speak gRPC and answer with a SETTINGS frame (frame type 4).
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_SETTINGS = 4


def _answers(address: str, timeout: float, greeting: float = GREETING_TIMEOUT_S) -> None:
    """Raise :class:`RayUnavailableError` unless a gRPC server (as Ray's ports are) answers at
    the address's ``host:port`` (``ray://host:port`` too): a TCP connection within ``timeout``
    seconds, then an HTTP/2 SETTINGS frame within ``greeting`` seconds. Other forms (``auto``,
    ``local``) are left to Ray."""
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)),
                                      timeout=timeout) as connection:
            connection.settimeout(greeting)
            try:
                connection.sendall(_HTTP2_PREFACE)
                reply = connection.recv(9)  # one frame header: length (3), type (1)...
            except OSError:
                reply = b""
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise RayUnavailableError(
            f"Nothing answers at the Ray cluster address {address!r} ({reason}, waited up to "
            f"{timeout:g} s); start the cluster (ray start --head) or check the address."
        ) from None
    if len(reply) < 4 or reply[3] != _SETTINGS:
        raise RayUnavailableError(
            f"Something answers at {address!r} but it is not a Ray cluster (it does not speak "
            f"Ray's gRPC protocol; waited {greeting:g} s); give the head's GCS address "
            "(host:6379) or its Ray Client address (ray://host:10001)."
        )


def start_ray(ray, address: str | None, verbose: bool | None = None) -> None:
    """Connect to ``address`` (or ``RAY_ADDRESS``), or start a small local Ray.

    A ``host:port`` address is tried for :data:`CONNECT_TIMEOUT_S` seconds before Ray is asked.
    Ray's start-up messages are kept off stderr unless ``verbose``; None: verbose when the
    libraries' logs were left on (``-v``; the command line quiets them otherwise).
    """
    address = address or os.environ.get("RAY_ADDRESS") or None
    if verbose is None:
        verbose = logging.getLogger("tensorflow").getEffectiveLevel() < logging.ERROR
    if not verbose:  # the driver's C++ core logs to stderr during the run, not only at start
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    quiet = dict(include_dashboard=False, log_to_driver=verbose,
                 logging_level=logging.INFO if verbose else logging.WARNING,
                 configure_logging=True)
    try:
        with stderr_silenced(not verbose):
            if address:
                _answers(address, CONNECT_TIMEOUT_S)
                ray.init(address=address, **quiet)
            else:
                # workers import viz_core from this checkout even when it is not installed
                root = str(Path(__file__).resolve().parents[1])
                path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
                ray.init(num_cpus=LOCAL_CPUS, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                         runtime_env={"env_vars": {"PYTHONPATH": path}}, **quiet)
    except RayUnavailableError:
        raise
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray"
        raise RayUnavailableError(f"Could not start or reach {where}: {exc}") from None
    # Ray Data's notes ("Progress bars disabled") are for -v; its errors still show
    logging.getLogger("ray.data").setLevel(logging.INFO if verbose else logging.ERROR)


def actor_rows(ray, items: list[dict], worker, *, batch_size: int, workers: int, what: str,
               keep_order: bool = False, **worker_kwargs):
    """Each batch's rows as the actors give them back: ``items`` through Ray Data
    ``map_batches`` with a pool of ``workers`` actors of class ``worker`` (built with
    ``worker_kwargs``), one CPU each. ``keep_order``: rows come back in ``items``' order.

    Ray Data's progress bars are off while it runs (its context is restored afterwards); a
    worker's error comes back as itself when it is a :class:`VizError`, else as a
    :class:`RayUnavailableError` saying "The Ray ``what`` failed: ...".
    """
    context = ray.data.DataContext.get_current()
    before = (context.enable_progress_bars, context.execution_options.preserve_order)
    try:
        context.enable_progress_bars = False
        if keep_order:
            context.execution_options.preserve_order = True
        stream = ray.data.from_items(items).map_batches(
            worker, batch_size=int(batch_size), batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=int(workers)), num_cpus=WORKER_CPUS,
            fn_constructor_kwargs=worker_kwargs)
        yield from stream.iter_batches(batch_size=None, batch_format="numpy")
    except ray.exceptions.RayError as exc:  # a worker's error comes back wrapped: say it plainly
        cause = getattr(exc, "cause", None) or exc
        if isinstance(cause, VizError):
            raise cause from None
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        raise RayUnavailableError(f"The Ray {what} failed: {type(cause).__name__}: {first}") \
            from None
    finally:
        context.enable_progress_bars, context.execution_options.preserve_order = before


def run_dataset_ray(model: LoadedModel, recipe: ModelRecipe, dataset: Dataset, *,
                    batch_size: int = DEFAULT_BATCH_SIZE, layer: str | None = None,
                    method: str = "gradcam", map_size: int = DEFAULT_MAP_SIZE,
                    full_maps_dir: str | Path | None = None, address: str | None = None,
                    workers: int = DEFAULT_WORKERS, progress: ProgressFn | None = None,
                    should_stop: StopFn | None = None, params: dict | None = None,
                    ) -> DatasetRun:
    """:func:`viz_core.dataset.engine.run_dataset` with the batches run by Ray actors.

    Parameters
    ----------
    model : LoadedModel
        The driver's copy (class names, layer check); workers load theirs from ``recipe``.
    recipe : ModelRecipe
        How each worker loads the same model.
    dataset : Dataset
        Its reader must work on the workers (same paths on a cluster).
    batch_size, layer, method, map_size, full_maps_dir, params
        As in :func:`viz_core.dataset.engine.run_dataset`; ``full_maps_dir`` is written by the
        workers, which run the same per-batch function with the same method and parameters.
    address : str or None
        A running Ray cluster (``ray://host:10001`` or ``host:6379``); None uses
        ``RAY_ADDRESS`` when set, else starts a local Ray with :data:`LOCAL_CPUS` CPUs, shut
        down afterwards.
    workers : int
        Actors in the pool, one model each (1 CPU each).
    progress, should_stop
        As in the local engine; checked as batches come back.

    Returns
    -------
    DatasetRun
        The same as the local engine gives, ``seconds`` included Ray's start.

    Raises
    ------
    RayUnavailableError
        Ray not installed or not reachable.
    ParameterError, Cancelled
        As in the local engine.
    """
    layer_path, settings = check_run_options(model, batch_size=batch_size, layer=layer,
                                             method=method, map_size=map_size, params=params)
    if not 1 <= int(workers) <= 1024:
        raise ParameterError(f"The number of Ray workers must be 1 to 1024; got {workers}.")
    ray = import_ray()
    folder = None if full_maps_dir is None else Path(full_maps_dir).resolve()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    total = len(dataset.entries)
    collector = RunCollector(model, dataset, layer=layer_path, method=method,
                             with_files=folder is not None, params=settings)
    if progress is not None:
        progress(0.0, f"starting Ray; 0 of {total} images")
    start_ray(ray, address)
    items = [{"position": i, "path": e.path} for i, e in enumerate(dataset.entries)]
    try:
        for rows in actor_rows(ray, items, ExplainWorker, batch_size=batch_size,
                               workers=workers, what="run", recipe=recipe,
                               read=dataset.reader, layer=layer_path, map_size=int(map_size),
                               full_maps_dir=None if folder is None else str(folder),
                               threads=WORKER_CPUS, method=method, params=settings):
            done = collector.add(from_rows(rows, folder is not None))
            if progress is not None:
                progress(done / max(1, total), collector.message())
            if should_stop is not None and should_stop():
                raise Cancelled(f"The dataset run was stopped after {done} of {total} images.")
    finally:
        ray.shutdown()
    return collector.finish()
