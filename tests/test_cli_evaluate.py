"""``python -m viz_core evaluate``: the pointing game from the command line, JSON out."""
from __future__ import annotations

import contextlib
import io
import json
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import tiny_cnn
from viz_core.cli.bundle import export_bundle
from viz_core.methods.heatmap import class_heatmap
from viz_core.models.catalog import DEMO_MODEL_FILE, load_uploaded_model
from viz_core.cli import build_parser, main
from viz_core.demo.shapes import CLASS_NAMES
from viz_core.metrics import registry as metrics
from viz_core.metrics.agreement import rank_correlation
from viz_core.metrics.evaluation import map_metrics
from viz_core.metrics.faithfulness import deletion_insertion
from viz_core.inputs.intake import image_from_array, load_image
from viz_core.metrics.pointing import pointing_game
from viz_core.render import png_bytes
from viz_core.metrics.sanity import cascading_randomisation
from viz_core.render.compare import compare_picture, sanity_picture
from viz_core.models.targets import Target

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
                 "gradcam,deconvnet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "'deconvnet'" in err
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


# -- compare and sanity ---------------------------------------------------------------------


def scene_file(folder: Path) -> Path:
    """A yellow square on a dark background, 64x48 (resized to the model's 48x48)."""
    pixels = np.full((48, 64, 3), 30, dtype=np.uint8)
    pixels[10:30, 20:44] = (220, 180, 40)
    path = folder / "square scene.png"
    path.write_bytes(png_bytes(pixels))
    return path


def model_args(shape_model_file) -> list[str]:
    path, labels = shape_model_file
    return ["--model", str(path), "--labels", str(labels), "--preprocess", "unit"]


def loaded_model(shape_model_file):
    path, _ = shape_model_file
    return load_uploaded_model(path.read_bytes(), path.name, labels=list(CLASS_NAMES))


def test_compare_writes_the_pages_pictures_and_curves(shape_model_file, tmp_path, capsys):
    image_path = scene_file(tmp_path)
    out = tmp_path / "out"
    assert main(["compare", *model_args(shape_model_file), "--image", str(image_path),
                 "--class", "star", "--methods", "gradcam,saliency", "--steps", "4",
                 "--baseline", "black", "--colormap", "magma", "--opacity", "0.7", "--out",
                 str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)["results"][0]
    model = loaded_model(shape_model_file)
    image = load_image(image_path.read_bytes(), "square scene")
    view = model.view(image)
    assert (payload["class_index"], payload["label"]) == (3, "star")
    maps = {"gradcam": class_heatmap(model, view, Target(3), "gradcam",
                                     model.info.last_conv_layer).heatmap,
            "saliency": class_heatmap(model, view, Target(3), "saliency").heatmap}
    for row, method in zip(payload["methods"], ("gradcam", "saliency")):
        curves = deletion_insertion(model, view, 3, maps[method], steps=4, baseline="black")
        assert row["deletion_auc"] == pytest.approx(curves.deletion_auc, abs=1e-6)
        np.testing.assert_allclose(row["insertion"], curves.insertion, atol=1e-6)
        np.testing.assert_allclose(np.load(row["npy"]), maps[method], atol=1e-6)
        written = np.asarray(Image.open(row["png"]).convert("RGB"))
        np.testing.assert_array_equal(written, compare_picture(
            image.pixels, np.load(row["npy"]), opacity=0.7, colormap="magma"))
        assert written.shape == (48, 64, 3)  # at the original image's size
        # every registered metric, by its registry name: what the Compare page shows
        scores = map_metrics(model, view, Target(3, "logit"), method,
                             settings={"steps": 4, "baseline": "black"})
        for name in metrics.names():
            assert row[name] == pytest.approx(scores[name], abs=1e-6, nan_ok=True), name
        assert row["deletion_auc"] == pytest.approx(scores["deletion_auc"], abs=1e-9)
        assert row["random_logit_class"] == scores.random_logit_class
    expected = rank_correlation(maps["gradcam"], maps["saliency"])
    assert payload["agreement"]["spearman"][0][1] == pytest.approx(expected, abs=1e-5)
    assert (out / "square scene_faithfulness_3.json").exists()


def test_sanity_writes_every_cell_and_the_verdicts(shape_model_file, tmp_path, capsys):
    image_path = scene_file(tmp_path)
    out = tmp_path / "out"
    assert main(["sanity", *model_args(shape_model_file), "--image", str(image_path),
                 "--class", "1", "--methods", "gradcam,edges", "--layers", "2", "--seed", "3",
                 "--out", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)["results"][0]
    model = loaded_model(shape_model_file)
    view = model.view(load_image(image_path.read_bytes(), "square scene"))
    report = cascading_randomisation(model, view, Target(1), ("gradcam", "edges"), steps=2,
                                     seed=3)
    assert payload["layers"] == ["head", "conv_b"]
    assert [m["flagged"] for m in payload["methods"]] == [False, True]
    np.testing.assert_allclose(payload["methods"][0]["spearman"], report.spearman[:, 0],
                               atol=1e-6)
    assert len(payload["pictures"]) == 2 * 3
    cell = np.asarray(Image.open(out / "square scene_sanity_gradcam_step2.png"))
    np.testing.assert_array_equal(cell, sanity_picture(report, "gradcam", 2))


@pytest.mark.parametrize("command,options", [
    ("compare", ["--class", "2", "--methods", "gradcam++,lime", "--steps", "4", "--show",
                 "heatmap", "--colormap", "cividis"]),
    ("sanity", ["--class", "0", "--methods", "saliency,edges", "--layers", "2", "--seed", "1",
                "--metric", "ssim", "--threshold", "0.8", "--colormap", "gray"]),
])
def test_bundle_command_reproduces_pictures_bit_for_bit(shape_model_file, tmp_path, bench,
                                                        monkeypatch, command, options):
    image = image_from_array(np.random.default_rng(5).integers(0, 256, (40, 56, 3),
                                                                dtype=np.uint8), "noise")
    data = export_bundle(command, [*model_args(shape_model_file), *options], [image],
                         {"page": command}, bench=bench)
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(folder)
        stored = {n: archive.read(n) for n in archive.namelist()
                  if n.startswith("pictures/") and n.endswith(".png")}
    assert stored
    shutil.rmtree(folder / "pictures")
    argv = shlex.split((folder / "command.txt").read_text())
    assert argv[:4] == ["python", "-m", "viz_core", command]
    monkeypatch.chdir(folder)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv[3:]) == 0  # a fresh workbench: everything is computed again
    for name, content in stored.items():
        assert (folder / name).read_bytes() == content, name


def test_method_lists_read_without_tensorflow_equal_the_backends():
    from viz_core.metrics import faithfulness
    from viz_core.metrics import maps
    from viz_core.metrics import pointing
    from viz_core.metrics import sanity
    from viz_core.cli import evaluate
    from viz_core.render import compare

    assert evaluate.map_methods() == maps.map_methods()
    assert evaluate.sanity_methods() == sanity.sanity_methods()
    for command, expected in (("evaluate", pointing.default_methods()),
                              ("compare", maps.compare_methods()),
                              ("sanity", sanity.default_methods())):
        sub = build_parser(command=command)._subparsers._group_actions[0].choices[command]
        assert sub.get_default("methods") == ",".join(expected)
    assert (evaluate.DEFAULT_BASELINE, evaluate.DEFAULT_METRIC, evaluate.SHOW) == (
        faithfulness.DEFAULT_BASELINE, sanity.DEFAULT_METRIC, compare.SHOW)
