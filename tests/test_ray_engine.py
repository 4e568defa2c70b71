"""The Ray engine gives what the local engine gives: same rows, maps and files, in dataset order.

One test starts a local Ray (one actor; 30 to 60 s on this machine, most of it Ray starting and
the actor importing TensorFlow); the others check the pieces without Ray (batches arriving
out of order, readers that travel, no Ray installed).
"""
from __future__ import annotations

import io
import json
import pickle
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.conftest import tiny_cnn, wrap
from viz_core.dataset.engine import RunCollector, explain_entries, run_dataset
from viz_core.dataset.readers import Dataset, DatasetEntry, open_dataset, open_zip, sample_dataset
from viz_core.dataset.ray_engine import from_rows, to_rows


def scenes_folder(root, count=12):
    """The first ``count`` shapes sample scenes as PNG files in class folders, plus a file
    that is no image; returns the folder."""
    sample = sample_dataset("shapes", ("circle", "square", "triangle", "star"), count=count)
    for entry in sample.entries:
        path = root / entry.path
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sample.load(entry).pixels).save(path)
    (root / "square" / "scene_0001_notes.png").write_text("not an image")
    return root


def test_rows_travel_and_come_back_in_dataset_order():
    """A batch's result as Ray Data columns and back; batches arriving in any order give the
    local engine's run (skipped file included)."""
    model = wrap(tiny_cnn(classes=3))
    rng = np.random.default_rng(1)
    good = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    pngs = {}
    for i in range(5):
        buffer = io.BytesIO()
        Image.fromarray(np.roll(good, 3 * i, axis=1)).save(buffer, format="PNG")
        pngs[f"{i}.png"] = buffer.getvalue()
    pngs["2.png"] = b"not an image"
    entries = tuple(DatasetEntry(p, None, None) for p in sorted(pngs))
    data = Dataset("d", "unlabelled", entries, (), model.labels, (), "d", pngs.__getitem__)
    local = run_dataset(model, data, batch_size=2, map_size=8)

    layer = model.info.last_conv_layer
    parts = [explain_entries(model, data.reader, [(i, entries[i].path) for i in chunk],
                             layer=layer, map_size=8) for chunk in ([0, 1], [2, 3], [4])]
    collector = RunCollector(model, data, layer=layer, method="gradcam", with_files=False)
    for part in reversed(parts):
        collector.add(from_rows(to_rows(part, 3, 8), with_files=False))
    run = collector.finish()
    assert run.paths == local.paths == ("0.png", "1.png", "3.png", "4.png")
    assert [s.file for s in run.skipped] == ["2.png"] and "text file" in run.skipped[0].reason
    np.testing.assert_array_equal(run.predicted, local.predicted)
    np.testing.assert_allclose(run.probabilities, local.probabilities, atol=1e-6)
    np.testing.assert_allclose(run.maps, local.maps, atol=1e-6)


def test_readers_read_the_same_images_after_pickling(tmp_path):
    """What a Ray worker gets: each dataset kind's reader, pickled, reads the same bytes."""
    classes = ("circle", "square", "triangle", "star")
    folder = scenes_folder(tmp_path / "scenes", count=4)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*.png")):
            archive.write(path, path.relative_to(folder).as_posix())
    (tmp_path / "scenes.zip").write_bytes(buffer.getvalue())
    for data in (open_dataset(folder, classes), open_dataset(tmp_path / "scenes.zip", classes),
                 open_zip(buffer.getvalue(), classes), sample_dataset("shortcut", classes, 4)):
        copy = pickle.loads(pickle.dumps(data.reader))
        for entry in data.entries:
            mine, theirs = data.reader(entry.path), copy(entry.path)
            if isinstance(mine, bytes):
                assert mine == theirs
            else:
                np.testing.assert_array_equal(mine.pixels, theirs.pixels)


def test_without_ray_the_engine_is_one_error_line(monkeypatch, tmp_path, capsys):
    from viz_core.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert main(["dataset", "--data", "sample:shapes", "--engine", "ray",
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert "pip install -r requirements-ray.txt" in err[0]
    assert main(["dataset", "--data", "sample:shapes", "--ray-address", "ray://x:10001",
                 "--out", str(tmp_path)]) == 2
    assert "--ray-address goes with --engine ray" in capsys.readouterr().err


@pytest.mark.slow  # starts a Ray cluster (worker processes)
def test_both_engines_write_the_same_results(tmp_path, capsys):
    """12 scenes and a broken file, read by the Ray actors from the folder: same JSON (paths
    and time aside) and the same full-size maps as the local engine."""
    pytest.importorskip("ray")
    from viz_core.cli import main

    folder = scenes_folder(tmp_path / "scenes")
    payloads = {}
    for engine in ("local", "ray"):
        assert main(["dataset", "--data", str(folder), "--batch-size", "4", "--clusters", "2",
                     "--engine", engine, "--ray-workers", "1", "--out", str(tmp_path / engine),
                     "--json"]) == 0
        payloads[engine] = json.loads(capsys.readouterr().out)
    local, ray = payloads["local"], payloads["ray"]
    assert local["images"] == 12 and local["accuracy"] == 1.0
    assert [s["file"] for s in ray["skipped"]] == ["square/scene_0001_notes.png"]
    for a, b in zip(local["results"], ray["results"]):
        np.testing.assert_allclose(np.load(a["npy"]), np.load(b["npy"]), atol=1e-5)

    def comparable(payload):
        out = {k: v for k, v in payload.items() if k not in ("seconds", "mean_maps")}
        out["results"] = [{k: v for k, v in r.items() if k != "npy"} for r in payload["results"]]
        out["clusters"] = [{k: v for k, v in c.items() if k != "png"}
                           for c in payload["clusters"]]
        return out

    assert comparable(ray) == comparable(local)
    assert [r["npy"].rsplit("/", 1)[-1] for r in ray["results"]] == [
        r["npy"].rsplit("/", 1)[-1] for r in local["results"]]


def test_the_ray_extra_and_its_requirements_file_pin_the_same_ray():
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    pins = [line.strip() for line in (root / "requirements-ray.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    extra = tomllib.loads((root / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["ray"]
    assert pins == extra == ["ray[data]==2.60.0"]
    assert "-r requirements-ray.txt" in (root / "requirements-dev.txt").read_text().splitlines()


def test_an_actor_runs_the_chosen_method_and_its_parameters():
    """The Ray actor's per-batch call (here without Ray) passes the method and its parameters
    to the local engine's per-batch function: the same maps as a local run."""
    from viz_core.dataset.ray_engine import ExplainWorker, ModelRecipe
    from viz_core.models.catalog import load_demo_model

    model = load_demo_model()
    data = sample_dataset("shapes", model.labels, count=4)
    params = {"samples": 3, "noise": 0.1, "seed": 5}
    local = run_dataset(model, data, batch_size=4, map_size=8, method="smoothgrad",
                        params=params)
    assert local.layer == "input" and dict(local.params) == params
    worker = ExplainWorker(ModelRecipe(builtin="demo"), data.reader, local.layer, 8, None,
                           method="smoothgrad", params=params)
    rows = worker({"position": np.arange(4), "path": np.asarray([e.path for e in data.entries])})
    part = from_rows(rows, with_files=False)
    np.testing.assert_array_equal(part.predicted, local.predicted)
    np.testing.assert_allclose(part.maps, local.maps, atol=1e-5)
    gradcam = run_dataset(model, data, batch_size=4, map_size=8)
    assert np.abs(gradcam.maps - local.maps).max() > 0.1  # the method did change the maps
