"""``python -m viz_core evaluate``: the pointing game from the command line, JSON out."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import tiny_cnn
from viz_core.catalog import DEMO_MODEL_FILE, load_uploaded_model
from viz_core.cli import main
from viz_core.demo.shapes import CLASS_NAMES
from viz_core.pointing import pointing_game

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def shape_model_file(tmp_path_factory):
    """A tiny 4-class model file (48 px input) and a labels file with the shape names."""
    folder = tmp_path_factory.mktemp("evaluate")
    path = folder / "shapes_tiny.keras"
    tiny_cnn(size=48, classes=4, seed=2).save(path)
    labels = folder / "labels.txt"
    labels.write_text("\n".join(CLASS_NAMES) + "\n")
    return path, labels


def test_json_counts_match_the_library(shape_model_file, capsys):
    path, labels = shape_model_file
    code = main(["evaluate", "--model", str(path), "--labels", str(labels), "--methods",
                 "gradcam,saliency", "--scenes", "3", "--seed", "7", "--shapes", "2",
                 "--tolerance", "2", "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["scenes"] == 3 and payload["seed"] == 7 and payload["tolerance"] == 2
    assert [m["method"] for m in payload["methods"]] == ["gradcam", "saliency"]
    model = load_uploaded_model(path.read_bytes(), path.name, labels=list(CLASS_NAMES))
    reference = pointing_game(model, ["gradcam", "saliency"], scenes=3, seed=7, shapes=2,
                              tolerance=2)
    for row, score in zip(payload["methods"], reference.scores):
        assert (row["hits"], row["total"]) == (score.hits, 6)
        assert row["hit_rate"] == pytest.approx(score.hits / 6)


def test_human_output_is_a_table(shape_model_file, capsys):
    path, labels = shape_model_file
    assert main(["evaluate", "--model", str(path), "--labels", str(labels), "--methods",
                 "gradcam", "--scenes", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Pointing game on ") and "2 scenes" in lines[0]
    assert lines[1].split()[0] == "Grad-CAM" and lines[1].strip().endswith("%")


def test_bad_input_is_one_error_line(shape_model_file, capsys):
    path, labels = shape_model_file
    assert main(["evaluate", "--model", str(path), "--labels", str(labels), "--methods",
                 "gradcam,occlusion"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "'occlusion'" in err
    assert main(["evaluate", "--model", str(path), "--scenes", "1"]) == 2  # no shape labels
    assert "'circle'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="the demo model is not committed yet")
def test_demo_model_from_a_real_process():
    run = subprocess.run(
        [sys.executable, "-m", "viz_core", "evaluate", "--model", "demo", "--methods",
         "gradcam,gradcam++", "--scenes", "4", "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    payload = json.loads(run.stdout)
    assert payload["model"] == "demo" and payload["scenes"] == 4
    assert all(m["total"] == 4 for m in payload["methods"])
    assert payload["methods"][0]["hit_rate"] >= 0.75
