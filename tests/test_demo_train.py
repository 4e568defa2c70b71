"""The training command runs end to end on a tiny setting and writes a loadable model and card."""

import json
from dataclasses import asdict
from pathlib import Path

import keras
import pytest

from viz_core.demo.train import Recipe, main

REPO = Path(__file__).resolve().parent.parent
CARD_KEYS = {
    "name",
    "classes",
    "input_shape",
    "preprocessing",
    "held_out_accuracy",
    "gradcam_pointing",
    "training_seconds",
    "seed",
    "train_size",
    "epochs",
    "keras_version",
    "two_shape_gradcam_pointing",
}


@pytest.mark.slow
def test_training_command_writes_a_loadable_model_and_card(tmp_path, capsys):
    # The command's entry point in this process: a subprocess imported TensorFlow again, some
    # 10 s of CPU, which is no part of what is checked here. One crop epoch (the recipe has 5)
    # still runs both phases, crops then full images.
    assert main(["--train-size", "64", "--crop-epochs", "1", "--epochs", "1", "--val-size", "16",
                 "--held-out-size", "16", "--out", str(tmp_path)]) == 0
    assert "held out: accuracy" in capsys.readouterr().out

    card = json.loads((tmp_path / "shapes_cnn.json").read_text())
    assert CARD_KEYS <= set(card)
    assert card["classes"] == ["circle", "square", "triangle", "star"]
    assert card["input_shape"] == [150, 150, 3] and card["preprocessing"] == "unit"
    assert card["train_size"] == 64 and card["epochs"] == 1 and card["seed"] == 0
    assert card["crop_epochs"] == 1
    assert 0.0 <= card["held_out_accuracy"] <= 1.0 and 0.0 <= card["gradcam_pointing"] <= 1.0
    assert 0.0 <= card["two_shape_gradcam_pointing"] <= 1.0

    model = keras.models.load_model(tmp_path / "shapes_cnn.keras")
    assert model.output_shape == (None, 4)


def test_bad_arguments_exit_with_a_clear_message(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--train-size", "0", "--out", "/nonexistent/never-written"])
    assert stop.value.code == 2
    assert "train size must be in" in capsys.readouterr().err


def test_cli_defaults_are_the_committed_recipe():
    card = json.loads((REPO / "assets" / "demo" / "shapes_cnn.json").read_text())
    assert card["recipe"] == asdict(Recipe())
