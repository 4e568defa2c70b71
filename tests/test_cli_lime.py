"""``python -m viz_core lime``: files written, JSON contents checked against the library call,
and bad input as one ``error:`` line with exit status 2."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.test_lime_explain import box_mask, red_square_image, red_square_model
from viz_core.cli import main
from viz_core.methods.lime import jaccard
from viz_core.render.lime_view import SUPPORT_COLOUR
from viz_core.runtime.workbench import Workbench


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lime_cli")
    model_path = folder / "red.keras"
    red_square_model().save(model_path)
    labels = folder / "labels.txt"
    labels.write_text("background\nred square\n")
    image = folder / "square.png"
    Image.fromarray(red_square_image()).save(image)
    return {"model": str(model_path), "labels": str(labels), "image": str(image),
            "folder": folder}


def run(capsys, files, *extra):
    code = main(["lime", "--model", files["model"], "--labels", files["labels"],
                 "--image", files["image"], "--superpixels", "12", "--samples", "80",
                 "--hide", "black", *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_files_and_weights_match_the_library(capsys, files, tmp_path):
    code, out, _ = run(capsys, files, "--seed", "3", "--out", str(tmp_path), "--json")
    assert code == 0
    results = json.loads(out)["results"]
    # No --class: the two most probable classes, as the tutorial's n_labels = 2.
    assert [(r["class_index"], r["label"]) for r in results] == [(1, "red square"),
                                                                 (0, "background")]
    first = results[0]
    assert first["probability"] == pytest.approx(1 / (1 + np.exp(-4.0)), abs=1e-5)
    assert 0.0 < first["r2"] <= 1.0
    segments = np.load(first["segments_npy"])
    assert segments.shape == (32, 32)
    assert set(first["weights"]) == {str(i) for i in np.unique(segments)}
    picture = np.asarray(Image.open(io.BytesIO(open(first["png"], "rb").read())))
    assert picture.shape == (32, 32, 3)
    assert Image.open(first["superpixels_png"]).size == (32, 32)

    # The same numbers through the library, with the model the CLI loaded.
    from viz_core.methods.lime import lime_explanation

    bench = Workbench(disk_dir=tmp_path / "cache", allow_download=False)
    model = bench.uploaded_model(open(files["model"], "rb").read(), "red.keras",
                                 labels=["background", "red square"])
    view = model.view(bench.image(open(files["image"], "rb").read(), "square.png"))
    expected = lime_explanation(model, view, [1, 0], n_superpixels=12, samples=80,
                                hide="black", seed=3)
    assert np.array_equal(segments, expected.segments)
    got = np.array([first["weights"][str(i)] for i in range(expected.count)])
    assert np.allclose(got, expected.weights_for(1), atol=1e-6)
    # The strongest superpixel for "red square" is mostly red square.
    best = int(np.argmax(got))
    assert box_mask()[segments == best].mean() > 0.5
    assert results[1]["weights"][str(best)] == pytest.approx(-got[best], abs=1e-6)


def test_one_class_by_name_and_the_png_marks_its_best_superpixel(capsys, files, tmp_path):
    code, out, _ = run(capsys, files, "--class", "red square", "--features", "1",
                       "--out", str(tmp_path), "--json")
    assert code == 0
    (result,) = json.loads(out)["results"]
    assert result["class_index"] == 1
    segments = np.load(result["segments_npy"])
    weights = np.array([result["weights"][str(i)] for i in range(segments.max() + 1)])
    best = segments == int(np.argmax(weights))
    picture = np.asarray(Image.open(result["png"]))
    green = np.all(picture == SUPPORT_COLOUR, axis=2)
    assert green.any() and np.all(best[green])  # the outline is drawn inside the best one only


def test_human_readable_output_names_the_files(capsys, files, tmp_path):
    code, out, _ = run(capsys, files, "--class", "0", "--out", str(tmp_path))
    assert code == 0
    assert "background (0)" in out and "R2=" in out
    assert str(tmp_path / "square_lime_0.png") in out


@pytest.mark.parametrize("extra,words", [
    (("--samples", "3"), "got 3"),
    (("--class", "dog"), "'dog'"),
    (("--superpixels", "1"), "got 1"),
])
def test_bad_input_is_one_error_line(capsys, files, tmp_path, extra, words):
    code = main(["lime", "--model", files["model"], "--labels", files["labels"],
                 "--image", files["image"], "--out", str(tmp_path), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and words in err and err.count("\n") == 1


def test_scale_rest_and_stability_options(capsys, files, tmp_path):
    code, out, _ = run(capsys, files, "--class", "1", "--stability", "--scale", "2", "--rest",
                       "hide", "--style", "fill", "--features", "1", "--out", str(tmp_path),
                       "--json")
    assert code == 0
    (result,) = json.loads(out)["results"]
    picture = np.asarray(Image.open(result["png"]))
    assert picture.shape == (64, 64, 3)
    segments = np.load(result["segments_npy"])
    weights = np.array([result["weights"][str(i)] for i in range(segments.max() + 1)])
    shown = np.repeat(np.repeat(segments == int(np.argmax(weights)), 2, 0), 2, 1)
    assert np.all(picture[~shown] == 128)  # the rest hidden in grey
    check = result["stability"]
    assert check["seeds"] == [0, 1, 2] and check["k"] == 3
    expected = np.mean([jaccard(a, b) for a, b in
                        [(check["top_sets"][0], check["top_sets"][1]),
                         (check["top_sets"][0], check["top_sets"][2]),
                         (check["top_sets"][1], check["top_sets"][2])]])
    assert check["mean_jaccard"] == pytest.approx(expected)
    assert check["top_sets"][0] == [int(i) for i in np.argsort(-weights)[:3] if weights[i] > 0]


def test_export_bundle_remakes_the_page_picture(files, tmp_path):
    """The page's "Export bundle" runs this command in-process with the page's workbench."""
    from viz_core.cli.bundle import export_bundle
    from viz_core.methods.lime import explanation_plane, lime_explanation
    from viz_core.render.lime_view import explanation_picture

    bench = Workbench(disk_dir=tmp_path / "cache", allow_download=False)
    model = bench.uploaded_model(open(files["model"], "rb").read(), "red.keras",
                                 labels=["background", "red square"])
    image = bench.image(open(files["image"], "rb").read(), "square.png")
    options = ["--model", files["model"], "--labels", files["labels"], "--superpixels", "12",
               "--samples", "60", "--hide", "blurred", "--seed", "2", "--features", "2",
               "--style", "fill", "--rest", "dim", "--scale", "3", "--class", "1"]
    archive = zipfile.ZipFile(io.BytesIO(export_bundle("lime", options, [image], {}, bench)))
    assert archive.read("command.txt").decode().startswith("python -m viz_core lime --model")
    got = np.asarray(Image.open(io.BytesIO(archive.read("pictures/square_lime_1.png"))))
    explanation = lime_explanation(model, model.view(image), [1], n_superpixels=12, samples=60,
                                   hide="blurred", seed=2)
    plane = explanation_plane(explanation, 1, style="fill", num_features=2)
    want = explanation_picture(explanation.image, plane, style="fill", rest="dim", scale=3)
    np.testing.assert_array_equal(got, want)
