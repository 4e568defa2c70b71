"""Downloading a model's ImageNet weights into Keras' cache, with progress and plain errors.

Keras Applications fetch their weights with ``keras.utils.get_file(file_name, URL,
cache_subdir="models", file_hash=...)`` (see ``keras/src/applications/vgg16.py``). This module
replaces that call rather than wrapping it, because ``get_file``

* reports progress only by printing a bar on stdout (no callback a page can draw from);
* writes straight to the final file name, so a killed server leaves a truncated file where the
  next load finds it, and a download whose hash does not match stays in the cache;
* quietly falls back to ``/tmp/.keras`` when the cache folder is not writable, and turns every
  network problem into a bare ``Exception`` with the URL and an errno.

Here the file is streamed to a temporary name in the same folder, hashed on the way (MD5 or
SHA-256, told apart by length as Keras does), and renamed into place only when it is complete
and its hash matches; anything else removes the temporary file and raises
:class:`DownloadError` with a sentence a student understands. The URL and hash are Keras' own
(:data:`viz_core.models.catalog.BUILTIN_MODELS`, checked against the installed Keras by a test), so
Keras later finds the file in its cache exactly as if it had downloaded it. No Streamlit here:
progress goes to a plain callback ``progress(done_bytes, total_bytes, seconds)``.
"""
from __future__ import annotations

import errno
import hashlib
import http.client
import os
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

from viz_core.errors import WeightsUnavailableError

#: ``progress(done_bytes, total_bytes, seconds)``: ``total_bytes`` is None when the server did
#: not say; ``seconds`` since the download started.
DownloadProgress = Callable[[int, "int | None", float], None]
CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 30.0  # per read: a server silent this long has stopped answering
FREE_MARGIN_BYTES = 64 * 2**20  # room left on the disk after the file, for everything else


class DownloadError(WeightsUnavailableError):
    """The weights could not be downloaded; the message says why and what to do."""


def file_hash_matches(digest_hex: str, expected: str) -> bool:
    """Whether a computed digest equals Keras' expected hash (case-insensitive)."""
    return digest_hex.lower() == expected.strip().lower()


def _hasher(expected: str):
    # Keras' "auto" rule (keras.src.utils.file_utils.resolve_hasher): 64 hex digits are
    # SHA-256, anything else MD5.
    return hashlib.sha256() if len(expected.strip()) == 64 else hashlib.md5()


def describe_progress(done: int, total: int | None, seconds: float) -> tuple[float | None, str]:
    """The fraction done (None when the size is unknown) and a line such as
    ``"120.0 of 527.8 MB, about 2 min left"``.

    Parameters
    ----------
    done : int
        Bytes received so far, >= 0.
    total : int or None
        Bytes expected, or None when the server did not say.
    seconds : float
        Seconds since the download started, >= 0.
    """
    got = f"{done / 2**20:,.1f}"
    if not total:
        return None, f"{got} MB so far"
    fraction = min(1.0, done / total)
    text = f"{got} of {total / 2**20:,.1f} MB"
    if done >= total:
        return 1.0, f"{_mb(total)} in {_duration(seconds)}"
    if done > 0 and seconds >= 1.0:
        left = seconds * (total - done) / done
        return fraction, f"{text}, about {_duration(left)} left"
    return fraction, text


def _duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _host(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or parts.path or url


def _mb(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"


def _content_length(response) -> int | None:
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        size = int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return size if size and size > 0 else None


def fetch(
    url: str,
    target: str | os.PathLike,
    *,
    file_hash: str = "",
    starts_with: bytes = b"",
    what: str = "the weights",
    progress: DownloadProgress | None = None,
    opener: Callable | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    timeout: float = TIMEOUT_SECONDS,
) -> Path:
    """Download ``url`` to ``target``, whole and checked, or not at all.

    Parameters
    ----------
    url : str
        Where the file is (``https://`` or, in tests, ``file://``).
    target : path
        Final file name, e.g. ``~/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels.h5``.
        Its folder is created. The file appears only once complete and checked.
    file_hash : str
        Expected MD5 (32 hex digits) or SHA-256 (64) of the file, as Keras gives it; empty
        skips the check (Keras has none for MobileNetV2).
    starts_with : bytes
        The file format's signature (HDF5's for weights); a file that does not begin with it
        is not kept. It catches what a hash cannot when there is none: a proxy's or captive
        portal's HTML page served with status 200.
    what : str
        What is downloaded, in the user's words, for messages ("VGG16's ImageNet weights").
    progress : callable, optional
        ``progress(done_bytes, total_bytes, seconds)``, called once before the first byte and
        after every chunk; ``done_bytes`` only grows and ends at the file's size.
    opener : callable
        ``opener(url, timeout=...)`` returning a readable response; None is
        ``urllib.request.urlopen`` (tests give a fake).

    Returns
    -------
    Path
        ``target``.

    Raises
    ------
    DownloadError
        No network, an HTTP error, a cut connection (fewer bytes than announced), a damaged
        file (hash mismatch), a full disk or a folder that cannot be written. No file is left
        at ``target`` or next to it.
    """
    target = Path(target)
    folder = target.parent
    host = _host(url)
    # What the user can do instead, finishing every message.
    instead = f"put the file {target.name} in {folder}/ by hand, or choose random weights"
    where = instead[0].upper() + instead[1:] + "."
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(_disk_message(exc, what, folder, where)) from None
    if not os.access(folder, os.W_OK):
        raise DownloadError(
            f"Could not download {what}: Keras' cache folder {folder} cannot be written (no "
            "permission). Set KERAS_HOME to a folder you can write, or ask whoever runs the "
            "server to put the file there.")
    started = time.monotonic()
    tmp_name = None
    try:
        try:
            response = (opener or urllib.request.urlopen)(url, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise DownloadError(
                f"Could not download {what}: the server {host} answered HTTP {exc.code} "
                f"({exc.reason}). {where}") from None
        except (urllib.error.URLError, socket.timeout, ConnectionError) as exc:
            raise DownloadError(_network_message(exc, what, host, where)) from None
        with response:
            total = _content_length(response)
            if total is not None:
                _check_free_space(folder, total, what, where)
            fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.",
                                            suffix=".part")
            hasher = _hasher(file_hash)
            done = 0
            with os.fdopen(fd, "wb") as out:
                if progress is not None:
                    progress(0, total, 0.0)
                while True:
                    try:
                        chunk = response.read(chunk_bytes)
                    except http.client.IncompleteRead as exc:
                        chunk = exc.partial
                        out.write(chunk)
                        done += len(chunk)
                        break
                    if not chunk:
                        break
                    out.write(chunk)
                    hasher.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total, time.monotonic() - started)
            if total is not None and done != total:
                raise DownloadError(
                    f"The download of {what} stopped after {_mb(done)} of {_mb(total)} (the "
                    f"connection to {host} was cut). Nothing was kept; try again, or {instead}.")
            if starts_with and not _begins_with(tmp_name, starts_with):
                raise DownloadError(
                    f"What {host} sent for {what} is not a weights file (it does not begin as "
                    "an HDF5 file does; a login or error page of a proxy?); it was not kept. "
                    f"Try again on another network, or {instead}.")
            if file_hash and not file_hash_matches(hasher.hexdigest(), file_hash):
                raise DownloadError(
                    f"The downloaded file for {what} is damaged (its checksum does not match "
                    f"Keras' {file_hash}); it was not kept. Try again, or {instead}.")
            os.replace(tmp_name, target)
            tmp_name = None
            return target
    except DownloadError:
        raise
    except (urllib.error.URLError, socket.timeout, ConnectionError) as exc:
        raise DownloadError(_network_message(exc, what, host, where)) from None
    except OSError as exc:
        raise DownloadError(_disk_message(exc, what, folder, where)) from None
    finally:
        if tmp_name is not None:
            try:
                os.remove(tmp_name)
            except OSError:
                pass


def _begins_with(path: str, signature: bytes) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(signature)) == signature


def _check_free_space(folder: Path, total: int, what: str, where: str) -> None:
    free = shutil.disk_usage(folder).free
    if free < total + FREE_MARGIN_BYTES:
        raise DownloadError(
            f"Could not download {what}: it needs {_mb(total)} and the disk holding {folder} "
            f"has {_mb(free)} free. Free some space (or set KERAS_HOME to a larger disk) and "
            "try again, or choose random weights.")


def _network_message(exc: BaseException, what: str, host: str, where: str) -> str:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, socket.timeout) or isinstance(exc, socket.timeout):
        why = f"{host} stopped answering (no data for {TIMEOUT_SECONDS:.0f} s)"
    elif isinstance(reason, socket.gaierror):
        why = f"{host} could not be found (is this machine connected to the internet?)"
    elif isinstance(reason, ConnectionError):
        why = f"the connection to {host} failed ({reason.strerror or type(reason).__name__})"
    else:
        why = f"{host} could not be reached ({str(reason)[:120]})"
    return f"Could not download {what}: {why}. {where}"


def _disk_message(exc: OSError, what: str, folder: Path, where: str) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"Could not download {what}: the disk holding {folder} is full. Nothing was "
                "kept; free some space and try again, or choose random weights.")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"Could not download {what}: Keras' cache folder {folder} cannot be written "
                "(no permission). Set KERAS_HOME to a folder you can write.")
    return f"Could not download {what}: {exc.strerror or exc} ({folder}). {where}"
