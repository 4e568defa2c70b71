"""``python -m viz_core activations``: files named like the tutorial's, .npy equal to Keras."""
from __future__ import annotations

import io
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from tests.conftest import nested_cnn, tiny_cnn
from viz_core.models.catalog import DEMO_MODEL_FILE
from viz_core.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_activations")
    tiny, nested = tiny_cnn(size=32), nested_cnn(size=32)
    tiny.save(folder / "tiny.keras")
    nested.save(folder / "nested.keras")
    rng = np.random.default_rng(0)
    pictures = {}
    for name in ("cat", "dog"):
        pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}.png")
        pictures[name] = pixels
    return folder, tiny, nested, pictures


def run_json(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_npy_equals_a_direct_forward_pass_and_png_is_the_grid(files, capsys, tmp_path):
    folder, tiny, _, pictures = files
    payload = run_json(capsys, [
        "activations", "--model", str(folder / "tiny.keras"), "--image", str(folder / "cat.png"),
        "--image", str(folder / "dog.png"), "--layers", "conv_a,conv_b", "--out", str(tmp_path),
        "--per-row", "2", "--cmap", "terrain", "--json"])
    rows = payload["results"]
    assert [(r["image"].rsplit("/", 1)[-1], r["layer"]) for r in rows] == [
        ("cat.png", "conv_a"), ("cat.png", "conv_b"), ("dog.png", "conv_a"), ("dog.png", "conv_b")]
    dog_b = rows[3]
    assert dog_b["png"].endswith("dog_activations_3_conv_b.png")
    assert dog_b["npy"].endswith("dog_activations_3_conv_b.npy")
    assert dog_b["shape"] == [16, 16, 6]

    x = pictures["dog"][None].astype("float32") / 255.0
    direct = np.asarray(keras.Model(tiny.inputs, tiny.get_layer("conv_b").output)(x))[0]
    saved = np.load(dog_b["npy"])
    assert saved.dtype == np.float32 and saved.shape == (16, 16, 6)
    np.testing.assert_allclose(saved, direct, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dog_b["channel_mean"], direct.mean(axis=(0, 1)), rtol=1e-5,
                               atol=1e-6)

    grid = np.asarray(Image.open(io.BytesIO(open(dog_b["png"], "rb").read())))
    assert grid.shape == (3 * 17 - 1, 2 * 17 - 1, 3)  # 6 channels, 2 per row, 1-px separators


def test_all_layers_of_a_nested_model(files, capsys, tmp_path):
    folder, _, nested, pictures = files
    payload = run_json(capsys, [
        "activations", "--model", str(folder / "nested.keras"), "--image",
        str(folder / "cat.png"), "--out", str(tmp_path), "--json"])
    names = [r["png"].rsplit("/", 1)[-1] for r in payload["results"]]
    assert names == ["cat_activations_1_base_conv_a.png", "cat_activations_2_base_pool_a.png",
                     "cat_activations_3_base_conv_b.png"]
    base = nested.get_layer("base")
    x = pictures["cat"][None].astype("float32") / 255.0
    direct = np.asarray(keras.Model(base.inputs, base.get_layer("pool_a").output)(x))[0]
    np.testing.assert_allclose(np.load(payload["results"][1]["npy"]), direct, rtol=1e-5,
                               atol=1e-6)


def test_human_output_and_bad_layer(files, capsys, tmp_path):
    folder = files[0]
    assert main(["activations", "--model", str(folder / "tiny.keras"), "--image",
                 str(folder / "cat.png"), "--layers", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "cat_activations_2_pool_a.png" in out[0] and "16x16x4" in out[0]
    code = main(["activations", "--model", str(folder / "tiny.keras"), "--image",
                 str(folder / "cat.png"), "--layers", "dense_9", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and "'dense_9'" in err


def test_each_image_gets_its_own_files_also_with_non_ascii_and_repeated_names(
        files, capsys, tmp_path):
    folder, _, _, pictures = files
    (tmp_path / "a").mkdir()
    for name, source in (("猫.png", "cat"), ("犬.png", "dog"), ("a/猫.png", "dog"),
                         ("Cat.png", "dog")):
        Image.fromarray(pictures[source]).save(tmp_path / name)
    images = ["猫.png", "犬.png", "a/猫.png", "Cat.png", "../cat.png"]
    argv = ["activations", "--model", str(folder / "tiny.keras"), "--layers", "conv_a",
            "--out", str(tmp_path / "maps"), "--json"]
    for name in images:
        argv += ["--image", str(tmp_path / name) if name != "../cat.png" else
                 str(folder / "cat.png")]
    rows = run_json(capsys, argv)["results"]
    names = [r["png"].rsplit("/", 1)[-1] for r in rows]
    assert names == ["猫_activations_1_conv_a.png", "犬_activations_1_conv_a.png",
                     "猫_2_activations_1_conv_a.png", "Cat_activations_1_conv_a.png",
                     "cat_2_activations_1_conv_a.png"]  # 'cat' and 'Cat' clash on macOS
    assert len({r["npy"] for r in rows}) == 5 and all(Path(r["npy"]).is_file() for r in rows)
    # each file holds its own image's maps: the second 猫 is the dog picture
    np.testing.assert_array_equal(np.load(rows[2]["npy"]), np.load(rows[1]["npy"]))
    assert not np.array_equal(np.load(rows[0]["npy"]), np.load(rows[2]["npy"]))


@pytest.mark.slow
@pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not trained yet")
def test_default_demo_model_exports_every_layer(capsys, tmp_path):
    from viz_core.features.activations import feature_map_layers
    from viz_core.models.catalog import load_demo_model
    from viz_core.inputs.samples import sample_bytes

    (tmp_path / "circle.png").write_bytes(sample_bytes("circle"))
    payload = run_json(capsys, ["activations", "--image", str(tmp_path / "circle.png"),
                                "--out", str(tmp_path / "maps"), "--json"])
    demo = load_demo_model()
    layers = feature_map_layers(demo.info)
    rows = payload["results"]
    assert [r["layer"] for r in rows] == list(layers)
    assert rows[0]["png"].endswith(f"circle_activations_1_{layers[0]}.png")
    last = demo.model.get_layer(layers[-1])
    x = demo.batch([demo.view(demo_image(tmp_path / "circle.png"))])
    direct = np.asarray(keras.Model(demo.model.inputs, last.output)(x))[0]
    np.testing.assert_allclose(np.load(rows[-1]["npy"]), direct, rtol=1e-4, atol=1e-5)


def demo_image(path):
    from viz_core.inputs.intake import load_image

    return load_image(path.read_bytes(), path.name)


def test_progress_line_on_request_and_never_with_quiet(files, capsys, tmp_path):
    folder = files[0]
    argv = ["activations", "--model", str(folder / "tiny.keras"), "--image",
            str(folder / "cat.png"), "--layers", "conv_a,conv_b", "--out", str(tmp_path)]
    assert main([*argv, "--progress"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("\r[") and "100.0%" in err and err.endswith("\n")
    assert main([*argv, "--quiet"]) == 0
    assert capsys.readouterr().err == ""  # stderr is no terminal under pytest either way
    assert main([*argv, "--quiet", "--progress"]) == 2  # one or the other
    assert capsys.readouterr().err.count("\n") == 1
