"""Dataset readers against hostile folders and uploads: named pipes, sockets, names that are
not UTF-8, labels CSVs and ZIPs far over the limits (scaled down: the same checks with small
limits), all refused or skipped at once with a message, without reading what they refuse."""
from __future__ import annotations

import io
import json
import os
import socket
import struct
import threading
import tracemalloc
import zipfile

import pytest
from PIL import Image

from tests.images import encode
from viz_core.dataset import readers
from viz_core.dataset.readers import (
    UNMATCHED_SHOWN,
    DatasetLimits,
    FolderReader,
    declared_entries,
    open_dataset,
    open_folder,
    open_zip,
)
from viz_core.errors import ImageError, ParameterError

CLASSES = ("circle", "square", "triangle", "star")
SMALL = DatasetLimits(max_files=100, max_total_bytes=10**8, max_csv_bytes=1000, max_csv_rows=10)


def png(value: int = 128) -> bytes:
    return encode(Image.new("RGB", (20, 20), (value, value, value)), "PNG")


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def within(seconds: float, call):
    """``call()``'s result, failing (not hanging) when it takes longer than ``seconds``."""
    box = {}

    def run():
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s (blocked on a pipe?)"
    if "error" in box:
        raise box["error"]
    return box["value"]


def peak_bytes(call) -> int:
    """The peak of Python allocations while ``call()`` runs (it is expected to raise)."""
    tracemalloc.start()
    try:
        with pytest.raises(ParameterError) as caught:
            call()
        return tracemalloc.get_traced_memory()[1], str(caught.value)
    finally:
        tracemalloc.stop()


# -- files that are not regular files -------------------------------------------------------------
def test_a_named_pipe_as_an_image_or_labels_csv_is_skipped_never_opened(tmp_path):
    (tmp_path / "a.png").write_bytes(png(10))
    os.mkfifo(tmp_path / "x.png")
    os.mkfifo(tmp_path / "labels.csv")
    data = within(10, lambda: open_folder(tmp_path, CLASSES))
    assert [e.path for e in data.entries] == ["a.png"]
    reasons = {s.file: s.reason for s in data.skipped}
    assert reasons == {"labels.csv": "a named pipe (FIFO); only regular files are read",
                       "x.png": "a named pipe (FIFO); only regular files are read"}
    assert data.layout == "unlabelled"  # the pipe was not taken as the labels file


def test_a_pipe_put_in_place_of_a_listed_image_is_refused_when_read(tmp_path):
    (tmp_path / "a.png").write_bytes(png(10))
    data = open_folder(tmp_path, CLASSES)
    (tmp_path / "a.png").unlink()
    os.mkfifo(tmp_path / "a.png")
    with pytest.raises(ImageError, match="named pipe"):
        within(10, lambda: data.load(data.entries[0]))
    with pytest.raises(ImageError, match="named pipe"):
        within(10, lambda: FolderReader(tmp_path)("a.png"))


def test_a_socket_is_skipped_with_its_kind(tmp_path):
    (tmp_path / "a.png").write_bytes(png(10))
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "s.png"))
        data = open_folder(tmp_path, CLASSES)
    finally:
        server.close()
    assert {s.file: s.reason for s in data.skipped} == {
        "s.png": "a socket; only regular files are read"}


def test_labels_given_as_a_pipe_or_a_folder_say_what_they_are(tmp_path):
    (tmp_path / "a.png").write_bytes(png(10))
    os.mkfifo(tmp_path / "pipe.csv")
    with pytest.raises(ParameterError, match="is a named pipe \\(FIFO\\), not a regular file"):
        within(10, lambda: open_folder(tmp_path, CLASSES, labels_csv=tmp_path / "pipe.csv"))
    with pytest.raises(ParameterError, match="is a folder; give the CSV file itself"):
        open_folder(tmp_path, CLASSES, labels_csv=tmp_path)
    archive = tmp_path / "d.zip"
    archive.write_bytes(zipped({"a.png": png()}))
    with pytest.raises(ParameterError, match="named pipe"):
        within(10, lambda: open_dataset(archive, CLASSES, labels_csv=tmp_path / "pipe.csv"))


# -- names that are not UTF-8 ---------------------------------------------------------------------
def test_names_that_are_not_utf8_are_listed_escaped_and_skipped(tmp_path):
    root = os.fsencode(tmp_path)
    os.makedirs(os.path.join(root, b"circle"))
    with open(os.path.join(root, b"circle", b"ok.png"), "wb") as fh:
        fh.write(png(30))
    with open(os.path.join(root, b"circle", b"caf\xe9.png"), "wb") as fh:
        fh.write(png(40))
    os.makedirs(os.path.join(root, b"sq\xffuare"))
    with open(os.path.join(root, b"sq\xffuare", b"b.png"), "wb") as fh:
        fh.write(png(50))
    data = open_folder(tmp_path, CLASSES)
    assert [(e.path, e.class_index) for e in data.entries] == [("circle/ok.png", 0)]
    assert {s.file: s.reason for s in data.skipped} == {
        "circle/caf\\xe9.png": "its name is not UTF-8 text; rename it to read it",
        "sq\\xffuare/": "a folder whose name is not UTF-8 text; rename it to read its images"}
    json.dumps([s.file for s in data.skipped]).encode("utf-8")  # can be shown and written
    assert len(data.identity) == 64


def test_a_dataset_folder_whose_own_name_is_not_utf8_is_listed(tmp_path):
    root = os.path.join(os.fsencode(tmp_path), b"sh\xe9pes")
    os.makedirs(os.path.join(root, b"star"))
    with open(os.path.join(root, b"star", b"a.png"), "wb") as fh:
        fh.write(png(60))
    data = open_folder(os.fsdecode(root), CLASSES)
    assert data.name == "sh\\xe9pes"
    assert data.load(data.entries[0]).pixels[0, 0, 0] == 60


# -- labels CSVs over the limits --------------------------------------------------------------------
def test_a_labels_csv_beside_a_zip_is_refused_by_size_before_parsing():
    archive = zipped({"a.png": png()})
    big = b"a.png,circle\n" * 2000  # 26 KB against a 1,000-byte limit
    peak, message = peak_bytes(lambda: open_zip(archive, CLASSES, labels_csv=big, limits=SMALL))
    assert message == "The labels CSV has 25.4 KB; a labels CSV may have up to 1,000 bytes."
    assert peak < 20_000  # less than the CSV itself: it was never decoded or split


def test_the_default_csv_limit_applies_to_a_csv_beside_an_upload():
    big = b"x" * (8 * 2**20 + 1)
    with pytest.raises(ParameterError, match="up to 8 MB"):
        open_zip(zipped({"a.png": png()}), CLASSES, labels_csv=big)


def test_a_labels_csv_inside_a_zip_or_a_folder_is_refused_by_its_size(tmp_path):
    rows = b"".join(b"f%d.png,circle\n" % i for i in range(200))
    with pytest.raises(ParameterError, match="labels file 'labels.csv' has .* up to"):
        open_zip(zipped({"a.png": png(), "labels.csv": rows}), CLASSES, limits=SMALL)
    (tmp_path / "a.png").write_bytes(png())
    (tmp_path / "labels.csv").write_bytes(rows)
    with pytest.raises(ParameterError, match="labels file 'labels.csv' has .* up to"):
        open_folder(tmp_path, CLASSES, limits=SMALL)


def test_labels_option_with_a_zip_refuses_a_large_csv_without_reading_it(tmp_path, monkeypatch):
    archive = tmp_path / "d.zip"
    archive.write_bytes(zipped({"a.png": png()}))
    csv_file = tmp_path / "big.csv"
    csv_file.write_bytes(b"a.png,circle\n" * 1000)
    monkeypatch.setattr(readers, "_read_regular", lambda *a, **k: pytest.fail("read"))
    with pytest.raises(ParameterError, match="labels file .*big.csv' has .* up to"):
        open_dataset(archive, CLASSES, labels_csv=csv_file, limits=SMALL)


def test_a_labels_csv_with_too_many_rows_stops_at_the_first_row_over():
    rows = b"".join(b"f%d.png,circle\n" % i for i in range(60))
    limits = DatasetLimits(max_files=100, max_total_bytes=10**8, max_csv_rows=10)
    peak, message = peak_bytes(lambda: open_zip(zipped({"a.png": png()}), CLASSES,
                                                labels_csv=rows, limits=limits))
    assert message == "The labels CSV has more than 10 rows; the limit is 10."


def test_rows_naming_missing_files_are_summarised_not_one_object_each():
    rows = b"a.png,circle\n" + b"".join(b"gone%03d.png,star\n" % i for i in range(100))
    data = open_zip(zipped({"a.png": png()}), CLASSES, labels_csv=rows)
    assert len(data.skipped) == UNMATCHED_SHOWN + 1 == 21
    assert [s.file for s in data.skipped[:2]] == ["gone000.png", "gone001.png"]
    assert data.skipped[-1].file == "(labels CSV: 80 more rows)"
    assert data.skipped[-1].reason.startswith("100 rows of the labels CSV name files")
    assert [(e.path, e.class_index) for e in data.entries] == [("a.png", 0)]


# -- ZIPs over the limits -----------------------------------------------------------------------
def test_zip_bytes_over_the_archive_limit_are_refused_before_opening(monkeypatch):
    archive = zipped({"a.png": png(), "b.png": png(1)})
    monkeypatch.setattr(readers.zipfile, "ZipFile", lambda *a, **k: pytest.fail("parsed"))
    limits = DatasetLimits(max_files=10, max_total_bytes=10**8, max_archive_bytes=100)
    with pytest.raises(ParameterError, match=r"the limit is 0 MB"):
        open_zip(archive, CLASSES, limits=limits)


def test_the_entry_count_is_read_from_the_end_record_before_the_directory(monkeypatch):
    limits = DatasetLimits(max_files=5, max_total_bytes=10**8)  # 1,010 entries at most
    archive = zipped({f"e/{i}.txt": b"" for i in range(limits.max_entries + 1)})
    assert declared_entries(io.BytesIO(archive))[0] == 1011
    monkeypatch.setattr(readers.zipfile, "ZipFile", lambda *a, **k: pytest.fail("parsed"))
    with pytest.raises(ParameterError, match="has 1,011 entries .* It was not opened"):
        open_zip(archive, CLASSES, limits=limits)


def test_an_end_record_that_understates_the_count_is_caught_by_the_directory_size(monkeypatch):
    limits = DatasetLimits(max_files=5, max_total_bytes=10**8)
    archive = bytearray(zipped({f"{'n' * 1200}/{i}.txt": b"" for i in range(900)}))
    at = archive.rfind(b"PK\x05\x06")
    archive[at + 8:at + 12] = struct.pack("<HH", 1, 1)  # "1 entry" in a 1.1 MB directory
    monkeypatch.setattr(readers.zipfile, "ZipFile", lambda *a, **k: pytest.fail("parsed"))
    with pytest.raises(ParameterError, match="has 1 entries \\(1.1 MB of names"):
        open_zip(bytes(archive), CLASSES, limits=limits)


def test_a_zip_without_an_end_record_is_not_a_zip():
    with pytest.raises(ParameterError, match="not a readable ZIP.*no end of central"):
        open_zip(b"PK\x03\x04" + b"\0" * 100, CLASSES)


# -- smaller findings -----------------------------------------------------------------------------
def test_zip_members_with_absolute_paths_are_skipped_not_labelled():
    archive = zipped({"/abs/a.png": png(1), "C:/win/b.png": png(2), "c:\\d\\e.png": png(3),
                      "circle/ok.png": png(4)})
    data = open_zip(archive, CLASSES)
    assert [(e.path, e.label) for e in data.entries] == [("circle/ok.png", "circle")]
    assert {s.file: s.reason for s in data.skipped} == dict.fromkeys(
        ["/abs/a.png", "C:/win/b.png", "c:/d/e.png"],
        "an absolute path (from the root of a disk); it is not read")
    assert data.unknown_labels == ()


def test_a_labels_csv_with_a_sample_is_refused_not_ignored(tmp_path):
    (tmp_path / "l.csv").write_text("a.png,circle\n")
    with pytest.raises(ParameterError, match="the sample 'sample:shapes' has its own labels"):
        open_dataset("sample:shapes", CLASSES, labels_csv=tmp_path / "l.csv")
