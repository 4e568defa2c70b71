"""``python -m viz_core heatmap``: overlay PNG at the original resolution, .npy heatmap, JSON."""
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
from viz_core.methods.heatmap import class_heatmap
from viz_core.models.catalog import load_uploaded_model
from viz_core.cli import main
from viz_core.inputs.intake import load_image
from viz_core.render import overlay_heatmap
from viz_core.models.targets import Target

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_heatmap")
    tiny_cnn(size=32, classes=3).save(folder / "tiny.keras")
    (folder / "labels.txt").write_text("cat\ndog\nbird\n")
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (60, 45, 3), dtype=np.uint8)  # not the model's 32x32
    Image.fromarray(picture).save(folder / "photo.png")
    return folder


def _model_args(folder):
    return ["--model", str(folder / "tiny.keras"), "--labels", str(folder / "labels.txt"),
            "--image", str(folder / "photo.png")]


def _reference(folder, k, method="gradcam", **params):
    model = load_uploaded_model((folder / "tiny.keras").read_bytes(), "tiny.keras",
                                labels=["cat", "dog", "bird"])
    image = load_image((folder / "photo.png").read_bytes(), "photo.png")
    return image, class_heatmap(model, model.view(image), Target(k), method, **params)


@pytest.mark.slow  # starts python -m viz_core (TensorFlow imported again)
def test_heatmap_command_writes_overlay_npy_and_json(files, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-m", "viz_core", "heatmap", *_model_args(files), "--class", "dog",
         "--class", "2", "--out", str(tmp_path), "--json"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["results"]
    assert [(r["class_index"], r["label"]) for r in rows] == [(1, "dog"), (2, "bird")]
    for row in rows:
        assert (row["method"], row["layer"], row["score_kind"]) == ("gradcam", "conv_b", "logit")
        image, reference = _reference(files, row["class_index"])
        heat = np.load(row["npy"])
        assert heat.shape == (32, 32) and heat.dtype == np.float32
        np.testing.assert_allclose(heat, reference.heatmap, atol=1e-6)
        assert row["probability"] == pytest.approx(reference.probability, abs=1e-6)
        png = np.asarray(Image.open(row["png"]).convert("RGB"))
        assert png.shape == (60, 45, 3)  # the original resolution, not the model's
        np.testing.assert_array_equal(png, overlay_heatmap(image.pixels, reference.heatmap))


def test_default_class_is_the_top_class_and_method_params_pass_through(files, tmp_path, capsys):
    code = main(["heatmap", *_model_args(files), "--method", "integrated_gradients",
                 "--steps", "8", "--out", str(tmp_path), "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    model = load_uploaded_model((files / "tiny.keras").read_bytes(), "tiny.keras",
                                labels=["cat", "dog", "bird"])
    image = load_image((files / "photo.png").read_bytes(), "photo.png")
    probs = np.asarray(model.model(model.batch([model.view(image)])))[0]
    assert len(rows) == 1 and rows[0]["class_index"] == int(np.argmax(probs))
    assert rows[0]["layer"] == "input" and rows[0]["params"] == {"baseline": 0.0, "steps": 8}
    _, reference = _reference(files, rows[0]["class_index"], "integrated_gradients", steps=8)
    assert rows[0]["attribution_sum"] == pytest.approx(reference.attribution_sum, rel=1e-5)
    np.testing.assert_allclose(np.load(rows[0]["npy"]), reference.heatmap, atol=1e-6)
    assert Path(rows[0]["png"]).name == "photo_integrated_gradients_%d.png" % rows[0]["class_index"]


@pytest.mark.parametrize("blend, opacity", [("uniform", "0.3"), ("heat", "0.6")])
def test_blend_and_opacity_shape_the_overlay_png(files, tmp_path, capsys, blend, opacity):
    code = main(["heatmap", *_model_args(files), "--class", "cat", "--blend", blend,
                 "--opacity", opacity, "--out", str(tmp_path), "--json"])
    assert code == 0
    row = json.loads(capsys.readouterr().out)["results"][0]
    image, reference = _reference(files, 0)
    png = np.asarray(Image.open(row["png"]).convert("RGB"))
    expected = overlay_heatmap(image.pixels, reference.heatmap, opacity=float(opacity),
                               blend=blend)
    np.testing.assert_array_equal(png, expected)


@pytest.mark.parametrize("extra, message", [
    (["--blend", "screen"], "screen"),
    (["--class", "horse"], "horse"),
    (["--class", "9"], "9"),
    (["--layer", "gap"], "gap"),
    (["--steps", "5"], "steps"),
    (["--opacity", "1.5"], "1.5"),
])
def test_bad_input_exits_2_with_one_error_line(files, tmp_path, capsys, extra, message):
    code = main(["heatmap", *_model_args(files), *extra, "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]
