"""The Neuron atlas's export bundle: the uploaded ZIP travels in it, and its command, run from
the unzipped folder, remakes atlas.json's numbers and the crops byte for byte."""
from __future__ import annotations

import io
import json
import shlex
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.conftest import tiny_cnn
from tests.test_bundle import rerun_bundle
from viz_core.dataset.listing import open_named as open_data
from viz_core.cli.bundle import export_bundle
from viz_core.errors import ParameterError


def scenes_zip(count=8) -> bytes:
    """``count`` seeded 32x32 PNGs in a flat folder (their labels come in a CSV beside)."""
    rng = np.random.default_rng(11)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(count):
            png = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(png, "PNG")
            archive.writestr(f"scenes/{i:02d}.png", png.getvalue())
    return buffer.getvalue()


def numbers(index: dict) -> dict:
    """atlas.json without what names the run (time, where the crops were written)."""
    out = {k: v for k, v in index.items() if k != "seconds"}
    out["channels"] = [{**unit, **{which: [{k: v for k, v in e.items() if k != "crop_png"}
                                           for e in unit[which]]
                                   for which in ("top", "bottom")}}
                       for unit in index["channels"]]
    return out


@pytest.mark.slow  # runs the bundle's command in a new process (TensorFlow imported again)
def test_an_uploaded_zip_travels_and_the_command_remakes_the_atlas(bench, tmp_path):
    model_path = tmp_path / "tiny.keras"
    tiny_cnn(size=32, classes=3, seed=2).save(model_path)
    labels = "".join(f"{i:02d}.png,{'abc'[i % 3]}\n" for i in range(8)).encode()
    options = ["--model", str(model_path), "--preprocess", "unit",
               "--class-names", "model/labels.txt", "--data", "data/scenes.zip",
               "--labels", "data/labels.csv", "--layer", "conv_b", "--k", "3"]
    files = {"data/scenes.zip": scenes_zip(), "data/labels.csv": labels,
             "model/labels.txt": b"a\nb\nc\n"}
    data = export_bundle("atlas", options, [], {"page": "Neuron atlas"}, bench=bench,
                         files=files)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        stored = {n: archive.read(n) for n in names if n.startswith("pictures/")}
        line = archive.read("command.txt").decode().strip()
        assert archive.read("data/scenes.zip") == files["data/scenes.zip"]
    assert line == f"python -m viz_core atlas {shlex.join(options)} --out pictures"
    index = json.loads(stored["pictures/atlas.json"])
    # the labels CSV and the class names were read from the bundle's copies
    assert index["grouped_by"] == "label" and index["classes"] == ["a", "b", "c"]
    assert index["class_counts"] == [3, 3, 2] and index["images"] == 8
    crops = sorted(n for n in stored if n.endswith(".png"))
    assert len(crops) == 6 * 2 * 3  # channels x (top, bottom) x k

    again = rerun_bundle(data, tmp_path / "unzipped", CNN_VIZ_CACHE=str(tmp_path / "fresh"))
    assert (tmp_path / "fresh").is_dir()  # it computed the atlas again rather than read it
    assert again.keys() == stored.keys()
    for name in crops:
        assert again[name] == stored[name], name
    remade = json.loads(again["pictures/atlas.json"])
    assert numbers(remade) == numbers(index)
    assert [e["crop_png"].rsplit("pictures/", 1)[1] for e in remade["channels"][0]["top"]] == [
        f"crops/c0000_top{i}.png" for i in range(3)]


def test_a_sample_with_a_count_is_the_pages_first_scenes():
    from viz_core.dataset.readers import sample_dataset

    classes = ("circle", "square", "triangle", "star")
    data = open_data("sample:shapes:12", classes)
    page = sample_dataset("shapes", classes, count=12)
    assert data.identity == page.identity and [e.path for e in data.entries] == [
        e.path for e in page.entries]
    assert len(open_data("sample:shapes", classes)) == 240
    with pytest.raises(ParameterError, match="sample:NAME:COUNT"):
        open_data("sample:shapes:many", classes)
