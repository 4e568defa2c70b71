"""Untrusted model files cost memory in proportion to the file, not to what the config claims.

The declared weights are counted from the configuration (nothing allocated) and compared with
the weight arrays the file holds; files that lack them, or declare more than the upload bound,
are refused before Keras builds anything. Uploads load one at a time.
"""
from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from tests.conftest import tiny_cnn
from viz_core.models import upload_safety
from viz_core.models.catalog import load_uploaded_model
from viz_core.errors import ModelError



def wide_model() -> keras.Model:
    """A conv layer then a Dense head of 16*16*4*500 = 512,000 weights (2 MB)."""
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((16, 16, 3)),
                             keras.layers.Conv2D(4, 3, padding="same", name="conv"),
                             keras.layers.Flatten(), keras.layers.Dense(500, name="head")])


def saved(model, tmp: Path, suffix: str = "keras") -> bytes:
    path = tmp / f"m.{suffix}"
    model.save(path)
    return path.read_bytes()


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def zipped(files: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return out.getvalue()


def without_weights_of(data: bytes, tmp: Path, group: str) -> bytes:
    """The archive with one layer's arrays removed from ``model.weights.h5``."""
    files = members(data)
    path = tmp / "weights.h5"
    path.write_bytes(files["model.weights.h5"])
    with h5py.File(path, "a") as h5:
        del h5[f"layers/{group}"]
    files["model.weights.h5"] = path.read_bytes()
    return zipped(files)


@pytest.fixture
def no_keras_load(monkeypatch):
    """Fails the test if Keras is asked to build or load the model."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError("keras.models.load_model must not be reached for this file")

    monkeypatch.setattr(keras.models, "load_model", refuse)
    return calls


def test_config_without_weights_file_is_refused_before_keras(tmp_path, no_keras_load):
    files = members(saved(wide_model(), tmp_path))
    data = zipped({"config.json": files["config.json"]}, zipfile.ZIP_DEFLATED)
    with pytest.raises(ModelError) as info:
        load_uploaded_model(data, "m.keras")
    # 3*3*3*4 + 4 conv weights and 16*16*4*500 + 500 head weights, float32
    assert "declare 512,612 weights (2.0 MB) but the file holds no weights" in str(info.value)
    assert no_keras_load == []


def test_weight_arrays_missing_from_the_file_are_refused_before_keras(tmp_path, no_keras_load):
    data = without_weights_of(saved(wide_model(), tmp_path), tmp_path, "dense")
    with pytest.raises(ModelError, match=r"declare 512,612 weights \(2\.0 MB\) but the file "
                                         r"holds 0\.0 MB of weights"):
        load_uploaded_model(data, "m.keras")
    assert no_keras_load == []


def test_legacy_h5_with_weights_removed_is_refused_before_keras(tmp_path, no_keras_load):
    path = tmp_path / "m.h5"
    wide_model().save(path)
    with h5py.File(path, "a") as h5:
        del h5["model_weights/head"]
    with pytest.raises(ModelError, match="declare 512,612 weights"):
        load_uploaded_model(path.read_bytes(), "m.h5")
    assert no_keras_load == []


def test_weights_of_zeros_packed_far_smaller_than_declared_are_refused(tmp_path, no_keras_load):
    """Arrays of the right shapes, but 2 MB of zeros deflated to a few kB: not in the file."""
    model = wide_model()
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    data = zipped(members(saved(model, tmp_path)), zipfile.ZIP_DEFLATED)
    assert len(data) < 40_000
    with pytest.raises(ModelError, match=r"holds 2\.0 MB of weights \(0\.0 MB stored\)"):
        load_uploaded_model(data, "m.keras")
    assert no_keras_load == []


def test_declared_weights_above_the_bound_are_refused(tmp_path, monkeypatch, no_keras_load):
    monkeypatch.setattr(upload_safety, "MAX_UPLOAD_WEIGHT_BYTES", 2**20)
    with pytest.raises(ModelError, match=r"declares 512,612 weights \(2\.0 MB\); up to 1 MB"):
        load_uploaded_model(saved(wide_model(), tmp_path), "m.keras")
    assert no_keras_load == []


def test_the_upload_bound_admits_vgg19_and_equals_the_file_limit():
    vgg19_bytes = 143_667_240 * 4
    assert vgg19_bytes <= upload_safety.MAX_UPLOAD_WEIGHT_BYTES == upload_safety.MAX_MODEL_BYTES


def test_a_complete_file_still_loads_with_its_weights(tmp_path):
    model = wide_model()
    loaded = load_uploaded_model(saved(model, tmp_path), "m.keras")
    for got, want in zip(loaded.model.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_keras_load_errors_are_finished_not_cut_at_a_colon(tmp_path):
    """Weights of a 5-class head in a 3-class model: Keras' message ends its first line with
    "Example error message for object <Dense ...>:"; the user gets the detail after it."""
    small = members(saved(tiny_cnn(size=16, classes=3), tmp_path))
    other = members(saved(tiny_cnn(size=16, classes=5), tmp_path))
    small["model.weights.h5"] = other["model.weights.h5"]
    with pytest.raises(ModelError) as info:
        load_uploaded_model(zipped(small), "m.keras")
    text = str(info.value)
    assert "weights do not match its layers" in text
    assert not text.rstrip(".)").endswith(":")
    assert "(6, 3)" in text and "(6, 5)" in text  # the shapes Keras compared


def test_uploads_load_one_at_a_time(tmp_path, monkeypatch):
    data = saved(tiny_cnn(size=16), tmp_path)
    real = keras.models.load_model
    running, most = [0], [0]
    guard = threading.Lock()

    def slow_load(*args, **kwargs):
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)
        try:
            return real(*args, **kwargs)
        finally:
            with guard:
                running[0] -= 1

    monkeypatch.setattr(keras.models, "load_model", slow_load)
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        load_uploaded_model(data, "m.keras").info.last_conv_layer)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["conv_b"] * 3
    assert most[0] == 1


def memory_mb() -> dict[str, int]:
    """Resident memory now and its peak (VmHWM), MB, of this process."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {k: int(fields[k].split()[0]) // 1024 for k in ("VmRSS", "VmHWM")}


def reset_peak_memory() -> bool:
    """Start a new VmHWM peak at the current VmRSS (Linux 4.0+); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return memory_mb()["VmHWM"] - memory_mb()["VmRSS"] < 5


def test_a_1_kb_file_declaring_100_million_weights_costs_no_memory(tmp_path):
    """The issue's second file: config.json alone, 98 M weights (380 MB) declared."""
    model = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Conv2D(8, 3),
                              keras.layers.Flatten(), keras.layers.Dense(2)])
    config = json.loads(members(saved(model, tmp_path))["config.json"])
    config["config"]["layers"][-1]["config"]["units"] = 3190  # 62*62*8*3190 = 98 M
    data = zipped({"config.json": json.dumps(config).encode()}, zipfile.ZIP_DEFLATED)
    assert len(data) < 1500
    if not Path("/proc/self/status").exists() or not reset_peak_memory():
        pytest.skip("needs Linux /proc to reset and read the peak resident memory")
    before = memory_mb()
    with pytest.raises(ModelError, match="declare 98 million weights .* holds no weights"):
        load_uploaded_model(data, "bomb.keras")
    # Building it would take 380 MB at least; refused, the peak grows by a few MB.
    assert memory_mb()["VmHWM"] - before["VmRSS"] < 60
