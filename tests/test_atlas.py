"""The neuron atlas on hand-built models with known answers: exemplars, fields, selectivity."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from viz_core.dataset.atlas import (BINS, Atlas, AtlasBatch, AtlasCollector, Field,
                                    cached_atlas, layer_field, neuron_atlas, parse_channels)
from viz_core.dataset.readers import Dataset, DatasetEntry
from viz_core.errors import ParameterError
from viz_core.inputs.intake import image_from_array
from viz_core.models.in_memory import from_keras
from viz_core.runtime.cache import DiskCache

SIDE = 8


class ArrayReader:
    """Reads generated images by path, counting the reads."""

    def __init__(self, images: dict):
        self.images, self.reads = images, 0

    def __call__(self, path):
        self.reads += 1
        return image_from_array(self.images[path], path)


def bright_pixel_model():
    """Conv 3x3 'same' with hand-set kernels: channel 0 = the pixel's brightness (x/255 after
    'unit' preprocessing, averaged over RGB), channel 1 = minus it."""
    inputs = keras.Input((SIDE, SIDE, 3), name="pixels")
    conv = keras.layers.Conv2D(2, 3, padding="same", use_bias=False, name="bright")
    x = conv(inputs)
    x = keras.layers.GlobalMaxPooling2D(name="pool")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs)
    kernel = np.zeros((3, 3, 3, 2), np.float32)
    kernel[1, 1, :, 0] = 1 / 3
    kernel[1, 1, :, 1] = -1 / 3
    conv.set_weights([kernel])
    return from_keras(model, labels=["dim", "lit"], preprocess="unit", name="bright")


# (brightness, row, col, label) of each image's single lit pixel
SPOTS = [(40, 1, 2, "dim"), (200, 5, 6, "lit"), (120, 0, 7, "lit"), (250, 7, 0, "lit"),
         (10, 3, 3, "dim"), (90, 6, 1, "dim")]


def spot_dataset(spots=SPOTS, labelled=True):
    images, entries = {}, []
    for i, (value, y, x, label) in enumerate(spots):
        img = np.zeros((SIDE, SIDE, 3), np.uint8)
        img[y, x] = value
        path = f"img_{i:04d}.png"
        images[path] = img
        entries.append(DatasetEntry(path, label if labelled else None,
                                    ({"dim": 0, "lit": 1}[label] if labelled else None)))
    reader = ArrayReader(images)
    return Dataset("spots", "sample", tuple(entries), (), ("dim", "lit"), (),
                   f"spots:{len(spots)}:{labelled}", reader), reader


@pytest.fixture(scope="module")
def model():
    return bright_pixel_model()


def test_top_k_order_values_and_positions_are_exact(model):
    dataset, _ = spot_dataset()
    atlas = neuron_atlas(model, dataset, "bright", k=3, batch_size=4)  # two batches
    top = atlas.exemplars(0, "top")
    assert [t["image"] for t in top] == ["img_0003.png", "img_0001.png", "img_0002.png"]
    assert [t["activation"] for t in top] == pytest.approx([250 / 255, 200 / 255, 120 / 255],
                                                           abs=1e-5)
    assert [t["position"] for t in top] == [[7, 0], [5, 6], [0, 7]]
    bottom = atlas.exemplars(0, "bottom")
    assert [b["image"] for b in bottom] == ["img_0004.png", "img_0000.png", "img_0005.png"]
    # channel 1 is minus the brightness: its maximum (0) sits on the first dark pixel
    assert atlas.exemplars(1, "top")[0]["position"] == [0, 0]
    assert atlas.exemplars(1, "top")[0]["activation"] == pytest.approx(0.0, abs=1e-6)
    # the box is the 3x3 field around the maximum, clipped at the corner
    assert top[0]["box"] == [0, 6, 2, 8]
    assert top[1]["box"] == [5, 4, 8, 7]


def test_selectivity_by_hand(model):
    dataset, _ = spot_dataset()
    atlas = neuron_atlas(model, dataset, "bright", k=2)
    # channel 0's spatial mean is brightness / 255 / 64; class means by hand
    dim = np.mean([40, 10, 90]) / 255 / 64
    lit = np.mean([200, 120, 250]) / 255 / 64
    np.testing.assert_allclose(atlas.class_means[0], [dim, lit], rtol=1e-5)
    assert atlas.selective_for[0] == 1
    assert atlas.selectivity[0] == pytest.approx((lit - dim) / (lit + dim), rel=1e-4)
    assert atlas.grouped_by == "label"
    assert atlas.to_index()["channels"][0]["selective_for"] == "lit"
    assert atlas.class_counts.tolist() == [3, 3]


def test_unlabelled_images_are_grouped_by_prediction(model):
    dataset, _ = spot_dataset(labelled=False)
    atlas = neuron_atlas(model, dataset, "bright", k=2)
    assert atlas.grouped_by == "predicted"
    assert atlas.class_counts.sum() == len(SPOTS)


def test_histogram_counts_every_image_once(model):
    dataset, _ = spot_dataset()
    atlas = neuron_atlas(model, dataset, "bright", k=2, batch_size=2)
    counts, edges = atlas.histogram(0)
    assert counts.sum() == len(SPOTS) and len(edges) == BINS + 1
    scores = np.asarray([value for value, *_ in SPOTS]) / 255
    assert edges[0] <= scores.min() and scores.max() < edges[-1]
    centres = (edges[:-1] + edges[1:]) / 2  # the bins' mean is the scores' mean, to a bin
    assert (counts * centres).sum() / counts.sum() == pytest.approx(scores.mean(),
                                                                    abs=edges[1] - edges[0])


def field_model(*layers, side=12):
    inputs = keras.Input((side, side, 1))
    x = inputs
    for layer in layers:
        x = layer(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    return from_keras(keras.Model(inputs, outputs), labels=["a", "b"])


def test_field_of_a_3x3_conv_after_a_stride_2_pool():
    loaded = field_model(keras.layers.MaxPooling2D(2, name="pool"),
                         keras.layers.Conv2D(1, 3, name="conv"))
    field = layer_field(loaded, "conv")
    # pool: size 2, jump 2; conv 3x3 on it: 2 + (3 - 1) * 2 = 6, jump 2, start 0
    assert field == Field((6, 6), (2, 2), (0, 0))
    assert field.box(1, 2, 12, 12) == (4, 2, 10, 8)


def test_field_with_same_padding_is_clipped_at_the_border():
    loaded = field_model(keras.layers.MaxPooling2D(2, name="pool"),
                         keras.layers.Conv2D(1, 3, padding="same", name="conv"))
    field = layer_field(loaded, "conv")
    assert field == Field((6, 6), (2, 2), (-2, -2))  # one padded unit = 2 input pixels
    assert field.box(0, 0, 12, 12) == (0, 0, 4, 4)
    assert field.box(5, 5, 12, 12) == (8, 8, 12, 12)  # 8 + 6 = 14, clipped to 12


def test_field_with_dilation_and_strided_same_conv():
    loaded = field_model(keras.layers.Conv2D(1, 3, dilation_rate=2, name="dilated"),
                         keras.layers.Conv2D(1, 3, strides=2, padding="same", name="strided"),
                         side=13)
    assert layer_field(loaded, "dilated") == Field((5, 5), (1, 1), (0, 0))
    # on 9 pixels, stride 2 'same': 5 outputs, total padding (5-1)*2 + 3 - 9 = 2, one before
    assert layer_field(loaded, "strided") == Field((7, 7), (2, 2), (-1, -1))


def test_memory_is_k_per_channel_and_top_k_equals_brute_force():
    rng = np.random.default_rng(3)
    images, channels, k = 1000, 5, 4
    scores = rng.normal(size=(images, channels)).astype(np.float32)
    entries = tuple(DatasetEntry(f"{i:04d}.png", None, None) for i in range(images))
    dataset = Dataset("many", "unlabelled", entries, (), ("a", "b"), (), "many", None)

    class Labels:
        labels = ("a", "b")
        identity = "toy"

        class info:
            input_shape = (16, 16, 3)

    collector = AtlasCollector(Labels, dataset, layer="conv", k=k, score="max",
                               channels=np.arange(channels), grouped_by="label",
                               field=Field((3, 3), (1, 1), (0, 0)), grid_size=(4, 4))
    for start in range(0, images, 64):
        stop = min(images, start + 64)
        n = stop - start
        collector.add(AtlasBatch(np.arange(start, stop), scores[start:stop],
                                 scores[start:stop], np.zeros((n, channels, 2), np.int32),
                                 np.zeros(n, np.int64), ()))
        assert all(a.shape[:2] == (channels, min(k, stop)) for a in collector.top)
        assert all(a.shape[:2] == (channels, min(k, stop)) for a in collector.bottom)
    atlas = collector.finish()
    expected_top = np.argsort(-scores, axis=0, kind="stable")[:k].T
    expected_bottom = np.argsort(scores, axis=0, kind="stable")[:k].T
    np.testing.assert_array_equal(atlas.entries[atlas.top_refs], expected_top)
    np.testing.assert_array_equal(atlas.entries[atlas.bottom_refs], expected_bottom)
    assert len(atlas.names) <= 2 * k * channels
    assert atlas.hist_counts.sum(axis=1).tolist() == [images] * channels


def test_index_round_trips_and_the_cache_answers_a_second_visit(model, tmp_path):
    dataset, reader = spot_dataset()
    disk = DiskCache(tmp_path)
    first = cached_atlas(model, dataset, "bright", disk=disk, k=3)
    reads = reader.reads
    second = cached_atlas(model, dataset, "bright", disk=disk, k=3)
    assert reader.reads == reads  # nothing read again
    index = first.to_index()
    assert json.loads(json.dumps(index)) == index
    assert second.to_index() == index
    assert Atlas.from_arrays(first.arrays()).to_index() == index
    assert index["layer"] == "bright" and index["images"] == len(SPOTS)
    assert set(index["channels"][0]) >= {"channel", "top", "bottom", "mean_by_class",
                                         "selective_for", "selectivity"}
    other = cached_atlas(model, dataset, "bright", disk=disk, k=2)  # another k: computed
    assert reader.reads > reads and other.k == 2


def test_options_are_checked(model):
    dataset, _ = spot_dataset()
    with pytest.raises(ParameterError, match="k"):
        neuron_atlas(model, dataset, "bright", k=0)
    with pytest.raises(ParameterError, match="'median'"):
        neuron_atlas(model, dataset, "bright", score="median")
    with pytest.raises(ParameterError, match="0 to 1"):
        parse_channels("5", 2)
    assert parse_channels("0:64", 3).tolist() == [0, 1, 2]


def test_mean_score_and_channel_subset(model):
    dataset, _ = spot_dataset()
    atlas = neuron_atlas(model, dataset, "bright", k=2, score="mean", channels=[0])
    assert atlas.channels.tolist() == [0]
    top = atlas.exemplars(0)
    assert [t["image"] for t in top] == ["img_0003.png", "img_0001.png"]
    assert top[0]["activation"] == pytest.approx(250 / 255, abs=1e-5)  # still the maximum


# -- the command ---------------------------------------------------------------------------
def test_atlas_command_writes_the_index_and_crops(tmp_path, monkeypatch, capsys):
    from PIL import Image

    from viz_core.cli import main
    from viz_core.dataset.readers import sample_dataset
    from viz_core.models.catalog import load_demo_model

    monkeypatch.setenv("CNN_VIZ_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    code = main(["atlas", "--model", "demo", "--data", "sample:shapes", "--limit", "24",
                 "--layer", "conv2d_4", "--channels", "0:3", "--k", "3", "--out", str(out),
                 "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((out / "atlas.json").read_text(encoding="utf-8"))
    assert printed["channels"] == written["channels"] and printed["layer"] == "conv2d_4"
    assert [u["channel"] for u in written["channels"]] == [0, 1, 2]
    # the top image of channel 0 is the one a brute-force pass over the same images finds
    model = load_demo_model()
    data = sample_dataset("shapes", model.labels).subset(24)
    side = model.side_model(["conv2d_4"])
    pixels = np.stack([model.view(data.load(e)).pixels for e in data.entries])
    acts = np.asarray(side(model.batch(pixels)))
    maxima = acts[..., 0].reshape(24, -1).max(axis=1)
    best = int(np.argmax(maxima))
    top = written["channels"][0]["top"][0]
    assert top["image"] == data.entries[best].path
    assert top["activation"] == pytest.approx(float(maxima[best]), rel=1e-4)
    y, x = np.unravel_index(acts[best, ..., 0].argmax(), acts.shape[1:3])
    assert top["position"] == [int(y), int(x)]
    # conv2d_4's field: 38 px, 8 px apart, starting 15 px before the image
    x0, y0 = -15 + 8 * int(x), -15 + 8 * int(y)
    assert top["box"] == [max(0, x0), max(0, y0), min(150, x0 + 38), min(150, y0 + 38)]
    crop = np.asarray(Image.open(top["crop_png"]))  # the box, enlarged twice to 64 px or more
    x0, y0, x1, y1 = top["box"]
    factor = crop.shape[0] // (y1 - y0)
    assert crop.shape[:2] == ((y1 - y0) * factor, (x1 - x0) * factor) and factor >= 1
    seen = np.clip(pixels[best] + 0.5, 0, 255).astype(np.uint8)[y0:y1, x0:x1]
    np.testing.assert_array_equal(crop[::factor, ::factor], seen)


def test_atlas_command_refuses_a_bad_k_while_parsing(capsys):
    from viz_core.cli import main

    assert main(["atlas", "--data", "sample:shapes", "--k", "0", "--out", "x"]) == 2
    assert "k must be 1 to 64; got 0" in capsys.readouterr().err


def test_a_grey_single_sigmoid_model_groups_unlabelled_images_by_prediction():
    inputs = keras.Input((SIDE, SIDE, 1))
    conv = keras.layers.Conv2D(1, 1, use_bias=False, name="grey")
    x = keras.layers.GlobalMaxPooling2D()(conv(inputs))
    dense = keras.layers.Dense(1, activation="sigmoid")
    model = keras.Model(inputs, dense(x))
    conv.set_weights([np.ones((1, 1, 1, 1), np.float32)])
    dense.set_weights([np.full((1, 1), 10.0, np.float32), np.asarray([-5.0], np.float32)])
    loaded = from_keras(model, labels=["dark", "bright"])
    dataset, _ = spot_dataset(labelled=False)
    atlas = neuron_atlas(loaded, dataset, "grey", k=2)
    # the max is the pixel's grey level /255; the sigmoid says "bright" above 0.5
    bright = sum(value / 255 > 0.5 for value, *_ in SPOTS)
    assert atlas.class_counts.tolist() == [len(SPOTS) - bright, bright]
    assert atlas.exemplars(0)[0]["image"] == "img_0003.png"
    assert atlas.exemplars(0)[0]["activation"] == pytest.approx(250 / 255, abs=2e-3)


@pytest.mark.slow
def test_top_k_equals_a_brute_force_pass_over_200_demo_scenes():
    from viz_core.dataset.readers import sample_dataset
    from viz_core.models.catalog import load_demo_model

    model = load_demo_model()
    data = sample_dataset("shapes", model.labels, 200)
    atlas = neuron_atlas(model, data, "conv2d_4", k=5)
    side = model.side_model(["conv2d_4"])
    maxima = np.concatenate([
        np.asarray(side(model.batch(np.stack([model.view(data.load(e)).pixels
                                              for e in data.entries[s:s + 50]])))).max(axis=(1, 2))
        for s in range(0, 200, 50)])  # (200, 128)
    expected = np.argsort(-maxima, axis=0, kind="stable")[:5].T
    got = atlas.entries[atlas.top_refs]
    agree = (got == expected) | np.isclose(maxima[got, np.arange(128)[:, None]],
                                           maxima[expected, np.arange(128)[:, None]], rtol=1e-5)
    assert agree.all()  # the same images, ties aside
    np.testing.assert_allclose(atlas.top_values, np.take_along_axis(maxima.T, expected, 1),
                               rtol=1e-4)


def test_field_inside_a_nested_model():
    inner_in = keras.Input((16, 16, 3))
    y = keras.layers.Conv2D(2, 3, strides=2, padding="same", name="c1")(inner_in)
    y = keras.layers.Conv2D(2, 3, dilation_rate=2, name="c2")(y)
    inner = keras.Model(inner_in, y, name="base")
    outer_in = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(2, 3, padding="same", name="head")(inner(outer_in))
    x = keras.layers.GlobalAveragePooling2D()(x)
    loaded = from_keras(keras.Model(outer_in, keras.layers.Dense(3, activation="softmax")(x)),
                        labels=["a", "b", "c"])
    # c1: 16 -> 8, padding (8-1)*2 + 3 - 16 = 1, all after; c2: dilated 3x3 = 5 wide, valid;
    # head: 'same' on the 4x4 grid, one unit (2 px) before
    assert layer_field(loaded, "base/c1") == Field((3, 3), (2, 2), (0, 0))
    assert layer_field(loaded, "base/c2") == Field((11, 11), (2, 2), (0, 0))
    assert layer_field(loaded, "head") == Field((15, 15), (2, 2), (-2, -2))
