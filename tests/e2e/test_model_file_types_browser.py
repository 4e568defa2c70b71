"""Model files named as Keras 2 users name them (issue 28, finding 2): ``.hdf5`` and ``.H5`` are
accepted wherever ``.h5`` is. The walk's emotion model (``.hdf5``) was refused by the uploader
("application/x-hdf files are not allowed"), and renamed to ``.h5`` the same file worked.

One tiny legacy-HDF5 model, saved by Keras as ``.h5`` and copied under the other two names; each
upload must load (the sidebar states the model's output) and predict the same top class.
"""
from __future__ import annotations

import re
import shutil

import pytest

from tests.e2e.test_browser import WAIT_MS, assert_no_crash, choose, open_app, settle
from tests.e2e.test_upload_preprocessing_browser import SIDEBAR, VIEWPORT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def tiny_h5(path) -> None:
    """A 4-class CNN on 32x32 RGB (seeded), saved in Keras' legacy HDF5 format."""
    import keras

    keras.utils.set_random_seed(0)
    keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(4, activation="softmax"),
    ]).save(path)


def test_hdf5_and_upper_case_h5_upload_like_h5(page, server, tmp_path):
    original = tmp_path / "keras2_model.h5"
    tiny_h5(original)
    page.set_viewport_size(VIEWPORT)
    open_app(page, server)
    choose(page, "Model", "Upload a model file (.keras / .h5)")
    settle(page)
    uploader = page.locator(f'{SIDEBAR} [data-testid="stFileUploader"]').first
    assert ".hdf5" in uploader.inner_text()  # the label names every accepted extension
    outputs = {}
    for name in ("keras2_model.h5", "emotion_model.hdf5", "SHOUTED.H5"):
        path = tmp_path / name
        if path != original:
            shutil.copyfile(original, path)
        uploader.locator('input[type="file"]').set_input_files(str(path))
        uploader.locator('[data-testid="stFileChipName"]').filter(
            has_text=name).wait_for(timeout=WAIT_MS)
        settle(page)
        assert_no_crash(page)
        assert page.get_by_text("not allowed").count() == 0, name
        output = page.get_by_text(re.compile(r"^Output: ")).first
        output.wait_for(timeout=WAIT_MS)
        outputs[name] = output.inner_text()
    # the same file under three names: the same model card each time ("Output: softmax, 4 ...")
    assert len(set(outputs.values())) == 1, outputs
    assert "4" in next(iter(outputs.values())), outputs
