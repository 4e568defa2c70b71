"""Uploading a model suggests its preprocessing, with the reason, and the user may override it
(issue: the default was ``unit`` whatever the model, and the hint was cut off)."""
from __future__ import annotations

import keras
import pytest
from streamlit.testing.v1 import AppTest


def upload(at, path) -> None:
    at.sidebar.selectbox(key="model").set_value("upload").run()
    at.sidebar.file_uploader(key="model_file").set_value(
        (path.name, path.read_bytes(), "application/octet-stream")).run()


@pytest.mark.slow  # builds a Keras Applications MobileNetV2
def test_a_nested_mobilenet_upload_is_given_symmetric_with_its_reason(tmp_path):
    from ui.state import workbench

    base = keras.applications.MobileNetV2(input_shape=(96, 96, 3), include_top=False,
                                          weights=None)
    model = keras.Sequential([keras.Input((96, 96, 3)), base,
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(1, activation="sigmoid")])
    path = tmp_path / "transfer.keras"
    model.save(path)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=300)
    at.run()
    upload(at, path)
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="model_preprocessing").value == "symmetric"
    notes = [c.value for c in at.sidebar.caption if "Suggested" in c.value]
    assert notes == ["X / 127.5 - 1, so -1..1 (MobileNet, Inception, Xception). Suggested: "
                     "**symmetric**, as it contains the Keras Applications model "
                     "'mobilenetv2_1.00_96', trained with this preprocessing."]
    # The user's own choice stands on later runs.
    at.sidebar.selectbox(key="model_preprocessing").set_value("unit").run()
    assert at.sidebar.selectbox(key="model_preprocessing").value == "unit"
    assert at.session_state["_selection"].model.preprocessing == "unit"
    workbench.clear()
