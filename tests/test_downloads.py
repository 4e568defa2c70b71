"""ImageNet weights download (issue 15, item 4): progress, a whole checked file or none, and
plain messages. Never the network: ``file://`` URLs and fake openers into a temporary Keras
cache (``KERAS_HOME``)."""
from __future__ import annotations

import ast
import dataclasses
import errno
import hashlib
import http.client
import inspect
import io
import socket
import urllib.error
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from viz_core.models import builtin_models, catalog
from viz_core.models.downloads import DownloadError, describe_progress, fetch
from viz_core.errors import WeightsUnavailableError

MB = 2**20


def payload(size: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


class FakeResponse(io.BytesIO):
    """What ``urlopen`` returns: a readable body and headers (a Content-Length that may lie)."""

    def __init__(self, body: bytes, length: int | None = None, fail_after: int | None = None,
                 failure: BaseException | None = None):
        super().__init__(body)
        self.headers = {} if length is None else {"Content-Length": str(length)}
        self.fail_after, self.failure = fail_after, failure
        self.reads = 0

    def read(self, amount=-1):
        self.reads += 1
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise self.failure
        return super().read(amount)


def opener_of(response_or_error):
    def opener(url, timeout):
        assert timeout > 0  # a silent server never hangs the app
        if isinstance(response_or_error, BaseException):
            raise response_or_error
        return response_or_error
    return opener


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_file_url_lands_in_the_cache_whole_with_rising_progress(tmp_path):
    data = payload(300_000)
    source = tmp_path / "weights.h5"
    source.write_bytes(data)
    target = tmp_path / "keras" / "models" / "w.h5"
    seen = []
    fetch(source.as_uri(), target, file_hash=hashlib.md5(data).hexdigest(),
          progress=lambda done, total, seconds: seen.append((done, total, seconds)),
          chunk_bytes=65_536)
    assert target.read_bytes() == data
    assert hashlib.md5(target.read_bytes()).hexdigest() == hashlib.md5(data).hexdigest()
    done = [d for d, _, _ in seen]
    # 0, then one report per 64 KiB chunk: 65536, 131072, 196608, 262144, 300000
    assert done == [0, 65_536, 131_072, 196_608, 262_144, 300_000]
    assert {t for _, t, _ in seen} == {300_000}  # file:// gives the size up front
    assert all(b >= a for (_, _, a), (_, _, b) in zip(seen, seen[1:]))
    assert leftovers(target.parent) == ["w.h5"]  # no temporary file beside it


def test_a_sha256_hash_is_checked_too(tmp_path):
    data = payload(1000, seed=1)
    source = tmp_path / "w"
    source.write_bytes(data)
    target = tmp_path / "models" / "w.h5"
    fetch(source.as_uri(), target, file_hash=hashlib.sha256(data).hexdigest().upper())
    assert target.read_bytes() == data


def test_a_damaged_download_is_not_kept(tmp_path):
    source = tmp_path / "w"
    source.write_bytes(payload(5000))
    target = tmp_path / "models" / "w.h5"
    with pytest.raises(DownloadError) as info:
        fetch(source.as_uri(), target, file_hash="0" * 32, what="VGG16's ImageNet weights")
    assert "VGG16's ImageNet weights is damaged" in str(info.value)
    assert "checksum does not match" in str(info.value)
    assert leftovers(target.parent) == []


def test_a_web_page_instead_of_weights_is_not_kept(tmp_path):
    """With no hash to check (Keras has none for MobileNetV2), a proxy's page served with
    status 200 is caught by the HDF5 signature."""
    page = b"<!DOCTYPE html><html><body>Please log in to the wifi</body></html>"
    target = tmp_path / "models" / "w.h5"
    with pytest.raises(DownloadError) as info:
        fetch("https://h/w.h5", target, starts_with=catalog.HDF5_SIGNATURE,
              opener=opener_of(FakeResponse(page, length=len(page))), what="the weights")
    assert "What h sent for the weights is not a weights file" in str(info.value)
    assert leftovers(target.parent) == []
    fine = catalog.HDF5_SIGNATURE + b"rest of the file"
    fetch("https://h/w.h5", target, starts_with=catalog.HDF5_SIGNATURE,
          opener=opener_of(FakeResponse(fine, length=len(fine))))
    assert target.read_bytes() == fine


def test_a_cut_connection_leaves_no_partial_file(tmp_path):
    target = tmp_path / "models" / "w.h5"
    cut = FakeResponse(payload(600_000), length=1_000_000)  # says 1,000,000, sends 600,000
    with pytest.raises(DownloadError) as info:
        fetch("https://example.invalid/w.h5", target, opener=opener_of(cut), chunk_bytes=MB)
    assert "stopped after 0.6 MB of 1.0 MB" in str(info.value)
    assert "example.invalid" in str(info.value) and "Nothing was kept" in str(info.value)
    assert leftovers(target.parent) == []


def test_http_s_own_incomplete_read_is_a_cut_connection(tmp_path):
    target = tmp_path / "models" / "w.h5"
    broken = FakeResponse(payload(200), length=1000, fail_after=200,
                          failure=http.client.IncompleteRead(b"", 800))
    with pytest.raises(DownloadError, match="stopped after"):
        fetch("https://example.invalid/w.h5", target, opener=opener_of(broken))
    assert leftovers(target.parent) == []


@pytest.mark.parametrize("failure, words", [
    (urllib.error.HTTPError("https://h/w.h5", 404, "Not Found", {}, None),
     "the server h answered HTTP 404 (Not Found)"),
    (urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution")),
     "h could not be found (is this machine connected to the internet?)"),
    (urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")),
     "the connection to h failed (Connection refused)"),
    (socket.timeout("timed out"), "h stopped answering"),
])
def test_network_failures_say_what_happened_and_what_to_do(tmp_path, failure, words):
    target = tmp_path / "models" / "vgg16.h5"
    with pytest.raises(DownloadError) as info:
        fetch("https://h/w.h5", target, opener=opener_of(failure), what="the weights")
    text = str(info.value)
    assert text.startswith("Could not download the weights: ") and words in text
    assert f"put the file vgg16.h5 in {target.parent}/ by hand" in text.lower()
    assert leftovers(target.parent) == []


def test_a_full_disk_is_said_before_downloading(tmp_path, monkeypatch):
    import viz_core.models.downloads as downloads

    usage = downloads.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(downloads.shutil, "disk_usage",
                        lambda path: usage._replace(free=100 * MB))
    target = tmp_path / "models" / "w.h5"
    body = FakeResponse(payload(1000), length=528 * MB)
    with pytest.raises(DownloadError) as info:
        fetch("https://h/w.h5", target, opener=opener_of(body))
    assert "it needs 528.0 MB and the disk holding" in str(info.value)
    assert "has 100.0 MB free" in str(info.value)
    assert body.reads == 0 and leftovers(target.parent) == []  # not a byte was read


def test_a_disk_that_fills_up_midway_leaves_nothing(tmp_path):
    target = tmp_path / "models" / "w.h5"
    full = FakeResponse(payload(3000), length=3000, fail_after=1000,
                        failure=OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(DownloadError, match="the disk holding .* is full"):
        fetch("https://h/w.h5", target, opener=opener_of(full), chunk_bytes=500)
    assert leftovers(target.parent) == []


def test_progress_text_has_size_and_time_left():
    assert describe_progress(0, None, 0.0) == (None, "0.0 MB so far")
    # 132 of 528 MB after 30 s: 396 MB to go at 4.4 MB/s = 90 s, "2 min"
    fraction, text = describe_progress(132 * MB, 528 * MB, 30.0)
    assert fraction == pytest.approx(0.25)
    assert text == "132.0 of 528.0 MB, about 2 min left"
    assert describe_progress(264 * MB, 528 * MB, 20.0)[1] == "264.0 of 528.0 MB, about 20 s left"
    assert describe_progress(528 * MB, 528 * MB, 400.0) == (1.0, "528.0 MB in 7 min")


def test_the_catalog_holds_keras_own_urls_and_hashes():
    """Our download gets the file Keras would: the URL (or its folder, which Keras joins
    with the file's name), the file's name and the hash are string constants of the installed
    Keras Application's source."""
    for spec in catalog.BUILTIN_MODELS:
        if spec.bundled:
            assert not spec.weights_url
            continue
        source = Path(inspect.getsourcefile(getattr(keras.applications, spec.constructor)))
        strings = {node.value for node in ast.walk(ast.parse(source.read_text()))
                   if isinstance(node, ast.Constant) and isinstance(node.value, str)}
        name = spec.weights_url.rsplit("/", 1)[1]
        assert name == spec.weights_file
        assert any(spec.weights_url.startswith(s) and s.startswith("https://")
                   for s in strings), spec.name
        # the name, or the fixed part of an f-string Keras builds it with
        assert any(len(s) >= 8 and (name in s or s in name) for s in strings), spec.name
        assert spec.weights_hash in strings if spec.weights_hash else spec.name == "mobilenet_v2"


def small_application(weights=None, include_top=True, input_shape=(224, 224, 3), classes=1000):
    """A stand-in for a Keras Application (same call, same legacy .h5 weights loading), small
    enough for a fast test: a conv layer, pooling, a 1000-class head."""
    keras.utils.set_random_seed(7 if weights is None else 8)
    model = keras.Sequential([keras.Input(input_shape),
                              keras.layers.Conv2D(4, 3, name="Conv1"),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(classes, activation="softmax", name="head")])
    if weights is not None:
        model.load_weights(weights)  # an .h5 name: Keras' legacy HDF5 loader, as Keras uses
    return model


@pytest.fixture
def served_weights(tmp_path, monkeypatch):
    """Weights of :func:`small_application` in a local file, and a catalogue entry for
    ``mobilenet_v2`` built by it and pointing at that file by a ``file://`` URL."""
    from keras.src.legacy.saving import legacy_h5_format

    donor = small_application()
    source = tmp_path / "server" / "weights.h5"
    source.parent.mkdir()
    with h5py.File(source, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, donor)
    digest = hashlib.md5(source.read_bytes()).hexdigest()
    spec = dataclasses.replace(catalog.builtin("mobilenet_v2"), weights_url=source.as_uri(),
                               weights_hash=digest)
    monkeypatch.setattr(builtin_models, "BUILTIN_MODELS", (spec,))
    monkeypatch.setattr(keras.applications, "MobileNetV2", small_application)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return donor, source, spec


def test_choosing_imagenet_downloads_into_the_keras_cache(tmp_path, served_weights):
    donor, source, spec = served_weights
    seen = []
    loaded = catalog.load_builtin_model("mobilenet_v2", "imagenet",
                                        progress=lambda d, t, s: seen.append((d, t)))
    cached = tmp_path / "keras" / "models" / spec.weights_file
    assert hashlib.md5(cached.read_bytes()).hexdigest() == spec.weights_hash
    size = source.stat().st_size
    assert seen[0] == (0, size) and seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    np.testing.assert_array_equal(loaded.model.get_layer("Conv1").get_weights()[0],
                                  donor.get_layer("Conv1").get_weights()[0])
    assert loaded.identity == "mobilenet_v2@imagenet" and loaded.labels[281] == "tabby"
    seen.clear()  # the second time it is in the cache: no download
    catalog.load_builtin_model("mobilenet_v2", "imagenet", progress=lambda *a: seen.append(a))
    assert seen == []


def test_downloaded_weights_keras_cannot_read_are_removed(tmp_path, monkeypatch, served_weights):
    """An HDF5 file with the right hash but no weights in it (what a wrong URL could give):
    Keras refuses it, and it does not stay in the cache for the next student."""
    _, source, spec = served_weights
    with h5py.File(source, "w") as f:
        f.attrs["note"] = "no layers here"
    monkeypatch.setattr(builtin_models, "BUILTIN_MODELS", (dataclasses.replace(
        spec, weights_hash=hashlib.md5(source.read_bytes()).hexdigest()),))
    with pytest.raises(WeightsUnavailableError) as info:
        catalog.load_builtin_model("mobilenet_v2", "imagenet")
    assert str(info.value).startswith("The weights just downloaded for MobileNetV2 could not "
                                      "be read (")
    assert str(info.value).endswith("the file was removed. Try again, or choose weights 'none'.")
    assert leftovers(tmp_path / "keras" / "models") == []


def test_a_failed_download_names_the_file_and_leaves_the_cache_empty(tmp_path, monkeypatch):
    spec = dataclasses.replace(catalog.builtin("vgg16"),
                               weights_url=(tmp_path / "nowhere.h5").as_uri())
    monkeypatch.setattr(builtin_models, "BUILTIN_MODELS", (spec,))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(WeightsUnavailableError) as info:
        catalog.load_builtin_model("vgg16", "imagenet")
    text = str(info.value)
    assert text.startswith("Could not download VGG16's ImageNet weights: ")
    assert f"Put the file {spec.weights_file} in {tmp_path / 'keras' / 'models'}/" in text
    assert leftovers(tmp_path / "keras" / "models") == []


def test_the_command_line_draws_the_download_on_its_progress_line(monkeypatch, tmp_path, capsys):
    import argparse

    import viz_core.runtime.workbench
    from tests.conftest import tiny_cnn, wrap
    from viz_core.cli.common import open_model
    from viz_core.runtime.workbench import Workbench

    loaded = wrap(tiny_cnn(), name="vgg16")

    def loader(name, weights="imagenet", *, progress=None, **kw):
        for done, seconds in ((0, 0.0), (132 * MB, 30.0), (528 * MB, 120.0)):
            progress(done, 528 * MB, seconds)
        return loaded

    monkeypatch.setattr(viz_core.runtime.workbench, "load_builtin_model", loader)
    args = argparse.Namespace(model="vgg16", weights=None, offline=False, progress=True,
                              quiet=False, json=False, labels=None, preprocess=None)
    assert open_model(Workbench(disk_dir=tmp_path), args) is loaded
    lines = capsys.readouterr().err.split("\r")
    assert "25.0% weights: 132.0 of 528.0 MB, about 2 min left" in lines[2]
    assert lines[3].startswith("[" + "#" * 30 + "] 100.0% weights: 528.0 MB in 2 min")
    args.quiet = True
    capsys.readouterr()
    open_model(Workbench(disk_dir=tmp_path), args)
    assert capsys.readouterr().err == ""  # --quiet: no line
