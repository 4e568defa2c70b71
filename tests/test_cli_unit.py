"""``python -m viz_core unit``: the issue's JSON contract, numbers checked against an independent
Keras forward pass and by redoing the arithmetic from the printed numbers."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from tests.conftest import nested_cnn
from viz_core.cli import main

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "samples" / "circle_and_star.png"
KEYS = ["layer", "kind", "channel", "position", "patch_shape", "products_sum", "bias",
        "preactivation", "activation", "model_activation", "terms"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_unit")
    keras.utils.set_random_seed(0)
    model = nested_cnn(size=16, classes=3)
    model.save(folder / "nested.keras")
    pixels = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "noise.png")
    return folder, model, pixels


def run_json(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_nested_conv_at_a_border_equals_keras(files, capsys):
    folder, model, pixels = files
    payload = run_json(capsys, ["unit", "--model", str(folder / "nested.keras"), "--image",
                                str(folder / "noise.png"), "--layer", "base/conv_a",
                                "--channel", "2", "--at", "0,15", "--json"])
    assert list(payload) == KEYS
    assert payload["position"] == [0, 15] and payload["patch_shape"] == [3, 3, 3]
    assert payload["kind"] == "Conv2D" and payload["channel"] == 2
    # all 27 products are listed (fewer than 64), largest first; 9 of them read padding (zeros)
    terms = payload["terms"]
    assert len(terms) == 27
    assert sum(t["product"] for t in terms) == pytest.approx(payload["products_sum"], abs=1e-9)
    assert sum(1 for t in terms if t["input"] == 0.0) >= 15  # row -1 and column 16: padding
    assert payload["preactivation"] == pytest.approx(payload["products_sum"] + payload["bias"])
    assert payload["activation"] == pytest.approx(max(0.0, payload["preactivation"]))
    # independent reference: the sub-model itself on pixels / 255
    base = model.get_layer("base")
    direct = np.asarray(keras.Model(base.inputs, base.get_layer("conv_a").output)(
        pixels[None].astype("float32") / 255.0))[0, 0, 15, 2]
    assert payload["model_activation"] == pytest.approx(float(direct), abs=1e-6)
    assert abs(payload["activation"] - payload["model_activation"]) <= 1e-4


def test_dense_has_no_position_and_64_terms(files, capsys):
    folder, model, _ = files
    payload = run_json(capsys, ["unit", "--model", str(folder / "nested.keras"), "--image",
                                str(folder / "noise.png"), "--layer", "head", "--channel", "1",
                                "--json"])
    assert payload["position"] is None and payload["patch_shape"] == [8 * 8 * 6]
    assert len(payload["terms"]) == 64
    sizes = [abs(t["product"]) for t in payload["terms"]]
    assert sizes == sorted(sizes, reverse=True)
    assert abs(payload["activation"] - payload["model_activation"]) <= 1e-4


@pytest.mark.parametrize("argv, message", [
    (["--at", "3"], "argument --at: a position is two whole numbers Y,X"),
    (["--at", "0,16", "--layer", "base/conv_a"], "The position (0, 16) is outside the 16x16 map"),
    (["--layer", "flatten"], "'flatten' is a Flatten layer"),
    (["--layer", "base/conv_a"], "give a position y, x"),
    (["--channel", "-1"], "argument --channel: the channel is a whole number"),
])
def test_bad_requests_are_one_line_errors(files, capsys, argv, message):
    folder, _, _ = files
    code = main(["unit", "--model", str(folder / "nested.keras"), "--image",
                 str(folder / "noise.png"), *argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_command_prints_the_contract_for_the_demo_model():
    run = subprocess.run(
        [sys.executable, "-m", "viz_core", "unit", "--model", "demo", "--image", str(SAMPLE),
         "--layer", "conv2d_1", "--channel", "7", "--at", "149,0", "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    payload = json.loads(run.stdout)
    assert list(payload) == KEYS and payload["layer"] == "conv2d_1"
    assert payload["position"] == [149, 0] and len(payload["terms"]) == 27
    assert abs(payload["activation"] - payload["model_activation"]) <= 1e-4
    from viz_core.inputs.intake import load_image
    from viz_core.models.catalog import load_demo_model

    demo = load_demo_model()
    view = demo.view(load_image(SAMPLE.read_bytes(), SAMPLE.name))
    direct = keras.Model(demo.model.inputs, demo.model.get_layer("conv2d_1").output)
    expected = float(np.asarray(direct(view.pixels[None] / 255.0))[0, 149, 0, 7])
    assert payload["model_activation"] == pytest.approx(expected, abs=1e-6)
