"""The Ray atlas gives the local atlas: same arrays, whatever order and cuts the rows come back in.

One slow test starts a local Ray (one actor: most of its 30 to 60 s is Ray starting and the
actor importing TensorFlow); the others check the pieces without Ray.
"""
from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import tiny_cnn, wrap
from viz_core.dataset.atlas import AtlasBatch, atlas_entries, neuron_atlas, start_atlas
from viz_core.dataset.atlas_ray import AtlasWorker, InOrder, from_rows, to_rows
from viz_core.dataset.readers import Dataset, DatasetEntry, SkippedFile, sample_dataset


def assert_same_atlas(a, b):
    arrays_a, arrays_b = a.arrays(), b.arrays()
    assert arrays_a.keys() == arrays_b.keys()
    for name in arrays_a:
        if name != "seconds":
            np.testing.assert_array_equal(arrays_a[name], arrays_b[name], err_msg=name)


def png_dataset(count=7, broken=(2,)):
    """Seeded random PNGs, some of them broken, without labels."""
    rng = np.random.default_rng(3)
    files = {}
    for i in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, "PNG")
        files[f"{i}.png"] = b"not an image" if i in broken else buffer.getvalue()
    entries = tuple(DatasetEntry(p, None, None) for p in sorted(files))
    return Dataset("d", "unlabelled", entries, (), ("a", "b", "c"), (), "d", files.__getitem__)


def test_rows_in_any_order_and_cuts_give_the_local_atlas():
    """Parts cut unlike the local batches, through Ray's columns, fed last first: the collector
    still sees the local batches in order, so every array (histograms included) is equal."""
    model = wrap(tiny_cnn(classes=3))
    data = png_dataset()
    local = neuron_atlas(model, data, k=3, batch_size=3)
    collector, every = start_atlas(model, data, None, k=3, score="max", channels=None,
                                   batch_size=3)
    parts = [atlas_entries(model, data.reader, [(i, data.entries[i].path, -1) for i in chunk],
                           layer=collector.layer, channels=every, predict=True)
             for chunk in ([0, 1], [2], [3, 4, 5, 6])]
    feed = InOrder(collector, len(data.entries), 3)
    width = len(collector.channels)
    assert feed.add(from_rows(to_rows(parts[2], width))) == 0  # entries 0-2 not back yet
    assert feed.add(from_rows(to_rows(parts[1], width))) == 0
    assert feed.add(from_rows(to_rows(parts[0], width))) == 7
    ray_like = collector.finish()
    assert [s.file for s in ray_like.skipped] == ["2.png"] and ray_like.images == 6
    assert_same_atlas(ray_like, local)


def test_an_all_failed_batch_travels_with_its_width():
    """A batch whose images all failed has no arrays to say how many channels it has."""
    part = AtlasBatch(np.zeros(0, np.int64), np.zeros((0, 0), np.float32),
                      np.zeros((0, 0), np.float32), np.zeros((0, 0, 2), np.int32),
                      np.zeros(0, np.int64), ((4, SkippedFile("4.png", "broken")),))
    rows = to_rows(part, width=5)
    assert rows["maxima"].shape == (1, 5) and rows["where"].shape == (1, 5, 2)
    back = from_rows(rows)
    assert back.failed == ((4, SkippedFile("4.png", "broken")),)
    assert back.maxima.shape == (0, 5) and back.where.shape == (0, 5, 2)


def test_an_actor_gives_the_local_numbers_of_its_batch():
    """The Ray actor's per-batch call (here without Ray): the demo model loaded from its recipe
    gives the driver's model's maxima, positions and classes for the same entries."""
    from viz_core.dataset.ray_engine import ModelRecipe
    from viz_core.models.catalog import load_demo_model

    model = load_demo_model()
    data = sample_dataset("shapes", model.labels, count=4)
    collector, every = start_atlas(model, data, None, k=2, score="max", channels="0:5",
                                   batch_size=4)
    worker = AtlasWorker(ModelRecipe(builtin="demo"), data.reader, collector.layer, 5, every,
                         predict=False)
    labels = [e.class_index for e in data.entries]
    part = from_rows(worker({"position": np.arange(4),
                             "path": np.asarray([e.path for e in data.entries]),
                             "label": np.asarray(labels)}))
    acts = model.side_model([collector.layer])(model.batch(np.stack(
        [model.view(data.load(e)).pixels for e in data.entries])), training=False)
    acts = np.asarray(acts[0] if isinstance(acts, (list, tuple)) else acts)[..., :5]
    np.testing.assert_allclose(part.maxima, acts.max(axis=(1, 2)), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(part.groups, labels)


def test_without_ray_the_atlas_engine_is_one_error_line(monkeypatch, tmp_path, capsys):
    from viz_core.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert main(["atlas", "--data", "sample:shapes", "--engine", "ray",
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install -r requirements-ray.txt" in err[0]
    assert main(["atlas", "--data", "sample:shapes", "--ray-address", "ray://x:10001",
                 "--out", str(tmp_path)]) == 2
    assert "--ray-address goes with --engine ray" in capsys.readouterr().err
    # refused while parsing, before TensorFlow and Ray
    assert main(["atlas", "--data", "sample:shapes", "--engine", "ray", "--workers", "0",
                 "--out", str(tmp_path)]) == 2
    assert "number of Ray workers must be" in capsys.readouterr().err


@pytest.mark.slow  # starts a Ray cluster (worker processes)
def test_the_ray_engine_gives_the_local_atlas():
    """12 demo scenes in batches of 4 on one local Ray actor: the same atlas arrays as the
    local engine, and progress reaches every image."""
    pytest.importorskip("ray")
    from viz_core.dataset.atlas_ray import neuron_atlas_ray
    from viz_core.dataset.ray_engine import ModelRecipe
    from viz_core.models.catalog import load_demo_model

    model = load_demo_model()
    data = sample_dataset("shapes", model.labels, count=12)
    local = neuron_atlas(model, data, k=3, channels="0:6", batch_size=4)
    seen = []
    ray = neuron_atlas_ray(model, data, k=3, channels="0:6", batch_size=4,
                           recipe=ModelRecipe(builtin="demo"), workers=1,
                           progress=lambda f, m: seen.append(f))
    assert seen[-1] == 1.0 and ray.images == 12
    assert_same_atlas(ray, local)
