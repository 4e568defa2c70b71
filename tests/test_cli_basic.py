"""The command line: models, info and predict through ``main`` in this process (their JSON is
what is checked), and bad input -> exit 2 with one ``error:`` line, also through ``main`` (what
``python -m viz_core`` runs; real processes are tested in test_cli_hostile and
test_cli_startup)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import tiny_cnn
from viz_core.cli import main


def run_json(capsys, *args):
    """``python -m viz_core *args`` run in this process (a subprocess would import TensorFlow
    again, some 10 s of CPU each); its exit status must be 0 and its stdout one JSON object."""
    capsys.readouterr()
    assert main(list(args)) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    model = tiny_cnn(size=32, classes=3)
    model.save(folder / "tiny.keras")
    (folder / "labels.txt").write_text("cat\ndog\n\nbird\n")
    img = np.zeros((64, 48, 3), dtype=np.uint8)
    img[:, 24:] = 255
    Image.fromarray(img).save(folder / "half.png")
    (folder / "notes.png").write_text("<html>not an image</html>")
    return folder, model, img


def test_models_lists_builtins_as_json(capsys):
    rows = run_json(capsys, "models", "--json")["models"]
    names = [r["name"] for r in rows]
    assert names[0] == "demo" and "vgg16" in names and "convnext_tiny" in names
    assert {r["name"]: r["input_shape"] for r in rows}["inception_v3"] == [299, 299, 3]


def test_info_and_predict_on_a_model_file(model_files, capsys):
    folder, model, img = model_files
    info = run_json(capsys, "info", "--model", str(folder / "tiny.keras"), "--labels",
                    str(folder / "labels.txt"), "--json")
    assert info["input_shape"] == [32, 32, 3] and info["output_kind"] == "softmax"
    assert info["labels"] == ["cat", "dog", "bird"] and info["last_conv_layer"] == "conv_b"
    assert [layer["name"] for layer in info["layers"]][:2] == ["conv_a", "pool_a"]
    assert info["layers"][0]["output_shape"] == [32, 32, 4] and info["layers"][0]["conv"]

    top = run_json(capsys, "predict", "--model", str(folder / "tiny.keras"), "--labels",
                   str(folder / "labels.txt"), "--image", str(folder / "half.png"),
                   "--top", "2", "--json")["predictions"][0]["top"]
    # Independent reference: resize as Pillow does, scale by 1/255, run the model directly.
    x = np.asarray(Image.fromarray(img).resize((32, 32), Image.Resampling.BILINEAR,
                                                reducing_gap=3.0), dtype="float32")[None] / 255
    probs = np.asarray(model(x))[0]
    best = int(np.argmax(probs))
    assert top[0]["class_index"] == best
    assert top[0]["label"] == ["cat", "dog", "bird"][best]
    assert top[0]["probability"] == pytest.approx(float(probs[best]), abs=1e-5)
    assert len(top) == 2


@pytest.mark.parametrize(
    "args,message",
    [
        (["info", "--model", "alexnet"], "neither a built-in model"),
        (["predict", "--model", "{tiny}", "--image", "{notes}"], "a web page (HTML)"),
        (["predict", "--model", "{tiny}", "--image", "missing.png"], "does not exist"),
        (["info", "--model", "vgg16", "--offline"], "vgg16_weights_tf_dim_ordering_tf_kernels.h5"),
    ],
    ids=["unknown model", "html image", "missing image", "missing weights"],
)
def test_bad_input_exits_2_with_one_line(model_files, args, message, tmp_path, capsys,
                                        monkeypatch):
    folder, _, _ = model_files
    args = [a.format(tiny=folder / "tiny.keras", notes=folder / "notes.png") for a in args]
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))  # no weights in it
    capsys.readouterr()
    code = main(args)  # an exception other than the refusal would end the test here
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_the_app_command_becomes_streamlit_with_two_malloc_arenas_unless_told(monkeypatch):
    """``cnn-explorer app`` execs Streamlit with MALLOC_ARENA_MAX=2 (a class server's memory
    levels off ~250 MB lower, bench class_day), keeping a value the user set."""
    import argparse

    from viz_core.cli import app as app_command

    seen = []
    monkeypatch.setattr(app_command.os, "execve", lambda path, argv, env: seen.append(env))
    args = argparse.Namespace(port=8600, address="127.0.0.1", streamlit_args=[], dry_run=False)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    app_command.cmd_app(args)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    app_command.cmd_app(args)
    assert [env["MALLOC_ARENA_MAX"] for env in seen] == ["2", "8"]
