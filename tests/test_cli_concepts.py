"""``python -m viz_core concepts``: the contract's JSON and files on the shortcut demo, the disk
cache, an unlabelled folder, bad input. Most checks call :func:`viz_core.cli.main` in this
process; one subprocess runs the command as a user would."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import tiny_cnn
from viz_core.cli import main

ROOT = Path(__file__).resolve().parents[1]
STAR = ["--model", "shortcut_demo", "--data", "sample:shortcut", "--class", "star",
        "--limit", "16", "--concepts", "4", "--designs", "8"]


def run_main(capsys, monkeypatch, *args, cache):
    monkeypatch.setenv("CNN_VIZ_CACHE", str(cache))
    code = main(["concepts", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_contract_on_the_shortcut_demo(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    code, stdout, _ = run_main(capsys, monkeypatch, *STAR, "--out", str(out), "--json",
                               cache=tmp_path / "cache")
    assert code == 0
    index = json.loads(stdout)
    assert index == json.loads((out / "concepts.json").read_text())  # the same object
    assert index["class"] == "star" and index["layer"] == "conv2d_4"
    concepts = index["concepts"]
    assert [c["id"] for c in concepts] == [0, 1, 2, 3]
    assert sum(c["importance"] for c in concepts) == pytest.approx(1.0)
    assert all(a["importance"] >= b["importance"] for a, b in zip(concepts, concepts[1:]))
    assert 0 < index["relative_error"] < 1
    # every image labelled star, each with its (K, H, W) maps at the model's input size
    assert len(index["images"]) == 16
    assert all(row["image"].startswith("star/") for row in index["images"])
    tagged = [row for row in index["images"] if "/tagged_" in row["image"]]
    assert len(tagged) == 8
    for row in tagged:
        maps = np.load(row["maps_npy"])
        assert maps.shape == (4, 64, 64) and maps.dtype == np.float32
        # the first concept (most important) sits in the tag's corner
        assert maps[0, :32, :32].sum() > 0.5 * maps[0].sum()
    # crops are PNGs of the images' pixels (enlarged 4x: 18 px crops shown at 72 px)
    first = concepts[0]
    assert len(first["crops"]) == 8
    crop = np.asarray(Image.open(first["crops"][0]))
    assert crop.shape == (72, 72, 3)
    source = first["crop_sources"][0]
    assert source["box"][:2] == [0, 0] and "/tagged_" in source["image"]
    from viz_core.dataset.readers import sample_dataset
    from viz_core.demo.shortcut import load_shortcut_model

    model = load_shortcut_model()
    data = sample_dataset("shortcut", model.labels)
    entry = next(e for e in data.entries if e.path == source["image"])
    pixels = np.asarray(data.load(entry).pixels)
    x0, y0, x1, y1 = source["box"]
    np.testing.assert_array_equal(crop[::4, ::4], pixels[y0:y1, x0:x1])
    mean_map = np.asarray(Image.open(first["mean_map_png"]))
    assert mean_map.shape == (64, 64, 3)


def test_a_second_run_is_read_from_the_cache(tmp_path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    args = [*STAR, "--out", str(tmp_path / "a"), "--json"]
    assert run_main(capsys, monkeypatch, *args, cache=cache)[0] == 0
    assert len(list(cache.glob("*.npz"))) == 1
    stamp = next(cache.glob("*.npz")).stat().st_mtime_ns
    code, stdout, _ = run_main(capsys, monkeypatch, *STAR, "--out", str(tmp_path / "b"),
                               "--json", cache=cache)
    assert code == 0 and len(list(cache.glob("*.npz"))) == 1
    again = json.loads(stdout)
    first = json.loads((tmp_path / "a" / "concepts.json").read_text())
    assert [c["importance"] for c in again["concepts"]] == \
        [c["importance"] for c in first["concepts"]]
    assert again["seconds"] == first["seconds"]  # the stored run, not a new one
    assert next(cache.glob("*.npz")).stat().st_mtime_ns >= stamp


def test_an_unlabelled_folder_is_all_the_class(tmp_path, capsys, monkeypatch):
    model_file = tmp_path / "tiny.keras"
    tiny_cnn(size=32, classes=3, seed=4).save(model_file)
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            folder / f"p{i}.png")
    code, stdout, _ = run_main(capsys, monkeypatch, "--model", str(model_file), "--data",
                               str(folder), "--class", "1", "--layer", "conv_b",
                               "--concepts", "3", "--designs", "8", "--out",
                               str(tmp_path / "out"), "--json", cache=tmp_path / "cache")
    assert code == 0
    index = json.loads(stdout)
    assert index["chosen_by"] == "all" and len(index["images"]) == 3
    assert np.load(index["images"][2]["maps_npy"]).shape == (3, 32, 32)


@pytest.mark.parametrize("args, message", [
    (["--class", "hexagon"], "No class is called 'hexagon'"),
    (["--class", "star", "--concepts", "1"], "number of concepts must be"),
    (["--class", "star", "--layer", "nope"], "no layer called 'nope'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, args, message):
    code, _, err = run_main(capsys, monkeypatch, "--model", "shortcut_demo", "--data",
                            "sample:shortcut", *args, "--out", str(tmp_path / "o"),
                            cache=tmp_path / "cache")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_the_commands_bounds_are_the_backends():
    from viz_core.cli import concepts as command
    from viz_core.dataset.concepts import MAX_LIMIT
    from viz_core.methods.craft import MAX_CONCEPTS

    assert (command.CONCEPTS.low, command.CONCEPTS.high) == (2, MAX_CONCEPTS)
    assert command.IMAGES.high == MAX_LIMIT


@pytest.mark.slow  # a new process, importing TensorFlow
def test_the_command_as_a_user_runs_it(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT),
               CNN_VIZ_CACHE=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-m", "viz_core", "concepts", *STAR, "--out",
                           str(tmp_path / "out"), "--json"], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    index = json.loads(done.stdout)
    assert index["concepts"][0]["crop_sources"][0]["box"][:2] == [0, 0]
    assert np.load(index["images"][0]["maps_npy"]).shape == (4, 64, 64)
