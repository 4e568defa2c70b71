"""``python -m viz_core tcav``: the contract's JSON on the shortcut demo (the tag concept scores
"star" high and significant, "circle" low), a concept in a ZIP gives the same numbers as the
same images in a folder, an unlabelled dataset uses all its images, random images drawn from
the dataset, bad input. Most checks call :func:`viz_core.cli.main` in this process; one
subprocess runs the command as a user would."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from viz_core.cli import main
from viz_core.demo.shapes import CLASS_NAMES
from viz_core.demo.shortcut import shortcut_scene

ROOT = Path(__file__).resolve().parents[1]
SEED = 3_400_000_000  # beyond the shortcut demo's training and held-out seeds
CONTRACT = {"class", "layer", "concept", "score", "p_value", "significant", "random_scores"}


def _scenes(folder: Path, count: int, labels, tagged: bool, offset: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        label = labels[i % len(labels)]
        Image.fromarray(shortcut_scene(SEED + offset + i, label, tagged)).save(
            folder / f"{label}_{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tcav")
    tag = _scenes(root / "tag", 16, ["circle", "square", "triangle"], True, 0)
    with zipfile.ZipFile(root / "tag.zip", "w") as archive:
        for path in sorted(tag.iterdir()):
            archive.write(path, f"tag/{path.name}")
    return {"tag": tag, "zip": root / "tag.zip",
            "random": _scenes(root / "random", 48, list(CLASS_NAMES), False, 100),
            "stars": _scenes(root / "stars", 12, ["star"], False, 200)}


def run_json(capsys, *args):
    code = main(["tcav", *args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def shortcut_args(folders, class_name, concept="tag"):
    return ["--model", "shortcut_demo", "--data", "sample:shortcut", "--class", class_name,
            "--concept", str(folders[concept]), "--random", str(folders["random"]),
            "--random-runs", "12", "--images", "16"]


def test_the_contract_on_the_shortcut_demo(folders, capsys):
    star = run_json(capsys, *shortcut_args(folders, "star"))
    assert CONTRACT <= set(star)
    assert star["class"] == "star" and star["layer"] == "conv2d_4" and star["concept"] == "tag"
    assert star["score"] >= 0.9 and star["significant"] and star["p_value"] < 0.05
    assert len(star["random_scores"]) == 12 and len(star["concept_scores"]) == 12
    assert star["images"] == 16 and star["concept_images"] == 16
    assert star["random_images"] == 48 and star["random_source"] == "random"
    circle = run_json(capsys, *shortcut_args(folders, "circle"))
    assert circle["class"] == "circle" and circle["score"] <= 0.2
    # the same images in a ZIP give the same numbers (its top folder names the concept)
    zipped = run_json(capsys, *shortcut_args(folders, "star", concept="zip"))
    assert zipped["concept"] == "tag"
    assert (zipped["score"], zipped["p_value"], zipped["random_scores"]) == (
        star["score"], star["p_value"], star["random_scores"])


def test_an_unlabelled_dataset_gives_all_its_images_and_random_ones_are_drawn_from_it(
        folders, capsys):
    got = run_json(capsys, "--model", "shortcut_demo", "--data", str(folders["stars"]),
                   "--class", "star", "--concept", str(folders["tag"]), "--random-runs", "3",
                   "--random-images", "12")
    assert got["images"] == 12  # a flat folder has no labels: every image is the class's
    assert got["random_source"] == "stars" and got["random_images"] == 12
    assert got["random_set_size"] == 6  # half the pool, so two sets differ


def test_bad_input_is_one_line_and_exit_status_2(folders, capsys):
    assert main(["tcav", *shortcut_args(folders, "dragon")]) == 2
    assert capsys.readouterr().err.startswith("error: No class is called 'dragon'")
    # refused while parsing, in the backend's words
    args = shortcut_args(folders, "star")
    args[args.index("--random-runs") + 1] = "1"
    assert main(["tcav", *args]) == 2
    err = capsys.readouterr().err
    assert "the number of random runs must be a whole number from 2 to 50; got 1" in err
    assert main(["tcav", *shortcut_args(folders, "star")[:-4], "--concept-images", "1"]) == 2
    assert "concept images must be a whole number from 2 to 500" in capsys.readouterr().err


@pytest.mark.slow  # starts a python -m viz_core process
def test_the_command_runs_as_a_user_would(folders):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "viz_core", "tcav",
                          *shortcut_args(folders, "star"), "--json"],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert out.returncode == 0 and out.stderr == "", out.stderr[-2000:]
    got = json.loads(out.stdout)
    assert CONTRACT <= set(got) and got["significant"] and got["score"] >= 0.9
