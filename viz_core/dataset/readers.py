"""Dataset intake: a folder, a ZIP or a built-in sample becomes a list of labelled images.

Layouts understood (the first folder level of a path is its label, as in
``keras.utils.image_dataset_from_directory``)::

    cats/001.jpg, dogs/002.jpg        class per folder
    001.jpg, 002.jpg + labels.csv     flat folder with a CSV "filename,label" (header optional)
    001.jpg, 002.jpg                  no labels: predictions only

A ZIP may wrap any of these in one top folder (``shapes/cats/001.jpg``). Labels are matched to
the model's class names (case and ``_``/space differences ignored); a label that matches no class
is reported in :attr:`Dataset.unknown_labels`, never guessed. Images are only listed here; each is
read and decoded through :func:`viz_core.inputs.intake.load_image` when a batch needs it
(:meth:`Dataset.load`), so one bad file is skipped with its reason and the run goes on.

A ZIP is never extracted to disk: members are read into memory one at a time, after their
declared sizes were checked against :class:`DatasetLimits` (file count, total size, per-file size,
compression ratio: ZIP bombs are refused before any member is decompressed). Paths inside the
archive are only ever shown, never used as file system paths.

Every input is bounded before it is parsed: a folder's files are regular files (named pipes,
sockets and devices are skipped, never opened; names that are not UTF-8 are skipped and shown
escaped), a labels CSV by its size and rows wherever it comes from, a ZIP by its bytes and by
the entry count its end record declares.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import stat
import struct
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

import numpy as np

from viz_core.errors import ImageError, ParameterError
from viz_core.inputs.intake import MAX_BYTES, SUPPORTED_EXTENSIONS, LoadedImage, image_from_array, load_image


@dataclass(frozen=True)
class DatasetLimits:
    """What a dataset may hold; larger ones are refused with a message that states the limit.

    Attributes
    ----------
    max_files : int
        Images (files with an image extension) in the dataset.
    max_total_bytes : int
        Sum of the image files' sizes (for a ZIP: uncompressed, as declared).
    max_file_bytes : int
        One image file; larger ones are skipped with the reason.
    max_ratio : int
        A ZIP member larger than ``bomb_floor_bytes`` that expands more than this many times its
        compressed size is a bomb: the archive is refused.
    bomb_floor_bytes : int
    max_csv_bytes : int
        A labels CSV, wherever it comes from (beside the images, inside a ZIP, ``--labels``).
    max_csv_rows : int
        Rows of a labels CSV.
    max_archive_bytes : int or None
        A ZIP archive as received (bytes or file); None: twice ``max_total_bytes``.
    """

    max_files: int
    max_total_bytes: int
    max_file_bytes: int = MAX_BYTES
    max_ratio: int = 100
    bomb_floor_bytes: int = 4 * 2**20
    max_csv_bytes: int = 8 * 2**20
    max_csv_rows: int = 500_000
    max_archive_bytes: int | None = None

    @property
    def archive_bytes(self) -> int:
        """The largest ZIP archive accepted, in bytes."""
        return self.max_archive_bytes or 2 * self.max_total_bytes

    @property
    def max_entries(self) -> int:
        """Files (or archive entries) listed at most: images, and room for other files."""
        return 2 * self.max_files + 1000


#: Uploads in the dashboard (the archive's limit is the page's uploader's).
UPLOAD_LIMITS = DatasetLimits(max_files=2_000, max_total_bytes=200 * 2**20,
                              max_csv_rows=50_000, max_archive_bytes=200 * 2**20)
#: Folders and archives given on the command line.
LOCAL_LIMITS = DatasetLimits(max_files=1_000_000, max_total_bytes=200 * 2**30)

SAMPLE_DATASETS = {
    "shapes": "Shapes scenes (demo model, 150x150, 4 classes)",
    "shortcut": "Shortcut held-out scenes (shortcut demo model: stars with and without the tag)",
}
SAMPLE_SIZES = {"shapes": 240, "shortcut": 200}
_SHAPES_FIRST_SEED = 2_200_000_000  # beyond every training and held-out range of the demo
_IGNORED_PARTS = ("__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini")
_DRIVE = re.compile(r"[A-Za-z]:")  # a Windows drive at the start of a member's path
UNMATCHED_SHOWN = 20  # CSV rows naming files not in the dataset, listed one by one
_FILE_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a link"))


def readable_name(name: str) -> str:
    """A file-system name as text: bytes that are not UTF-8 (kept by Python as lone
    surrogates) shown as ``\\xNN`` escapes, so the name can be shown, hashed and written."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _is_text(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kind(mode: int) -> str:
    """What a file that is not a regular one is, in the user's words."""
    return next((words for test, words in _FILE_KINDS if test(mode)), "not a regular file")


def _read_regular(path: str | os.PathLike, max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file, opened without blocking and without following a link:
    a named pipe put in place of a listed file is refused, never waited on.

    Raises
    ------
    OSError
        Cannot be opened; ``errno`` 0 with the reason when it is not a regular file or
        holds more than ``max_bytes``.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(0, f"{_kind(mode)}; only regular files are read")
        if max_bytes is None:
            return fh.read()
        data = fh.read(max_bytes + 1)  # never more than the limit in memory
    if len(data) > max_bytes:
        raise OSError(0, f"larger than {max_bytes:,} bytes")
    return data


@dataclass(frozen=True)
class DatasetEntry:
    """One image of a dataset, not yet read.

    Attributes
    ----------
    path : str
        Path relative to the dataset root, ``/``-separated; for display and reports only.
    label : str or None
        The label as given (folder name or CSV cell); None when the dataset has none for it.
    class_index : int or None
        ``label`` matched to the model's classes; None when unlabelled or unknown.
    """

    path: str
    label: str | None
    class_index: int | None


@dataclass(frozen=True)
class SkippedFile:
    """A file left out of the run, and why, in the user's words."""

    file: str
    reason: str


@dataclass(frozen=True, eq=False)
class Dataset:
    """A listed dataset: entries to read in batches, files already skipped, label report.

    Attributes
    ----------
    name : str
        Display name (folder or archive stem, or the sample's name).
    layout : str
        ``"class folders"``, ``"csv"``, ``"unlabelled"`` or ``"sample"``.
    entries : tuple of DatasetEntry
        Sorted by path.
    skipped : tuple of SkippedFile
        Files refused while listing (not an image, too large, missing from the folder...).
    classes : tuple of str
        The model's class names the labels were matched against.
    unknown_labels : tuple of (str, int)
        Labels that match no class, with how many images carry each.
    identity : str
        Content identity for caches (hash of the source and the listing).
    """

    name: str
    layout: str
    entries: tuple[DatasetEntry, ...]
    skipped: tuple[SkippedFile, ...]
    classes: tuple[str, ...]
    unknown_labels: tuple[tuple[str, int], ...]
    identity: str
    _read: Callable[[str], LoadedImage | bytes] = field(repr=False)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def cache_key(self) -> str:
        return self.identity

    @property
    def labelled(self) -> bool:
        """True when at least one image has a label that matches a class."""
        return any(e.class_index is not None for e in self.entries)

    def load(self, entry: DatasetEntry) -> LoadedImage:
        """Read and decode one image through the normal intake.

        Raises
        ------
        ImageError
            The file cannot be read or is not a usable image (the message names it).
        """
        got = self._read(entry.path)
        if isinstance(got, LoadedImage):
            return got
        return load_image(got, entry.path)

    @property
    def reader(self) -> Callable[[str], LoadedImage | bytes]:
        """The callable that reads one entry's path (bytes, or a drawn image for samples).

        It pickles (a folder path, an archive's path or bytes, a sample's seeds), so a worker
        process or machine can read the dataset's images itself (the Ray engine); a folder or
        archive must then be at the same path there.
        """
        return self._read

    def subset(self, count: int) -> Dataset:
        """The first ``count`` entries (every ``len // count``-th, so classes stay mixed)."""
        if count >= len(self.entries):
            return self
        step = len(self.entries) / max(1, count)
        picked = tuple(self.entries[int(i * step)] for i in range(count))
        return Dataset(self.name, self.layout, picked, self.skipped, self.classes,
                       self.unknown_labels, f"{self.identity}[:{count}]", self._read)


# --------------------------------------------------------------------------------------------
# Readers: small picklable callables (path -> bytes or image), so another process can read
# the same dataset (viz_core.dataset.ray_engine); closures would not travel.
# --------------------------------------------------------------------------------------------
class FolderReader:
    """Reads ``root / path`` as bytes."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __call__(self, rel: str) -> bytes:
        try:
            return _read_regular(self.root / rel)
        except OSError as exc:
            raise ImageError(f"The file '{rel}' cannot be read ({exc.strerror}).") from None


class ZipReader:
    """Reads one listed member of a ZIP (its bytes or its path), at most ``max_file_bytes``.

    The open archive is not pickled: a copy in another process opens the archive again on its
    first read.
    """

    def __init__(self, source: bytes | Path, members: dict[str, zipfile.ZipInfo],
                 max_file_bytes: int, archive: zipfile.ZipFile | None = None):
        self.source, self.members, self.max_file_bytes = source, members, max_file_bytes
        self._archive = archive

    def __getstate__(self):
        return {**self.__dict__, "_archive": None}

    def __call__(self, member: str) -> bytes:
        info = self.members[member]
        try:
            if self._archive is None:
                self._archive = zipfile.ZipFile(io.BytesIO(self.source)
                                                if isinstance(self.source, bytes) else self.source)
            with self._archive.open(info) as fh:
                got = fh.read(self.max_file_bytes + 1)  # never more than the limit in memory
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError,
                EOFError) as exc:
            raise ImageError(f"The archive member '{member}' cannot be read ({exc}).") from None
        if len(got) > self.max_file_bytes:
            raise ImageError(f"The archive member '{member}' is larger than declared.")
        return got


class PrefixedReader:
    """Reads a path shown without the archive's wrapper folder (``cats/1.jpg`` is read as
    ``shapes/cats/1.jpg``)."""

    def __init__(self, read: Callable[[str], bytes], prefix: str):
        self.read, self.prefix = read, prefix

    def __call__(self, path: str) -> bytes:
        return self.read(self.prefix + path)


class SampleReader:
    """Draws a built-in sample's scene from its seed (``draw[path]``)."""

    def __init__(self, name: str, draw: dict):
        self.name, self.draw = name, draw

    def __call__(self, path: str) -> LoadedImage:
        if self.name == "shapes":
            from viz_core.demo.shapes import dataset_scene
            return image_from_array(dataset_scene(self.draw[path]).image, path)
        from viz_core.demo.shortcut import shortcut_scene
        return image_from_array(shortcut_scene(*self.draw[path]), path)


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------
def _norm(label: str) -> str:
    return " ".join(str(label).replace("_", " ").replace("-", " ").lower().split())


def match_labels(labels: Sequence[str | None], classes: Sequence[str]):
    """Class index of each label, and the labels that match no class.

    Parameters
    ----------
    labels : sequence of str or None
    classes : sequence of str
        The model's class names, in output order.

    Returns
    -------
    indices : list of int or None
        None for a missing or unknown label.
    unknown : tuple of (str, int)
        Unknown labels with their counts, most frequent first.
    """
    lookup: dict[str, int] = {}
    for i, name in enumerate(classes):
        lookup.setdefault(_norm(name), i)
    indices, unknown = [], Counter()
    for label in labels:
        if label is None:
            indices.append(None)
            continue
        index = lookup.get(_norm(label))
        if index is None:
            unknown[label] += 1
        indices.append(index)
    return indices, tuple(sorted(unknown.items(), key=lambda kv: (-kv[1], kv[0])))


def read_labels_csv(data: bytes, what: str = "labels CSV", *,
                    max_rows: int | None = None) -> dict[str, str]:
    """``{filename: label}`` from CSV bytes with rows ``filename,label`` (a header is optional).

    Parameters
    ----------
    data : bytes
    what : str
        How messages name the file.
    max_rows : int or None
        Rows allowed; reading stops at the first row over it.

    Raises
    ------
    ParameterError
        Not UTF-8 text, not CSV, more than ``max_rows`` rows, or a row without two columns
        (the message names the row).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ParameterError(f"The {what} is not UTF-8 text; save it as CSV (UTF-8).") from None
    labels: dict[str, str] = {}
    number, first = 0, True
    try:
        for row in csv.reader(io.StringIO(text)):  # row by row: no second copy of the rows
            if not row or not any(c.strip() for c in row):
                continue
            header = first and [c.strip().lower() for c in row[:2]] in (["filename", "label"],
                                                                         ["file", "label"])
            first = False
            if header:
                continue
            number += 1
            if max_rows is not None and number > max_rows:
                raise ParameterError(f"The {what} has more than {max_rows:,} rows; the limit "
                                     f"is {max_rows:,}.")
            if len(row) < 2 or not row[0].strip() or not row[1].strip():
                raise ParameterError(
                    f"Row {number} of the {what} is {','.join(row)[:200]!r}; each row needs a "
                    "file name and a label: filename,label."
                )
            labels[row[0].strip().replace("\\", "/")] = row[1].strip()
    except csv.Error as exc:
        raise ParameterError(f"The {what} cannot be read as CSV ({exc}).") from None
    return labels


# --------------------------------------------------------------------------------------------
# Listing: paths -> entries
# --------------------------------------------------------------------------------------------
def _is_image(path: str) -> bool:
    return "." in path and path.rsplit(".", 1)[-1].lower() in SUPPORTED_EXTENSIONS


def _ignored(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return any(p in _IGNORED_PARTS or p.startswith(".") for p in parts)


def _strip_wrapper(paths: list[str], classes: Sequence[str]) -> str:
    """The one top folder that wraps every path (``shapes/cats/1.jpg``), or ``""``.

    A top folder named like a class is a class folder, not a wrapper.
    """
    tops = {PurePosixPath(p).parts[0] for p in paths if len(PurePosixPath(p).parts) > 1}
    if len(tops) != 1 or any(len(PurePosixPath(p).parts) < 2 for p in paths):
        return ""
    top = tops.pop()
    if _norm(top) in {_norm(c) for c in classes}:
        return ""
    return top + "/"


def _build(name: str, layout_hint: str | None, files: dict[str, int], classes: Sequence[str],
           csv_labels: dict[str, str] | None, limits: DatasetLimits, skipped: list[SkippedFile],
           identity: str, read: Callable[[str], bytes]) -> Dataset:
    """Entries from ``{relative path: size}``; checks the limits; matches labels."""
    images = {p: s for p, s in files.items() if _is_image(p)}
    for path in sorted(set(files) - set(images)):
        if not path.lower().endswith(".csv"):
            skipped.append(SkippedFile(path, "not an image file (PNG, JPEG, WebP, BMP, TIFF or "
                                             "GIF by its extension)"))
    if len(images) > limits.max_files:
        raise ParameterError(
            f"The dataset {name!r} has {len(images):,} images; the limit is "
            f"{limits.max_files:,}. Use a smaller sample of it."
        )
    total = sum(images.values())
    if total > limits.max_total_bytes:
        raise ParameterError(
            f"The dataset {name!r} holds {total / 2**20:,.0f} MB of images; the limit is "
            f"{limits.max_total_bytes / 2**20:,.0f} MB."
        )
    for path, size in sorted(images.items()):
        if size > limits.max_file_bytes:
            skipped.append(SkippedFile(path, f"{size:,} bytes; images up to "
                                             f"{limits.max_file_bytes:,} bytes are read"))
            del images[path]
    wrapper = _strip_wrapper(list(images), classes)
    paths = sorted(images)
    shown = [p[len(wrapper):] for p in paths]
    if csv_labels is not None:
        by_path = dict(csv_labels)
        by_name = {PurePosixPath(k).name: v for k, v in csv_labels.items()}
        labels = [by_path.get(s, by_name.get(PurePosixPath(s).name)) for s in shown]
        found = set(shown) | {PurePosixPath(s).name for s in shown}
        unmatched = [listed for listed in sorted(csv_labels)
                     if listed not in found and PurePosixPath(listed).name not in found]
        for listed in unmatched[:UNMATCHED_SHOWN]:
            skipped.append(SkippedFile(listed, "listed in the labels CSV but not in the "
                                               "dataset"))
        if len(unmatched) > UNMATCHED_SHOWN:  # a summary, not one object per row
            more = len(unmatched) - UNMATCHED_SHOWN
            skipped.append(SkippedFile(f"(labels CSV: {more:,} more rows)",
                                       f"{len(unmatched):,} rows of the labels CSV name files "
                                       f"that are not in the dataset; the first "
                                       f"{UNMATCHED_SHOWN} are listed"))
        layout = "csv"
    else:
        labels = [PurePosixPath(s).parts[0] if len(PurePosixPath(s).parts) > 1 else None
                  for s in shown]
        layout = "class folders" if any(lab is not None for lab in labels) else "unlabelled"
    indices, unknown = match_labels(labels, classes)
    entries = tuple(DatasetEntry(s, lab, idx) for s, lab, idx in zip(shown, labels, indices))
    # surrogateescape: a folder's own path may hold bytes that are not UTF-8
    digest = hashlib.sha256(identity.encode("utf-8", "surrogateescape"))
    for entry in entries:
        digest.update(f"{entry.path}\0{entry.label}\0{images[wrapper + entry.path]}\n"
                      .encode("utf-8", "surrogateescape"))
    return Dataset(name, layout_hint or layout, entries, tuple(skipped), tuple(classes), unknown,
                   digest.hexdigest(), PrefixedReader(read, wrapper) if wrapper else read)


def open_folder(root: str | os.PathLike, classes: Sequence[str], *,
                labels_csv: str | os.PathLike | None = None,
                limits: DatasetLimits = LOCAL_LIMITS) -> Dataset:
    """List a folder (class folders, or flat with ``labels_csv`` / one ``*.csv`` at the top).

    Only regular files are read: links (a dataset cannot point outside its folder), named
    pipes, sockets and devices are skipped with the reason, never opened. A file or folder
    whose name is not UTF-8 is skipped and shown with ``\\xNN`` escapes.

    Raises
    ------
    ParameterError
        The folder does not exist, has no images, or breaks ``limits``.
    """
    root = Path(root)
    if not root.is_dir():
        raise ParameterError(f"The dataset folder {str(root)!r} does not exist.")
    files: dict[str, int] = {}
    skipped: list[SkippedFile] = []
    for folder, dirs, names in os.walk(root, followlinks=False):
        here = Path(folder)
        kept = []
        for name in sorted(dirs):
            if name.startswith(".") or name in _IGNORED_PARTS:
                continue
            if not _is_text(name):
                rel = readable_name((here / name).relative_to(root).as_posix())
                skipped.append(SkippedFile(rel + "/", "a folder whose name is not UTF-8 text; "
                                                      "rename it to read its images"))
                continue
            kept.append(name)
        dirs[:] = kept
        for filename in sorted(names):
            full = here / filename
            rel = full.relative_to(root).as_posix()
            if _ignored(rel):
                continue
            if not _is_text(filename):
                skipped.append(SkippedFile(readable_name(rel), "its name is not UTF-8 text; "
                                                               "rename it to read it"))
            else:
                try:
                    info = os.lstat(full)
                except OSError as exc:
                    skipped.append(SkippedFile(rel, f"cannot be read ({exc.strerror})"))
                    continue
                if stat.S_ISREG(info.st_mode):
                    files[rel] = info.st_size
                elif stat.S_ISLNK(info.st_mode):
                    skipped.append(SkippedFile(rel, "a link; only plain files are read"))
                else:
                    skipped.append(SkippedFile(rel, f"{_kind(info.st_mode)}; only regular "
                                                    "files are read"))
            if len(files) + len(skipped) > limits.max_entries:
                raise ParameterError(
                    f"The folder {str(root)!r} has more than {2 * limits.max_files:,} files; the "
                    f"limit is {limits.max_files:,} images."
                )
    csv_labels = _csv_for(files, labels_csv, lambda rel: _read_regular(root / rel), limits)
    stat_root = root.stat()
    identity = f"folder:{root.resolve()}:{stat_root.st_mtime_ns}"

    return _finished(_build(readable_name(root.name), None, files, classes, csv_labels, limits,
                            skipped, identity, FolderReader(root)))


def labels_file(labels_csv: str | os.PathLike, limits: DatasetLimits = LOCAL_LIMITS) -> bytes:
    """The bytes of a labels CSV named by the user (``--labels``), within ``limits``.

    Raises
    ------
    ParameterError
        Missing, a folder or another file that is not a regular one (a named pipe is never
        opened), or larger than ``limits.max_csv_bytes`` (refused before it is read).
    """
    shown = readable_name(str(labels_csv))
    try:
        info = os.stat(labels_csv)  # a link the user named is followed; the target is checked
    except FileNotFoundError:
        raise ParameterError(f"The labels file {shown!r} does not exist.") from None
    except OSError as exc:
        raise ParameterError(f"The labels file {shown!r} cannot be read ({exc.strerror}).") \
            from None
    if stat.S_ISDIR(info.st_mode):
        raise ParameterError(f"The labels file {shown!r} is a folder; give the CSV file itself.")
    if not stat.S_ISREG(info.st_mode):
        raise ParameterError(f"The labels file {shown!r} is {_kind(info.st_mode)}, not a "
                             "regular file; give a CSV file.")
    _check_csv_size(info.st_size, f"labels file {shown!r}", limits)
    try:
        return _read_regular(os.path.realpath(labels_csv), limits.max_csv_bytes)
    except OSError as exc:
        raise ParameterError(f"The labels file {shown!r} cannot be read ({exc.strerror}).") \
            from None


def _amount(size: int) -> str:
    """A size in the unit that reads best: ``75 MB``, ``26 KB``, ``900 bytes``."""
    for unit, scale in (("MB", 2**20), ("KB", 2**10)):
        if size >= scale:
            return f"{size / scale:,.3g} {unit}"
    return f"{size:,} bytes"


def _check_csv_size(size: int, what: str, limits: DatasetLimits) -> None:
    if size > limits.max_csv_bytes:
        raise ParameterError(f"The {what} has {_amount(size)}; a labels CSV may have up to "
                             f"{_amount(limits.max_csv_bytes)}.")


def _csv_for(files: dict[str, int], labels_csv, read_member, limits: DatasetLimits):
    """Labels from an explicit CSV file, or from the one ``*.csv`` at the dataset's top level."""
    if labels_csv is not None:
        path = Path(labels_csv)
        return read_labels_csv(labels_file(path, limits), f"labels file {path.name!r}",
                               max_rows=limits.max_csv_rows)
    top = [p for p in files if p.lower().endswith(".csv") and "/" not in p]
    if len(top) == 1:
        what = f"labels file {top[0]!r}"
        _check_csv_size(files[top[0]], what, limits)  # the declared size, before reading
        try:
            data = read_member(top[0])
        except (OSError, ImageError) as exc:
            raise ParameterError(f"The {what} cannot be read "
                                 f"({getattr(exc, 'strerror', None) or exc}).") from None
        _check_csv_size(len(data), what, limits)
        return read_labels_csv(data, what, max_rows=limits.max_csv_rows)
    return None


_EOCD = b"PK\x05\x06"  # end of central directory record
_EOCD_SIZE = 22
_ZIP64_LOCATOR, _ZIP64_EOCD = b"PK\x06\x07", b"PK\x06\x06"
_ENTRY_BYTES = 1024  # central directory bytes allowed per entry: a name of ~980 characters


def declared_entries(fh) -> tuple[int, int]:
    """``(entries, central directory bytes)`` as a ZIP's end record declares them.

    Read from the last 64 KB + 22 bytes (the record and its comment), before
    :class:`zipfile.ZipFile` is made: it parses the whole central directory as it opens,
    one ``ZipInfo`` per entry (2,000,000 entries: 48 s and 1.3 GB), and only then could the
    count be refused. A small parser rather than ``zipfile._EndRecData``: no private API.
    The directory's size bounds what ``ZipFile`` parses even when the count lies.

    Raises
    ------
    zipfile.BadZipFile
        No end record.
    """
    size = fh.seek(0, io.SEEK_END)
    tail_size = min(size, _EOCD_SIZE + 0xFFFF)
    fh.seek(size - tail_size)
    tail = fh.read(tail_size)
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < _EOCD_SIZE:
        raise zipfile.BadZipFile("no end of central directory record")
    entries, directory = struct.unpack("<HI", tail[at + 10:at + 16])
    if entries == 0xFFFF or directory == 0xFFFFFFFF:  # ZIP64: the locator sits just before
        locator = tail[at - 20:at] if at >= 20 else b""
        if locator[:4] == _ZIP64_LOCATOR:
            fh.seek(struct.unpack("<Q", locator[8:16])[0])
            record = fh.read(56)
            if record[:4] == _ZIP64_EOCD and len(record) == 56:
                entries, directory = struct.unpack("<QQ", record[32:48])
    return entries, directory


def open_zip(source: bytes | str | os.PathLike, classes: Sequence[str], *,
             name: str = "dataset.zip", labels_csv: bytes | None = None,
             limits: DatasetLimits = UPLOAD_LIMITS) -> Dataset:
    """List a ZIP archive without extracting it.

    Parameters
    ----------
    source : bytes or path
        The archive's bytes (an upload) or its path.
    classes : sequence of str
    name : str
        Display name (an upload's file name); never used as a path.
    labels_csv : bytes or None
        A CSV given beside the archive; otherwise one ``*.csv`` at the archive's top is used.
    limits : DatasetLimits

    Raises
    ------
    ParameterError
        Not a ZIP, encrypted, a ZIP bomb, no images, or over the limits (checked from the
        declared sizes, before any member is decompressed).
    """
    display = readable_name(PurePosixPath(str(name).replace("\\", "/")).name) or "dataset.zip"
    if labels_csv is not None:  # the CSV given beside the archive: size first, then rows
        _check_csv_size(len(labels_csv), "labels CSV", limits)
    if isinstance(source, (bytes, bytearray)):
        if len(source) > limits.archive_bytes:  # the bytes received, whatever the browser checked
            raise ParameterError(f"The archive {display!r} has {len(source) / 2**20:,.0f} MB; "
                                 f"the limit is {limits.archive_bytes / 2**20:,.0f} MB.")
        data = bytes(source)
        identity = "zip:" + hashlib.sha256(data).hexdigest()
    else:
        path = Path(source)
        if not path.is_file():
            raise ParameterError(f"The dataset archive {str(source)!r} does not exist.")
        info = path.stat()
        if info.st_size > limits.archive_bytes:
            raise ParameterError(f"The archive {str(source)!r} is larger than "
                                 f"{limits.archive_bytes / 2**20:,.0f} MB.")
        data = path  # read from the file member by member, not loaded whole
        identity = f"zip:{path.resolve()}:{info.st_size}:{info.st_mtime_ns}"
        display = readable_name(path.name)
    try:
        with (io.BytesIO(data) if isinstance(data, bytes) else open(data, "rb")) as fh:
            entries, directory_bytes = declared_entries(fh)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ParameterError(f"The file {display!r} is not a readable ZIP archive ({exc}).") from None
    if entries > limits.max_entries or directory_bytes > limits.max_entries * _ENTRY_BYTES:
        raise ParameterError(f"The archive {display!r} has {entries:,} entries "
                             f"({directory_bytes / 2**20:,.1f} MB of names and sizes); the "
                             f"limit is {limits.max_files:,} images. It was not opened.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ParameterError(f"The file {display!r} is not a readable ZIP archive ({exc}).") from None
    if len(infos) > limits.max_entries:
        raise ParameterError(f"The archive {display!r} has {len(infos):,} entries; the limit is "
                             f"{limits.max_files:,} images.")
    files: dict[str, int] = {}
    members: dict[str, zipfile.ZipInfo] = {}
    skipped: list[SkippedFile] = []
    for info in infos:
        raw = info.filename.replace("\\", "/")
        member = raw.lstrip("/")
        if not info.is_dir() and (raw.startswith("/") or _DRIVE.match(raw)):
            # its first folder would become a label ("abs", "C:")
            skipped.append(SkippedFile(raw, "an absolute path (from the root of a disk); it "
                                            "is not read"))
            continue
        if not info.is_dir() and ".." in PurePosixPath(member).parts:
            skipped.append(SkippedFile(member, "its path climbs out of the archive ('..'); "
                                               "it is not read"))
            continue
        if info.is_dir() or not member or _ignored(member):
            continue
        if info.flag_bits & 0x1:
            raise ParameterError(f"The archive {display!r} is encrypted; give one without a "
                                 "password.")
        if (info.file_size > limits.bomb_floor_bytes
                and info.file_size > limits.max_ratio * max(1, info.compress_size)):
            raise ParameterError(
                f"The archive {display!r} declares that {member!r} expands from "
                f"{info.compress_size:,} to {info.file_size:,} bytes (a possible ZIP bomb); "
                "it was not opened."
            )
        if member in members:
            skipped.append(SkippedFile(member, "appears twice in the archive; the first copy "
                                               "is used"))
            continue
        files[member], members[member] = info.file_size, info

    read = ZipReader(data, members, limits.max_file_bytes, archive)
    if labels_csv is not None:
        csv_labels = read_labels_csv(labels_csv, max_rows=limits.max_csv_rows)
    else:
        csv_labels = _csv_for(files, None, read, limits)
    stem = display.rsplit(".", 1)[0] if "." in display else display
    return _finished(_build(stem, None, files, classes, csv_labels, limits, skipped, identity,
                            read))


def _finished(dataset: Dataset) -> Dataset:
    if not dataset.entries:
        raise ParameterError(
            f"The dataset {dataset.name!r} has no images (PNG, JPEG, WebP, BMP, TIFF or GIF); "
            "expected class folders such as cats/001.jpg, or image files with a labels CSV."
        )
    return dataset


def open_dataset(source: str | os.PathLike, classes: Sequence[str], *,
                 labels_csv: str | os.PathLike | None = None,
                 limits: DatasetLimits = LOCAL_LIMITS) -> Dataset:
    """A folder, a ``.zip`` file, or a built-in sample name (``sample:shapes``, ``sample:shortcut``).

    Raises
    ------
    ParameterError
        Nothing usable at ``source`` (see :func:`open_folder`, :func:`open_zip`).
    """
    text = str(source)
    if text.startswith("sample:"):
        if labels_csv is not None:  # it was silently ignored
            raise ParameterError(f"A labels CSV goes with a folder or a ZIP; the sample {text!r} "
                                 "has its own labels.")
        return sample_dataset(text.split(":", 1)[1], classes)
    path = Path(text)
    if path.is_dir():
        return open_folder(path, classes, labels_csv=labels_csv, limits=limits)
    if path.is_file():
        csv_bytes = None if labels_csv is None else labels_file(labels_csv, limits)
        return open_zip(path, classes, labels_csv=csv_bytes, limits=limits)
    raise ParameterError(
        f"{text!r} is neither a folder, a ZIP file nor a sample "
        f"({', '.join('sample:' + n for n in SAMPLE_DATASETS)})."
    )


# --------------------------------------------------------------------------------------------
# Built-in samples: generated on demand, deterministic, offline
# --------------------------------------------------------------------------------------------
def sample_dataset(name: str, classes: Sequence[str], count: int | None = None) -> Dataset:
    """A built-in dataset of generated scenes, drawn when each image is read.

    Parameters
    ----------
    name : str
        ``"shapes"``: one-shape 150x150 scenes, classes in turn (the demo model's data, seeds
        never used in its training); ``"shortcut"``: the shortcut demo's held-out 64x64 scenes,
        stars with and without the corner tag (``star/tagged_0003.png``, ``star/plain_0051.png``)
        and the other shapes without and with it.
    classes : sequence of str
        The model's class names.
    count : int or None
        Number of images (default :data:`SAMPLE_SIZES`); for ``shortcut``, a multiple of 4.

    Raises
    ------
    ParameterError
        Unknown sample name or a count out of range.
    """
    if name not in SAMPLE_DATASETS:
        raise ParameterError(f"Unknown sample dataset {name!r}; samples: "
                             f"{', '.join(SAMPLE_DATASETS)}.")
    count = SAMPLE_SIZES[name] if count is None else int(count)
    if not 4 <= count <= 10_000:
        raise ParameterError(f"A sample dataset has 4 to 10,000 images; got {count}.")
    from viz_core.demo.shapes import CLASS_NAMES
    if name == "shapes":
        paths, labels, draw = [], [], {}
        for i in range(count):
            seed = _SHAPES_FIRST_SEED + i
            label = CLASS_NAMES[seed % len(CLASS_NAMES)]
            path = f"{label}/scene_{i:04d}.png"
            paths.append(path)
            labels.append(label)
            draw[path] = seed

        read = SampleReader(name, draw)
    else:
        from viz_core.demo.shortcut import HELD_OUT_FIRST_SEED, plan_held_out
        _, label_idx, tagged, groups = plan_held_out(max(1, count // 4))
        paths, labels, draw = [], [], {}
        for i, (k, tag, group) in enumerate(zip(label_idx, tagged, groups)):
            label = CLASS_NAMES[k]
            path = f"{label}/{'tagged' if tag else 'plain'}_{i:04d}.png"
            paths.append(path)
            labels.append(label)
            draw[path] = (HELD_OUT_FIRST_SEED + i, label, bool(tag))

        read = SampleReader(name, draw)
    indices, unknown = match_labels(labels, classes)
    order = np.argsort(paths, kind="stable")
    entries = tuple(DatasetEntry(paths[i], labels[i], indices[i]) for i in order)
    return Dataset(name, "sample", entries, (), tuple(classes), unknown,
                   f"sample:{name}:{count}", read)


def is_tagged_path(path: str) -> bool:
    """True for a ``shortcut`` sample path with the tag (``.../tagged_0003.png``)."""
    return PurePosixPath(path).name.startswith("tagged_")
