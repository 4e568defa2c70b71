"""The preprocessing suggested for an uploaded model, read from its saved config only."""
from __future__ import annotations

import keras
import pytest

from viz_core.models.preprocess_guess import guess_preprocessing, model_config


def saved(model, tmp_path, suffix=".keras") -> bytes:
    path = tmp_path / f"m{suffix}"
    model.save(path)
    return path.read_bytes()


def small_head(base, classes=1):
    return keras.Sequential([keras.Input(base.input_shape[1:]), base,
                             keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(classes, activation="sigmoid")])


@pytest.mark.slow  # builds a Keras Applications MobileNetV2
def test_a_nested_keras_applications_base_gives_its_preprocessing(tmp_path):
    base = keras.applications.MobileNetV2(input_shape=(96, 96, 3), include_top=False,
                                          weights=None)
    guess = guess_preprocessing(model_config(saved(small_head(base), tmp_path)))
    assert guess.name == "symmetric"
    assert "'mobilenetv2_1.00_96'" in guess.reason


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_rescaling_first_layer_means_none(tmp_path, suffix):
    model = keras.Sequential([keras.Input((32, 32, 3)),
                              keras.layers.Rescaling(1 / 255, name="to_unit"),
                              keras.layers.Conv2D(2, 3), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")])
    guess = guess_preprocessing(model_config(saved(model, tmp_path, suffix)))
    assert guess.name == "none" and "'to_unit'" in guess.reason


def test_vgg_style_names_give_caffe_and_a_plain_cnn_gives_unit(tmp_path):
    vgg = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 3)], name="vgg16")
    assert guess_preprocessing(model_config(saved(small_head(vgg), tmp_path))).name == "caffe"
    plain = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 3),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    guess = guess_preprocessing(model_config(saved(plain, tmp_path)))
    assert guess.name == "unit" and "nothing in the model says" in guess.reason


def test_unreadable_bytes_fall_back_to_unit():
    assert model_config(b"not a model") is None
    assert model_config(b"PK\x03\x04broken") is None
    guess = guess_preprocessing(None)
    assert guess.name == "unit" and "could not be read" in guess.reason
