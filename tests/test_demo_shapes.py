"""The generated shapes: deterministic, and every mask and box is exactly the drawn shape."""

import math

import numpy as np
import pytest

from viz_core.demo.shapes import (
    CLASS_NAMES,
    class_pairs,
    dataset_scene,
    draw_scene,
    make_dataset,
    mask_box,
    shape_mask,
)


def test_class_names_are_in_the_documented_order():
    assert CLASS_NAMES == ("circle", "square", "triangle", "star")


def test_class_pairs_are_the_six_pairs_of_different_classes():
    pairs = class_pairs()
    assert (
        len(pairs) == 6 and pairs[0] == ("circle", "square") and pairs[-1] == ("triangle", "star")
    )
    assert all(a != b for a, b in pairs) and len({frozenset(p) for p in pairs}) == 6


def test_same_seed_gives_identical_bytes():
    first, second = draw_scene(7, ("circle", "star")), draw_scene(7, ("circle", "star"))
    assert first.image.tobytes() == second.image.tobytes()
    assert [s.box for s in first.shapes] == [s.box for s in second.shapes]
    images_a, labels_a, boxes_a = make_dataset(8, seed=100)
    images_b, labels_b, boxes_b = make_dataset(8, seed=100)
    assert images_a.tobytes() == images_b.tobytes()
    np.testing.assert_array_equal(labels_a, labels_b)
    np.testing.assert_array_equal(boxes_a, boxes_b)


def test_different_seeds_differ():
    images = [draw_scene(seed, ("square",)).image for seed in range(5)]
    assert len({image.tobytes() for image in images}) == 5


def test_scene_image_format():
    scene = draw_scene(3)
    assert scene.image.shape == (150, 150, 3) and scene.image.dtype == np.uint8
    assert len(scene.shapes) == 1 and scene.shapes[0].label in CLASS_NAMES
    assert scene.seed == 3


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("clutter", [0.0, 1.0, 3.0])
def test_mask_is_exactly_the_painted_pixels(seed, clutter):
    classes = [CLASS_NAMES[seed % 4], CLASS_NAMES[(seed + 1) % 4]][: 1 + seed % 2]
    scene = draw_scene(seed, classes, clutter)
    for shape in scene.shapes:
        assert shape.mask.shape == (150, 150) and shape.mask.dtype == bool
        assert np.all(scene.image[shape.mask] == shape.colour)
        # the box is the mask's bounding box
        rows, cols = np.nonzero(shape.mask)
        assert shape.box == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
        # the shape's extent is 20-60% of the side (its bounding circle's diameter)
        x0, y0, x1, y1 = shape.box
        assert 0.12 * 150 <= max(x1 - x0, y1 - y0) <= 0.62 * 150
        assert shape.class_index == CLASS_NAMES.index(shape.label)
    assert [s.label for s in scene.shapes] == classes


def test_several_shapes_never_overlap():
    for seed in range(20):
        scene = draw_scene(seed, CLASS_NAMES)
        coverage = np.sum([shape.mask for shape in scene.shapes], axis=0)
        assert coverage.max() == 1


def test_hand_checked_square():
    # a square inscribed in a circle of diameter 20*sqrt(2), turned 45 degrees, is axis-aligned
    # with corners (40, 40) and (60, 60); Pillow fills both edges, so 21 x 21 pixels.
    mask = shape_mask("square", (50, 50), 20 * math.sqrt(2), 45)
    assert mask_box(mask) == (40, 40, 61, 61)
    assert mask.sum() == 21 * 21
    assert mask[40:61, 40:61].all()


def test_hand_checked_circle_is_round_and_centred():
    mask = shape_mask("circle", (50, 50), 20, 0)
    assert mask_box(mask) == (40, 40, 61, 61)
    assert mask[50, 50] and not mask[40, 40] and not mask[60, 60]
    assert abs(mask.sum() - math.pi * 10.5**2) < 0.05 * mask.sum()
    np.testing.assert_array_equal(mask, mask.T)


def test_dataset_is_class_balanced_and_matches_its_scenes():
    images, labels, boxes = make_dataset(40, seed=1000)
    assert images.shape == (40, 150, 150, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and boxes.shape == (40, 4)
    np.testing.assert_array_equal(np.bincount(labels, minlength=4), [10, 10, 10, 10])
    scene = dataset_scene(1000 + 5)
    assert scene.image.tobytes() == images[5].tobytes()
    assert scene.shapes[0].box == tuple(boxes[5])


def test_dataset_is_fast_enough():
    import time

    started = time.perf_counter()
    make_dataset(200, seed=0)
    # 10,000 images must take well under two minutes; 200 is a quick proxy (generous bound).
    assert time.perf_counter() - started < 6.0


def test_bad_arguments_name_the_bad_value():
    with pytest.raises(ValueError, match="hexagon"):
        draw_scene(0, ("hexagon",))
    with pytest.raises(ValueError, match="5"):
        draw_scene(0, ("circle",) * 5)
    with pytest.raises(ValueError, match="-1"):
        draw_scene(-1)
