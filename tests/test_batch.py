"""Batched Grad-CAM and the local engine: same maps as one image at a time, bounded memory."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from tests.conftest import clashing_names_cnn, nested_cnn, tiny_cnn, wrap
from viz_core.dataset.engine import explain_batch, map_file_name, run_dataset
from viz_core.methods.heatmap import class_heatmap
from viz_core.dataset.readers import sample_dataset
from viz_core.errors import Cancelled, ParameterError
from viz_core.inputs.intake import image_from_array
from viz_core.maps import resize_map
from viz_core.models.targets import Target


def images(model, n, seed=0):
    rng = np.random.default_rng(seed)
    h, w, _ = model.info.input_shape
    return [model.view(image_from_array(rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
                                        f"img{i}")) for i in range(n)]


@pytest.mark.parametrize("build", [lambda: tiny_cnn(classes=3), lambda: nested_cnn(classes=1),
                                   clashing_names_cnn])
def test_batched_maps_equal_one_image_class_heatmaps(build):
    model = wrap(build())
    views = images(model, 5)
    result = explain_batch(model, np.stack([v.pixels for v in views]), map_size=8, full=True)
    assert result.maps.shape == (5, 8, 8) and result.full_maps.shape[1:] == (
        *model.info.input_shape[:2],)
    for i, view in enumerate(views):
        single = class_heatmap(model, view, Target(int(result.predicted[i])))
        np.testing.assert_allclose(result.full_maps[i], single.heatmap, atol=1e-4)
        np.testing.assert_allclose(result.maps[i], resize_map(single.heatmap, 8, 8), atol=1e-4)
        assert result.probabilities[i, result.predicted[i]] == pytest.approx(
            single.probability, abs=1e-5)
        assert result.predicted[i] == int(np.argmax(result.probabilities[i]))


def test_explicit_targets_and_bad_input():
    model = wrap(tiny_cnn(classes=3))
    pixels = np.stack([v.pixels for v in images(model, 2)])
    result = explain_batch(model, pixels, targets=np.array([2, 0]), map_size=4)
    assert result.predicted.tolist() == [2, 0]
    single = class_heatmap(model, model.view(image_from_array(
        pixels[1].astype(np.uint8), "x")), Target(0))
    np.testing.assert_allclose(result.maps[1], resize_map(single.heatmap, 4, 4), atol=1e-4)
    with pytest.raises(ParameterError, match=r"\(N, 32, 32, 3\)"):
        explain_batch(model, pixels[:, :16])
    with pytest.raises(ParameterError, match="layer .head. has output shape"):
        explain_batch(model, pixels, layer="head")


def test_engine_on_the_demo_model(tmp_path):
    from viz_core.models.catalog import load_demo_model
    model = load_demo_model()
    data = sample_dataset("shapes", model.labels, count=12)
    seen = []
    run = run_dataset(model, data, batch_size=5, full_maps_dir=tmp_path,
                      progress=lambda f, m: seen.append((round(f, 3), m)))
    assert len(run) == 12 and run.maps.shape == (12, 28, 28) and run.maps.dtype == np.float32
    assert run.accuracy == pytest.approx(1.0)
    assert run.confusion().trace() == 12 and run.confusion().sum(axis=1).tolist() == [3, 3, 3, 3]
    assert [f for f, _ in seen] == [0.0, 0.417, 0.833, 1.0]
    assert "12 of 12 images" in seen[-1][1]
    full = np.load(run.map_files[3])
    assert full.shape == (150, 150) and full.dtype == np.float32 and full.max() == 1.0
    np.testing.assert_allclose(resize_map(full, 28, 28), run.maps[3], atol=1e-5)
    assert run.map_files[3].endswith(map_file_name(3, run.paths[3]))
    with pytest.raises(Cancelled, match="after 5 of 12"):
        calls = iter([False, True])
        run_dataset(model, data, batch_size=5, should_stop=lambda: next(calls))


def test_bad_images_are_skipped_and_the_run_goes_on():
    from viz_core.dataset.readers import Dataset, DatasetEntry
    model = wrap(tiny_cnn(classes=3))
    good = images(model, 1)[0].original

    def read(path):
        if path == "b.png":
            return b"not an image"
        return image_from_array(good, path)

    entries = tuple(DatasetEntry(p, None, None) for p in ("a.png", "b.png", "c.png"))
    data = Dataset("d", "unlabelled", entries, (), model.labels, (), "d", read)
    run = run_dataset(model, data, batch_size=2)
    assert run.paths == ("a.png", "c.png") and run.accuracy is None and run.confusion() is None
    assert [s.file for s in run.skipped] == ["b.png"] and "text file" in run.skipped[0].reason


def test_memory_held_by_the_engine_grows_with_small_maps_not_images():
    """tracemalloc sees numpy's buffers: the peak of a 4x longer run grows by about the small
    maps and probability rows of the extra images, far less than their pixels."""
    model = wrap(tiny_cnn(size=64, classes=3))

    def peak(count):
        data = sample_dataset("shapes", model.labels, count=count)
        run_dataset(model, data, batch_size=8, map_size=8)  # warm up the compiled step
        tracemalloc.start()
        run = run_dataset(model, data, batch_size=8, map_size=8)
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return top, run

    small_peak, _ = peak(16)
    large_peak, run = peak(64)
    extra = 48
    pixels_of_extra = extra * 64 * 64 * 3 * 4
    assert run.maps.nbytes == 64 * 8 * 8 * 4
    assert large_peak - small_peak < pixels_of_extra / 4, (small_peak, large_peak)
