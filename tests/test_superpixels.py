"""Superpixels: target counts, exact regions on hand-made images, quickshift's tree cut checked
against scikit-image's own ``max_dist`` cut, and the boundary rendering."""
from __future__ import annotations

import numpy as np
import pytest
from skimage import segmentation as sk

from viz_core.errors import ImageError, ParameterError
from viz_core.inputs.intake import image_from_array, load_image, model_view
from viz_core.render.lime_view import (
    BOUNDARY_COLOUR,
    OPPOSE_COLOUR,
    SUPPORT_COLOUR,
    contrasting_colour,
    display_factor,
    enlarge,
    evidence_image,
    superpixel_boundaries,
)
from viz_core.inputs.samples import sample_bytes
from viz_core.methods.lime_options import ALGORITHMS
from viz_core.methods.superpixels import _cut_tree, superpixels

QUADRANT_COLOURS = ((230, 20, 20), (20, 200, 40), (30, 40, 220), (240, 230, 30))


def quadrants(side: int = 64) -> np.ndarray:
    """Four flat colour quadrants: top-left, top-right, bottom-left, bottom-right."""
    img = np.zeros((side, side, 3), dtype="uint8")
    h = side // 2
    img[:h, :h], img[:h, h:], img[h:, :h], img[h:, h:] = QUADRANT_COLOURS
    return img


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two label maps cut the image into the same regions (ids may differ)."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return load_image(sample_bytes("circle_and_star"), "circle_and_star").pixels


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_four_flat_quadrants_become_exactly_four_superpixels(algorithm):
    img = quadrants()
    seg = superpixels(img, algorithm=algorithm, n_superpixels=4, compactness=1.0)
    assert seg.count == 4
    assert seg.segments.dtype == np.int32 and seg.segments.shape == (64, 64)
    truth = np.zeros((64, 64), dtype=int)
    truth[:32, 32:], truth[32:, :32], truth[32:, 32:] = 1, 2, 3
    # Each superpixel is one quadrant; Felzenszwalb smooths first (sigma 0.8), so the seam
    # pixels between quadrants may join a neighbour: allow a thin cross (1-2 px wide, <= 6%).
    majority = {i: np.bincount(truth[seg.segments == i]).argmax() for i in range(4)}
    assert sorted(majority.values()) == [0, 1, 2, 3]
    agree = np.mean([truth[y, x] == majority[seg.segments[y, x]]
                     for y in range(64) for x in range(64)])
    assert agree >= (1.0 if algorithm != "felzenszwalb" else 0.94)


@pytest.mark.parametrize("algorithm,target", [("slic", 35), ("slic", 80), ("quickshift", 35),
                                              ("quickshift", 12), ("felzenszwalb", 35)])
def test_count_is_close_to_the_target_and_ids_are_consecutive(scene, algorithm, target):
    seg = superpixels(scene, algorithm=algorithm, n_superpixels=target)
    assert abs(seg.count - target) <= max(2, target // 10)
    assert np.array_equal(np.unique(seg.segments), np.arange(seg.count))  # what lime needs
    if algorithm == "quickshift":
        assert seg.count == target  # the tree is cut at exactly the right number of links


def test_a_model_image_and_its_pixels_give_the_same_superpixels(scene):
    view = model_view(image_from_array(scene), (150, 150, 3))
    a = superpixels(view, n_superpixels=20)
    b = superpixels(view.display, n_superpixels=20)
    assert np.array_equal(a.segments, b.segments)


def test_cutting_the_forest_by_hand():
    # pixel 0 is a root; 1 hangs on 0 (distance 5); 2 on 1 (distance 1); 3 is a root.
    parent = np.array([[0, 0, 1, 3]])
    dist = np.array([[0.0, 5.0, 1.0, 0.0]])
    assert _cut_tree(parent, dist, 2).tolist() == [[0, 0, 0, 3]]  # two roots: nothing cut
    assert _cut_tree(parent, dist, 3).tolist() == [[0, 1, 1, 3]]  # the longest link goes
    assert _cut_tree(parent, dist, 4).tolist() == [[0, 1, 2, 3]]


def test_quickshift_cut_by_count_equals_scikit_image_cut_by_distance(scene):
    """Independent reference: skimage's own quickshift with max_dist at the chosen cut."""
    pixels = scene.astype("float64") / 255.0
    ratio = 10.0 / (10.0 + 10.0)
    _, parent, dist = sk.quickshift(pixels, ratio=ratio, kernel_size=3, max_dist=np.inf,
                                    return_tree=True, rng=0)
    parent, dist = np.asarray(parent), np.asarray(dist)
    roots = int((parent.ravel() == np.arange(parent.size)).sum())
    target = roots + 25
    ours = _cut_tree(parent, dist, target)
    linked = np.sort(dist[parent != np.arange(parent.size).reshape(parent.shape)])[::-1]
    threshold = (linked[24] + linked[25]) / 2.0  # between the 25th and 26th longest links
    reference = sk.quickshift(pixels, ratio=ratio, kernel_size=3, max_dist=threshold, rng=0)
    assert len(np.unique(ours)) == target
    assert same_partition(ours, reference)


def test_quickshift_is_reproducible_with_its_seed(scene):
    a = superpixels(scene, algorithm="quickshift", n_superpixels=30, seed=3)
    b = superpixels(scene, algorithm="quickshift", n_superpixels=30, seed=3)
    assert np.array_equal(a.segments, b.segments)
    assert a.cache_key == b.cache_key


def test_higher_compactness_gives_more_even_slic_superpixels(scene):
    def size_spread(seg):  # coefficient of variation of the superpixel sizes
        sizes = seg.sizes()
        return sizes.std() / sizes.mean()

    loose = superpixels(scene, algorithm="slic", n_superpixels=30, compactness=1.0)
    tight = superpixels(scene, algorithm="slic", n_superpixels=30, compactness=60.0)
    assert size_spread(tight) < size_spread(loose) / 3


@pytest.mark.parametrize("kwargs,words", [
    (dict(algorithm="watershed"), "'watershed'"),
    (dict(n_superpixels=1), "got 1"),
    (dict(n_superpixels=2.5), "got 2.5"),
    (dict(compactness=-3.0), "got -3.0"),
    (dict(compactness=0.0), "above 0, up to 1000; got 0.0"),
])
def test_bad_parameters_are_named_in_the_error(kwargs, words):
    with pytest.raises(ParameterError, match=words):
        superpixels(quadrants(), **kwargs)


def test_a_grey_2d_array_is_refused_with_its_shape():
    with pytest.raises(ImageError, match=r"\(64, 64\)"):
        superpixels(np.zeros((64, 64)))


def test_boundaries_are_drawn_between_quadrants_only():
    img = quadrants()
    segments = np.zeros((64, 64), dtype="int32")
    segments[:32, 32:], segments[32:, :32], segments[32:, 32:] = 1, 2, 3
    out = superpixel_boundaries(img, segments, colour=BOUNDARY_COLOUR)
    assert out.dtype == np.uint8 and out.shape == img.shape
    column = [tuple(p) == BOUNDARY_COLOUR for p in out[:, 10]]
    assert [y for y, marked in enumerate(column) if marked] in ([31], [32], [31, 32])  # the seam
    assert tuple(out[10, 10]) == QUADRANT_COLOURS[0]  # inside: untouched
    assert tuple(out[50, 50]) == QUADRANT_COLOURS[3]


def test_the_automatic_border_colour_avoids_the_image_colours():
    yellow = np.zeros((20, 20, 3), dtype="uint8") + np.array(BOUNDARY_COLOUR, dtype="uint8")
    segments = np.zeros((20, 20), dtype="int32")
    segments[:, 10:] = 1
    assert contrasting_colour(yellow, segments) != BOUNDARY_COLOUR
    grey = np.full((20, 20, 3), 40, dtype="uint8")  # dark: far from yellow, white is farther
    assert contrasting_colour(grey, segments) == (255, 255, 255)
    out = superpixel_boundaries(yellow, segments)
    assert tuple(out[5, 9]) == contrasting_colour(yellow, segments) or \
        tuple(out[5, 10]) == contrasting_colour(yellow, segments)


def test_enlarging_keeps_labels_as_blocks():
    labels = np.array([[0, 1], [2, 3]], dtype="int32")
    big = enlarge(labels, 3)
    assert big.shape == (6, 6) and big.dtype == np.int32
    assert big[2, 2] == 0 and big[2, 3] == 1 and big[3, 2] == 2 and big[5, 5] == 3
    assert display_factor(150, 150) == 3 and display_factor(224, 224) == 2
    assert display_factor(1000, 600) == 1


def test_evidence_image_outlines_tints_and_hides_by_hand():
    img = np.full((20, 20, 3), 100, dtype="uint8")
    mask = np.zeros((20, 20), dtype="int8")
    mask[5:15, 5:15] = 1  # supports
    mask[0:3, 0:3] = -1  # opposes
    out = evidence_image(img, mask, style="fill", rest="hide", opacity=0.5, width=2)
    assert tuple(out[5, 9]) == SUPPORT_COLOUR and tuple(out[6, 9]) == SUPPORT_COLOUR
    # Inside the outline: the tint, 100 * 0.5 + colour * 0.5, rounded.
    assert tuple(out[9, 9]) == tuple(int(100 * 0.5 + c * 0.5 + 0.5) for c in SUPPORT_COLOUR)
    assert tuple(out[4, 9]) == (128, 128, 128)  # outside every chosen superpixel: grey
    assert tuple(out[0, 0]) == OPPOSE_COLOUR
    kept = evidence_image(img, mask, style="outline", rest="keep", width=1)
    assert tuple(kept[6, 9]) == (100, 100, 100) and tuple(kept[5, 9]) == SUPPORT_COLOUR
    assert tuple(kept[4, 9]) == (100, 100, 100)
    dimmed = evidence_image(img, mask, rest="dim")
    assert tuple(dimmed[4, 9]) == (193, 193, 193)  # 60% towards white: 100 * 0.4 + 153
    with pytest.raises(ParameterError, match="'blue'"):
        evidence_image(img, mask, rest="blue")
    # the opacity's range is viz_core.runtime.limits.MASK_OPACITY: both ends allowed, nothing beyond
    full = evidence_image(img, mask, style="fill", rest="keep", opacity=1.0, width=1)
    assert tuple(full[9, 9]) == SUPPORT_COLOUR
    assert tuple(evidence_image(img, mask, style="fill", opacity=0.0, width=1)[9, 9]) == \
        (100, 100, 100)
    for outside in (-0.01, 1.01, float("nan")):
        with pytest.raises(ParameterError, match="mask's opacity must be a number from 0 to 1"):
            evidence_image(img, mask, style="fill", opacity=outside)
