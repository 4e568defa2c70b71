"""vc.atlas: the neuron atlas from what a notebook holds (images, a folder), drawn as unit cards.

Values are checked against an independent pass: vc.feature_maps on each image, maximum over
space, argmax over images.
"""
from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

import viz_core as vc
from tests.conftest import tiny_cnn, wrap
from viz_core.dataset.in_memory import images_dataset
from viz_core.errors import ParameterError
from viz_core.inputs.intake import image_from_array


@pytest.fixture(scope="module")
def model():
    return wrap(tiny_cnn(classes=3, seed=4), labels=["a", "b", "c"])


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(9)]


def brute_force(model, images, layer):
    """(N, C) spatial maxima and (N, C, 2) their [y, x], one image at a time."""
    maxima, where = [], []
    for image in images:
        values = vc.feature_maps(model, image, layer).layers[0].values  # (h, w, C)
        h, w, c = values.shape
        flat = values.reshape(h * w, c)
        best = flat.argmax(axis=0)
        maxima.append(flat.max(axis=0))
        where.append(np.stack([best // w, best % w], axis=-1))
    return np.asarray(maxima), np.asarray(where)


def test_top_exemplar_of_each_channel_is_the_argmax_over_images(model, images):
    result = vc.atlas(model, images, k=3)
    assert isinstance(result, vc.Atlas) and result.images == 9 and result.grouped_by == "predicted"
    maxima, where = brute_force(model, images, result.layer)
    assert len(result) == maxima.shape[1]
    assert (maxima.max(axis=0) > 0).sum() >= 4  # live channels: a ranking to get right
    for channel in result.channels:
        top = result.exemplars(int(channel), "top")
        ranked = np.argsort(-maxima[:, channel], kind="stable")[:3]
        assert [t["entry"] for t in top] == ranked.tolist()
        assert top[0]["image"] == f"image {ranked[0]}"
        np.testing.assert_allclose(top[0]["activation"], maxima[ranked[0], channel], rtol=1e-5)
        assert top[0]["position"] == where[ranked[0], channel].tolist()
        bottom = result.exemplars(int(channel), "bottom")[0]
        assert bottom["entry"] == int(np.argmin(maxima[:, channel]))


def test_labels_of_a_list_give_class_means_by_hand(model, images):
    labels = ["a", "b", "a", "c", "b", "a", "c", "c", "b"]
    result = vc.atlas(model, np.stack(images), channels=[0, 2], k=2, labels=labels)
    assert result.grouped_by == "label" and result.channels.tolist() == [0, 2]
    means = []
    for image in images:
        values = vc.feature_maps(model, image, result.layer).layers[0].values
        means.append(values.mean(axis=(0, 1))[[0, 2]])
    means = np.asarray(means)
    for k, name in enumerate("abc"):
        picked = [i for i, label in enumerate(labels) if label == name]
        np.testing.assert_allclose(result.class_means[:, k], means[picked].mean(axis=0),
                                   rtol=1e-4, atol=1e-6)


def test_a_folder_path_reads_its_class_folders(model, images, tmp_path):
    for i, image in enumerate(images[:6]):
        folder = tmp_path / "abc"[i % 3]
        folder.mkdir(exist_ok=True)
        Image.fromarray(image).save(folder / f"{i}.png")
    result = vc.atlas(model, str(tmp_path), k=2, channels="1:3")
    assert result.grouped_by == "label" and result.images == 6
    assert result.class_counts.tolist() == [2, 2, 2]
    maxima, _ = brute_force(model, images[:6], result.layer)
    order = sorted(range(6), key=lambda i: f"{'abc'[i % 3]}/{i}.png")  # the dataset's order
    best = order[int(np.argmax(maxima[order, 1]))]
    assert result.exemplars(1)[0]["image"] == f"{'abc'[best % 3]}/{best}.png"


def test_jupyter_draws_one_card_per_unit_with_its_crops(model, images):
    result = vc.atlas(model, images, channels="1:3", k=2)  # channel 0 is dead (all 0)
    page = result._repr_html_()
    assert page.count("<tr>") == 2 and page.count("<img") == 4
    assert "<b>unit 1</b>" in page and "<b>unit 2</b>" in page
    first = re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1)
    crop = np.asarray(Image.open(io.BytesIO(base64.b64decode(first))).convert("RGB"))
    top = result.exemplars(1)[0]
    x0, y0, x1, y1 = top["box"]
    assert top["activation"] > 0 and (x1 - x0, y1 - y0) != (32, 32)
    factor = crop.shape[0] // (y1 - y0)  # enlarged by a whole factor, nearest neighbour
    np.testing.assert_array_equal(crop[::factor, ::factor],
                                  images[top["entry"]][y0:y1, x0:x1])


def test_in_memory_datasets_are_told_apart_and_checked(images):
    loaded = [image_from_array(image, "cat") for image in images[:3]]
    data = images_dataset(loaded, ("cat", "dog"), labels=["cat", None, "Dog"])
    assert [e.path for e in data.entries] == ["cat", "cat (2)", "cat (3)"]
    assert [e.class_index for e in data.entries] == [0, None, 1]
    assert np.array_equal(data.load(data.entries[1]).pixels, images[1])
    other = images_dataset(loaded[::-1], ("cat", "dog"), labels=["cat", None, "Dog"])
    assert other.identity != data.identity
    with pytest.raises(ParameterError, match="3 images, 2 labels"):
        images_dataset(loaded, ("cat",), labels=["cat", "cat"])
    with pytest.raises(ParameterError, match="labels= goes with a list"):
        vc.atlas(wrap(tiny_cnn()), "sample:shapes", labels=["a"])
