"""Dataset intake: layouts, labels matched to classes, skipped files, limits, ZIP bombs, samples."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.images import encode
from viz_core.dataset.readers import (
    DatasetLimits,
    is_tagged_path,
    match_labels,
    open_dataset,
    open_folder,
    open_zip,
    read_labels_csv,
    sample_dataset,
)
from viz_core.errors import ImageError, ParameterError

CLASSES = ("circle", "square", "triangle", "star")


def png(value: int = 128, side: int = 20) -> bytes:
    return encode(Image.new("RGB", (side, side), (value, value, value)), "PNG")


def write(root, files: dict[str, bytes]):
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def zipped(files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_class_folders_match_labels_and_report_unknown_ones(tmp_path):
    write(tmp_path, {"circle/a.png": png(10), "Circle/b.png": png(20), "star/c.png": png(30),
                     "horse/d.png": png(40), "notes.txt": b"hello"})
    data = open_folder(tmp_path, CLASSES)
    assert data.layout == "class folders"
    assert [(e.path, e.label, e.class_index) for e in data.entries] == [
        ("Circle/b.png", "Circle", 0), ("circle/a.png", "circle", 0),
        ("horse/d.png", "horse", None), ("star/c.png", "star", 3)]
    assert data.unknown_labels == (("horse", 1),)
    assert [s.file for s in data.skipped] == ["notes.txt"]
    assert "not an image" in data.skipped[0].reason
    assert data.load(data.entries[1]).pixels[0, 0].tolist() == [10, 10, 10]


def test_a_bad_file_fails_alone_with_its_name(tmp_path):
    write(tmp_path, {"circle/good.png": png(), "circle/broken.png": png()[:40]})
    data = open_folder(tmp_path, CLASSES)
    broken = next(e for e in data.entries if e.path == "circle/broken.png")
    with pytest.raises(ImageError, match="broken"):
        data.load(broken)
    assert data.load(next(e for e in data.entries if e.path == "circle/good.png")).size == (20, 20)


def test_flat_folder_with_csv_and_without_labels(tmp_path):
    write(tmp_path, {"a.png": png(), "b.png": png(), "c.png": png(),
                     "labels.csv": b"filename,label\na.png,square\nb.png,zebra\nmissing.png,star\n"})
    data = open_folder(tmp_path, CLASSES)
    assert data.layout == "csv"
    assert [(e.path, e.label, e.class_index) for e in data.entries] == [
        ("a.png", "square", 1), ("b.png", "zebra", None), ("c.png", None, None)]
    assert data.unknown_labels == (("zebra", 1),)
    assert [s.file for s in data.skipped] == ["missing.png"]
    plain = open_folder(write(tmp_path / "flat", {"x.png": png(), "y.jpg": png()}), CLASSES)
    assert plain.layout == "unlabelled" and not plain.labelled


def test_csv_rows_need_two_columns():
    assert read_labels_csv(b"a.png,star\r\nb.png, circle \n") == {"a.png": "star",
                                                                  "b.png": "circle"}
    with pytest.raises(ParameterError, match="Row 2"):
        read_labels_csv(b"a.png,star\nb.png\n")


def test_labels_match_ignoring_case_and_underscores():
    indices, unknown = match_labels(["Golden_Retriever", "golden retriever", "cat", None],
                                    ["tabby", "golden retriever"])
    assert indices == [1, 1, None, None] and unknown == (("cat", 1),)


def test_zip_with_a_wrapper_folder_is_read_in_memory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    archive = zipped({"shapes/circle/1.png": png(50), "shapes/square/2.png": png(60),
                      "__MACOSX/shapes/._1.png": b"junk", "../evil.png": png()})
    data = open_zip(archive, CLASSES, name="../../my shapes.zip")
    assert data.name == "my shapes"
    assert [(e.path, e.class_index) for e in data.entries] == [("circle/1.png", 0),
                                                               ("square/2.png", 1)]
    assert [s.file for s in data.skipped] == ["../evil.png"]
    assert data.load(data.entries[1]).pixels[0, 0, 0] == 60
    assert list(tmp_path.iterdir()) == []  # nothing was written anywhere


def test_zip_bomb_is_refused_before_decompressing():
    bomb = zipped({"circle/huge.png": b"\0" * (8 * 2**20)})
    with pytest.raises(ParameterError, match="ZIP bomb"):
        open_zip(bomb, CLASSES)


def test_limits_are_enforced_and_stated(tmp_path):
    write(tmp_path, {f"circle/{i}.png": png() for i in range(5)})
    with pytest.raises(ParameterError, match="5 images; the limit is 4"):
        open_folder(tmp_path, CLASSES, limits=DatasetLimits(max_files=4, max_total_bytes=10**9))
    with pytest.raises(ParameterError, match="the limit is 0 MB"):
        open_folder(tmp_path, CLASSES, limits=DatasetLimits(max_files=9, max_total_bytes=100))
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    write(tmp_path, {"circle/big.png": encode(Image.fromarray(noise), "PNG")})
    small = DatasetLimits(max_files=9, max_total_bytes=10**9, max_file_bytes=5000)
    listed = open_folder(tmp_path, CLASSES, limits=small)
    assert len(listed) == 5 and [s.file for s in listed.skipped] == ["circle/big.png"]
    assert "images up to 0 MB" not in listed.skipped[0].reason
    with pytest.raises(ParameterError, match="not a readable ZIP"):
        open_zip(b"PK\x03\x04 not really", CLASSES)
    with pytest.raises(ParameterError, match="no images"):
        open_folder(write(tmp_path / "empty", {"a.txt": b"x"}), CLASSES)
    with pytest.raises(ParameterError, match="neither a folder"):
        open_dataset(tmp_path / "nowhere", CLASSES)


def test_sample_datasets_are_labelled_and_deterministic():
    shapes = sample_dataset("shapes", CLASSES, count=8)
    assert len(shapes) == 8 and shapes.layout == "sample"
    assert sorted(e.class_index for e in shapes.entries) == [0, 0, 1, 1, 2, 2, 3, 3]
    first = shapes.load(shapes.entries[0]).pixels
    assert first.shape == (150, 150, 3)
    assert np.array_equal(first, sample_dataset("shapes", CLASSES, count=8).load(
        shapes.entries[0]).pixels)
    shortcut = open_dataset("sample:shortcut", CLASSES)
    assert len(shortcut) == 200
    stars = [e for e in shortcut.entries if e.label == "star"]
    assert sum(is_tagged_path(e.path) for e in stars) == 50 == len(stars) // 2
    tagged = shortcut.load(next(e for e in stars if is_tagged_path(e.path))).pixels
    assert tagged.shape == (64, 64, 3) and tagged[2, 2].tolist() == [255, 255, 255]
    assert tagged[2, 5].tolist() == [0, 0, 0]
    with pytest.raises(ParameterError, match="Unknown sample"):
        sample_dataset("horses", CLASSES)


def test_dataset_command_writes_the_contract(tmp_path, capsys):
    import json

    from viz_core.cli import main

    out = tmp_path / "out"
    assert main(["dataset", "--data", "sample:shapes", "--limit", "8", "--batch-size", "4",
                 "--clusters", "1", "--out", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["images"] == 8 and payload["skipped"] == [] and payload["accuracy"] == 1.0
    assert payload["classes"] == list(CLASSES) and np.trace(payload["confusion"]) == 8
    first = payload["results"][0]
    assert set(first) == {"image", "label", "predicted", "class_index", "probability",
                          "correct", "npy", "cluster"}
    heat = np.load(first["npy"])
    assert heat.shape == (150, 150) and heat.dtype == np.float32 and 0 <= heat.min() <= 1
    assert {(c["class"], c["id"], c["size"]) for c in payload["clusters"]} == {
        (name, 0, 2) for name in CLASSES}
    assert all(Image.open(c["png"]).size[1] == 112 for c in payload["clusters"])
    assert json.loads((out / "summary.json").read_text())["images"] == 8
    assert main(["dataset", "--data", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert main(["dataset", "--data", "sample:shapes", "--clusters", "many",
                 "--out", str(out)]) == 2
    assert "auto or a whole number from 1 to 12" in capsys.readouterr().err


def test_zip_file_on_disk_with_a_labels_csv_beside_it(tmp_path):
    archive = tmp_path / "flat.zip"
    archive.write_bytes(zipped({"a.png": png(1), "b.png": png(2)}))
    (tmp_path / "labels.csv").write_text("a.png,triangle\nb.png,star\n")
    data = open_dataset(archive, CLASSES, labels_csv=tmp_path / "labels.csv")
    assert data.name == "flat" and data.layout == "csv"
    assert [(e.path, e.class_index) for e in data.entries] == [("a.png", 2), ("b.png", 3)]
    assert data.load(data.entries[1]).pixels[0, 0, 0] == 2
    archive.write_bytes(zipped({"a.png": png(1), "b.png": png(3), "c.txt": b"changed"}))
    assert open_dataset(archive, CLASSES, labels_csv=tmp_path / "labels.csv").identity != (
        data.identity)  # a changed archive is a new dataset for the caches
