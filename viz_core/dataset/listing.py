"""A dataset's listing as a page shows it before a run: the listed images and a few of them, small.

Listing an uploaded ZIP reads its central directory and its labels CSV: bounded work (the limits
of :data:`~viz_core.dataset.readers.UPLOAD_LIMITS` refuse before parsing), but seconds for a large
archive. It is made once per upload through a workbench, keyed by the upload's content
(:class:`UploadedZip`), so the dashboard can make it in its job queue and a rerun reads it back
instead of parsing again. A refusal is a result too (:attr:`DatasetListing.error`): a rerun says
it again without opening the archive again.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from viz_core.dataset import readers
from viz_core.errors import ImageError, ParameterError

SHOWN = 8  # images in a listing's strip
SIDE = 112  # a thumbnail's longest side, px


@dataclass(frozen=True, eq=False)
class UploadedZip:
    """A ZIP of images as received (an upload), with its optional labels CSV.

    Attributes
    ----------
    archive : bytes
    name : str
        The upload's file name (display only, never a path).
    labels_csv : bytes or None
    digest : str
        SHA-256 of the archive and the CSV: the upload's identity in caches (see :meth:`of`).
    """

    archive: bytes
    name: str
    labels_csv: bytes | None
    digest: str

    @classmethod
    def of(cls, archive: bytes, name: str, labels_csv: bytes | None = None) -> "UploadedZip":
        digest = hashlib.sha256(archive)
        digest.update(b"\0csv\0" + (b"none" if labels_csv is None
                                    else hashlib.sha256(labels_csv).digest()))
        return cls(archive, name, labels_csv, digest.hexdigest())

    @property
    def cache_key(self) -> tuple[str, str]:
        # the bytes themselves would be hashed again (and kept) in every key
        return self.digest, self.name


@dataclass(frozen=True, eq=False)
class DatasetListing:
    """A listed dataset and a strip of its images.

    Attributes
    ----------
    dataset : Dataset or None
        None when the upload was refused.
    thumbnails : tuple of np.ndarray
        A few of the dataset's images spread over it (its first, then every
        ``len / SHOWN``-th), each (h, w, 3) uint8 with its longest side at most ``side`` px.
    paths : tuple of str
        Each thumbnail's path in the dataset.
    error : ParameterError or None
        Why the upload was refused, in the user's words.
    upload : UploadedZip or None
        The upload listed: the dataset reads its images from these bytes, so the cache counts
        them in this entry's size.
    """

    dataset: readers.Dataset | None
    thumbnails: tuple[np.ndarray, ...] = ()
    paths: tuple[str, ...] = ()
    error: ParameterError | None = None
    upload: UploadedZip | None = None


def _thumbnail(pixels: np.ndarray, side: int) -> np.ndarray:
    """(h, w, 3) uint8, the longest side at most ``side`` (never enlarged)."""
    picture = Image.fromarray(pixels)
    picture.thumbnail((side, side), Image.Resampling.BILINEAR)
    return np.asarray(picture)


def _strip(dataset: readers.Dataset, shown: int, side: int,
           progress: Callable[[float, str], None] | None) -> tuple[tuple, tuple]:
    pictures, paths = [], []
    picked = dataset.subset(shown).entries
    for n, entry in enumerate(picked):
        try:
            pictures.append(_thumbnail(dataset.load(entry).pixels, side))
            paths.append(entry.path)
        except ImageError:  # skipped here as the run skips it, with its reason
            pass
        if progress is not None:
            progress(0.5 + 0.5 * (n + 1) / len(picked), f"image {n + 1} of {len(picked)}")
    return tuple(pictures), tuple(paths)


def list_upload(upload: UploadedZip, classes: Sequence[str], *, shown: int = SHOWN,
                side: int = SIDE,
                progress: Callable[[float, str], None] | None = None) -> DatasetListing:
    """List an uploaded ZIP (:func:`~viz_core.dataset.readers.open_zip` with the upload limits)
    and draw a strip of ``shown`` of its images.

    Returns
    -------
    DatasetListing
        With ``error`` set (and no dataset) when the archive or its CSV was refused.
    """
    if progress is not None:
        progress(0.0, "reading the archive's list of files")
    try:
        dataset = readers.open_zip(upload.archive, classes, name=upload.name,
                                   labels_csv=upload.labels_csv)
    except ParameterError as exc:  # without its traceback, which holds the upload's bytes
        return DatasetListing(None, error=exc.with_traceback(None))
    thumbnails, paths = _strip(dataset, shown, side, progress)
    return DatasetListing(dataset, thumbnails, paths, upload=upload)


def list_sample(name: str, classes: Sequence[str], count: int, *, shown: int = SHOWN,
                side: int = SIDE) -> DatasetListing:
    """A built-in sample's first ``count`` scenes (:func:`~viz_core.dataset.readers.sample_dataset`)
    and a strip of ``shown`` of them.

    Raises
    ------
    ParameterError
        Unknown sample or a count out of range.
    """
    dataset = readers.sample_dataset(name, classes, count=count)
    thumbnails, paths = _strip(dataset, shown, side, None)
    return DatasetListing(dataset, thumbnails, paths)


def open_named(text: str, classes: Sequence[str], *, labels_csv=None) -> readers.Dataset:
    """A dataset named as the command line names it: a folder, a ZIP, ``sample:NAME``, or
    ``sample:NAME:COUNT`` (a sample's first COUNT scenes, as the dashboard draws them, so an
    export bundle's command names the same images).

    Raises
    ------
    ParameterError
        As :func:`~viz_core.dataset.readers.open_dataset`; a COUNT that is not a number.
    """
    parts = str(text).split(":")
    if len(parts) == 3 and parts[0] == "sample":
        if labels_csv is not None:
            raise ParameterError(f"A labels CSV goes with a folder or a ZIP; the sample "
                                 f"{text!r} has its own labels.")
        if not parts[2].isdigit():
            raise ParameterError(f"A sample with a count is sample:NAME:COUNT, e.g. "
                                 f"sample:shapes:48; got {text!r}.")
        return readers.sample_dataset(parts[1], classes, count=int(parts[2]))
    return readers.open_dataset(text, classes, labels_csv=labels_csv)
