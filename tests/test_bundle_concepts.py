"""The Concepts page's export bundles: the CRAFT bundle's command, run from the unzipped folder,
remakes concepts.json's numbers, its PNGs and its maps byte for byte; the options name the
page's run exactly (a sample with its count, an upload's copy); TCAV's image sets travel as
ZIPs that give the command the pixels the page read."""
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
from ui.concepts_export import concepts_options, images_zip, set_zip_name, tcav_options
from viz_core.cli.bundle import export_bundle, option_pairs


def scenes_zip(count=8) -> bytes:
    """``count`` seeded 32x32 PNGs in a flat folder (their labels come in a CSV beside)."""
    rng = np.random.default_rng(12)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(count):
            png = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(png, "PNG")
            archive.writestr(f"scenes/{i:02d}.png", png.getvalue())
    return buffer.getvalue()


def numbers(index: dict) -> dict:
    """concepts.json without what names the run (time, where files were written)."""
    out = {k: v for k, v in index.items() if k != "seconds"}
    out["concepts"] = [{k: v for k, v in c.items() if k not in ("crops", "mean_map_png")}
                       for c in index["concepts"]]
    out["images"] = [{k: v for k, v in i.items() if k != "maps_npy"} for i in index["images"]]
    return out


@pytest.mark.slow  # runs the bundle's command in a new process (TensorFlow imported again)
def test_an_uploaded_zip_travels_and_the_command_remakes_the_concepts(bench, tmp_path):
    model_path = tmp_path / "tiny.keras"
    tiny_cnn(size=32, classes=3, seed=2).save(model_path)
    labels = "".join(f"{i:02d}.png,{'abc'[i % 3]}\n" for i in range(8)).encode()
    words = concepts_options(["--model", str(model_path), "--preprocess", "unit",
                              "--labels", "model/labels.txt"], "upload", class_name="a",
                             layer="conv_b", concepts=3, limit=50, upload_name="scenes.zip",
                             with_labels=True)
    options = [*words, "--designs", "8", "--top", "3"]
    files = {"data/scenes.zip": scenes_zip(), "data/labels.csv": labels,
             "model/labels.txt": b"a\nb\nc\n"}
    data = export_bundle("concepts", options, [], {"page": "Concepts"}, bench=bench,
                         files=files)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        stored = {n: archive.read(n) for n in archive.namelist() if n.startswith("pictures/")}
        line = archive.read("command.txt").decode().strip()
        assert archive.read("data/scenes.zip") == files["data/scenes.zip"]
    assert line == f"python -m viz_core concepts {shlex.join(options)} --out pictures"
    index = json.loads(stored["pictures/concepts.json"])
    # the labels CSV and the class names were read from the bundle's copies: 00, 03, 06 are "a"
    assert index["class"] == "a" and index["chosen_by"] == "label"
    assert [i["image"] for i in index["images"]] == ["00.png", "03.png", "06.png"]
    assert sum(c["importance"] for c in index["concepts"]) == pytest.approx(1.0)
    pngs = sorted(n for n in stored if n.endswith(".png"))
    assert len(pngs) == 3 * 3 + 3  # concepts x crops, and a mean map per concept
    maps = np.load(io.BytesIO(stored["pictures/maps/image_0000.npy"]))
    assert maps.shape == (3, 32, 32) and maps.dtype == np.float32

    again = rerun_bundle(data, tmp_path / "unzipped", CNN_VIZ_CACHE=str(tmp_path / "fresh"))
    assert (tmp_path / "fresh").is_dir()  # it computed the concepts again rather than read them
    assert again.keys() == stored.keys()
    for name in stored:
        if name != "pictures/concepts.json":
            assert again[name] == stored[name], name  # PNGs and .npy maps, byte for byte
    remade = json.loads(again["pictures/concepts.json"])
    assert numbers(remade) == numbers(index)
    assert remade["concepts"][0]["mean_map_png"].endswith("pictures/concept0_mean_map.png")


def test_the_bundle_of_a_sample_is_the_run_the_page_made(bench):
    """The page finds concepts through the disk cache; the bundle's command, run on the same
    workbench, reads that very run back (same numbers, same recorded time)."""
    from viz_core.dataset.concepts import cached_concepts
    from viz_core.dataset.readers import sample_dataset

    model = bench.builtin_model("shortcut_demo", "imagenet")
    shown = cached_concepts(model, sample_dataset("shortcut", model.labels, count=16), "star",
                            "conv2d_4", disk=bench.disk, concepts=3, limit=24)
    options = concepts_options(["--model", "shortcut_demo"], "shortcut", class_name="star",
                               layer="conv2d_4", concepts=3, limit=24, count=16)
    assert option_pairs("concepts", options) == [
        ("--model", "shortcut_demo"), ("--data", "sample:shortcut:16"), ("--class", "star"),
        ("--layer", "conv2d_4"), ("--concepts", "3"), ("--limit", "24")]
    data = export_bundle("concepts", options, [], {"page": "Concepts"}, bench=bench)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        index = json.loads(archive.read("pictures/concepts.json"))
        crop = np.asarray(Image.open(io.BytesIO(archive.read("pictures/crops/concept0_0.png"))))
    assert index["seconds"] == shown.craft.seconds  # read back, not computed again
    assert [c["importance"] for c in index["concepts"]] == shown.craft.importance.tolist()
    assert [i["image"] for i in index["images"]] == list(shown.names)
    side = shown.craft.top_crop_pixels.shape[2]
    assert crop.shape[0] % side == 0  # the crop enlarged by a whole factor
    factor = crop.shape[0] // side
    np.testing.assert_array_equal(crop[::factor, ::factor], shown.craft.top_crop_pixels[0, 0])


def test_tcav_options_name_the_tabs_sets():
    words = tcav_options(["--model", "model/model.keras", "--preprocess", "unit",
                          "--labels", "model/labels.txt"], "upload", class_name="-star",
                         layer="conv_b", runs=12, count=50,
                         concept_zip=set_zip_name("concept", "My stripes.zip"),
                         random_zip=None, upload_name="class scenes.zip")
    assert option_pairs("tcav", words) == [
        ("--model", "model/model.keras"), ("--preprocess", "unit"),
        ("--class-names", "model/labels.txt"), ("--data", "data/class_scenes.zip"),
        ("--concept", "data/concept/My_stripes.zip"), ("--class", "-star"),
        ("--layer", "conv_b"), ("--random-runs", "12"), ("--images", "50")]
    sample = tcav_options(["--model", "shortcut_demo"], "shortcut", class_name="star",
                          layer="conv2d_4", runs=20, count=50, sample_count=200,
                          concept_zip="data/concept/tag.zip",
                          random_zip="data/random/plain.zip")
    assert sample[2:8] == ["--data", "sample:shortcut:200", "--concept", "data/concept/tag.zip",
                           "--random", "data/random/plain.zip"]


def test_an_example_set_travels_as_a_zip_of_the_same_pixels():
    from viz_core.dataset.readers import open_zip
    from viz_core.dataset.tcav_run import example_images

    classes = ("circle", "square", "triangle", "star")
    example = example_images("tag", classes, count=6)
    back = open_zip(images_zip(example), classes, name="tag.zip")
    assert [e.path for e in back.entries] == [e.path for e in example.entries]
    for mine, theirs in zip(back.entries, example.entries):
        np.testing.assert_array_equal(back.load(mine).pixels, example.load(theirs).pixels)


@pytest.mark.slow  # runs the bundle's command in a new process (TensorFlow imported again)
def test_a_tcav_bundle_carries_its_image_sets_and_the_command_remakes_the_score(bench, tmp_path):
    model_path = tmp_path / "tiny.keras"
    tiny_cnn(size=32, classes=3, seed=4).save(model_path)
    options = tcav_options(["--model", str(model_path), "--preprocess", "unit"], "upload",
                           class_name="1", layer="conv_b", runs=4, count=8,
                           concept_zip="data/concept/bright.zip",
                           random_zip="data/random/noise.zip", upload_name="scenes.zip")
    bright = io.BytesIO()
    with zipfile.ZipFile(bright, "w") as archive:
        for i in range(6):
            png = io.BytesIO()
            Image.fromarray(np.full((32, 32, 3), 200 + 5 * i, np.uint8)).save(png, "PNG")
            archive.writestr(f"bright/{i}.png", png.getvalue())
    files = {"data/scenes.zip": scenes_zip(8), "data/concept/bright.zip": bright.getvalue(),
             "data/random/noise.zip": scenes_zip(16)}
    data = export_bundle("tcav", options, [], {"page": "Concepts", "tab": "TCAV"}, bench=bench,
                         files=files)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        stored = json.loads(archive.read("pictures/tcav.json"))
        assert archive.read("data/concept/bright.zip") == files["data/concept/bright.zip"]
    assert 0.0 <= stored["score"] <= 1.0 and len(stored["random_scores"]) == 4
    again = rerun_bundle(data, tmp_path / "unzipped", CNN_VIZ_CACHE=str(tmp_path / "fresh"))
    remade = json.loads(again["pictures/tcav.json"])
    for key in ("class", "layer", "score", "p_value", "significant", "random_scores"):
        assert remade[key] == stored[key], key
