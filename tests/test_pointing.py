"""Pointing game: hits by hand on synthetic maps, the game's bookkeeping, the demo model."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import tiny_cnn, wrap
from viz_core.methods.heatmap import class_heatmap
from viz_core.models.catalog import DEMO_MODEL_FILE
from viz_core.demo.shapes import CLASS_NAMES, draw_scene
from viz_core.errors import Cancelled, ParameterError
from viz_core.inputs.intake import image_from_array
from viz_core.metrics.pointing import (
    DEFAULT_TOLERANCE,
    POINTING_FIRST_SEED,
    heatmap_peak,
    hit_rate,
    is_hit,
    pointing_game,
    pointing_scenes,
    scene_classes,
)
from viz_core.models.targets import Target


def spot(x: int, y: int, size: int = 20) -> np.ndarray:
    heat = np.zeros((size, size), dtype="float32")
    heat[y, x] = 1.0
    return heat


def test_hits_by_hand():
    box = (5, 6, 10, 12)  # x in 5..9, y in 6..11
    assert is_hit(spot(5, 6), box) and is_hit(spot(9, 11), box)
    assert not is_hit(spot(10, 8), box)  # x1 is exclusive
    assert not is_hit(spot(7, 12), box)  # y1 is exclusive
    assert not is_hit(spot(3, 8), box)
    assert is_hit(spot(3, 8), box, tolerance=2)  # 2 px left of the box
    assert not is_hit(spot(2, 8), box, tolerance=2)
    assert is_hit(spot(11, 13), box, tolerance=2)  # x < 10 + 2, y < 12 + 2
    # an empty map points nowhere
    assert heatmap_peak(np.zeros((20, 20))) is None
    assert not is_hit(np.zeros((20, 20)), (0, 0, 20, 20))


def test_hit_rate_by_hand():
    maps = np.stack([spot(2, 2), spot(15, 15), spot(8, 8), np.zeros((20, 20))])
    boxes = np.array([[0, 0, 5, 5], [0, 0, 5, 5], [6, 6, 9, 9], [0, 0, 20, 20]])
    assert hit_rate(maps, boxes) == pytest.approx(2 / 4)
    assert hit_rate(maps, boxes, tolerance=11) == pytest.approx(3 / 4)  # (15,15) < 5 + 11
    with pytest.raises(ParameterError, match="4 maps and 3 boxes"):
        hit_rate(maps, boxes[:3])


def test_peak_is_first_maximum_and_maps_to_the_scene_grid():
    heat = np.zeros((10, 10))
    heat[3, 7] = heat[6, 2] = 1.0
    assert heatmap_peak(heat) == (7, 3)  # first in raster order
    # a 10x10 map on a 150x150 scene: pixel (7, 3)'s centre is at (7.5, 3.5) * 15
    assert heatmap_peak(heat, (150, 150)) == (112, 52)
    assert is_hit(heat, (110, 50, 115, 55), scene_size=(150, 150))


def test_scenes_are_fresh_balanced_and_reproducible():
    scenes = pointing_scenes(8, seed=100)
    assert [s.shapes[0].label for s in scenes] == list(CLASS_NAMES) * 2
    again = draw_scene(103, ("star",))
    np.testing.assert_array_equal(scenes[3].image, again.image)
    assert scenes[3].shapes[0].box == again.shapes[0].box
    assert scene_classes(3, 2) == ("star", "circle")
    two = pointing_scenes(2, seed=5, shapes=2)
    assert [s.label for s in two[1].shapes] == ["square", "triangle"]
    assert POINTING_FIRST_SEED > 999 * 1_000_000 + 1_000_000  # past every training run


@pytest.fixture(scope="module")
def shape_model():
    """A tiny untrained 4-class model with the shape labels and a 48 px input."""
    return wrap(tiny_cnn(size=48, classes=4, seed=1), labels=CLASS_NAMES)


def test_game_bookkeeping_matches_each_map(shape_model):
    result = pointing_game(shape_model, ["gradcam", "saliency"], scenes=3, seed=40, shapes=2,
                           tolerance=3)
    assert (result.scenes, result.shapes_per_scene, result.tolerance) == (3, 2, 3)
    assert result.hits.shape == (2, 6)
    assert list(result.scene_seeds) == [40, 40, 41, 41, 42, 42]
    assert [CLASS_NAMES[k] for k in result.class_indices] == \
        ["circle", "square", "square", "triangle", "triangle", "star"]
    for t in range(6):
        scene = draw_scene(int(result.scene_seeds[t]), scene_classes(t // 2, 2))
        shape = scene.shapes[t % 2]
        assert tuple(result.boxes[t]) == shape.box
        view = shape_model.view(image_from_array(scene.image, "s"))
        heat = class_heatmap(shape_model, view, Target(shape.class_index), "gradcam").heatmap
        assert result.hits[0, t] == is_hit(heat, shape.box, 3, (150, 150))
        peak = heatmap_peak(heat, (150, 150))
        assert tuple(result.peaks[0, t]) == (peak if peak is not None else (-1, -1))
    for m, score in enumerate(result.scores):
        assert (score.hits, score.total) == (int(result.hits[m].sum()), 6)
        assert score.hit_rate == pytest.approx(score.hits / 6)
    payload = result.as_dict()
    assert payload["methods"][0]["method"] == "gradcam"
    assert payload["methods"][1]["total"] == 6


def test_lime_plays_through_the_registry(shape_model):
    from viz_core.methods.lime import lime_explanation, lime_heatmap

    result = pointing_game(shape_model, ["lime"], scenes=1, seed=43,
                           params={"lime": {"samples": 40, "n_superpixels": 8}})
    scene = draw_scene(43, scene_classes(0, 1))
    shape = scene.shapes[0]
    view = shape_model.view(image_from_array(scene.image, "s"))
    k = shape.class_index
    heat = lime_heatmap(lime_explanation(shape_model, view, (k,), samples=40,
                                         n_superpixels=8), k)
    assert result.scores[0].method == "lime" and result.scores[0].title == "LIME"
    assert result.hits[0, 0] == is_hit(heat, shape.box, DEFAULT_TOLERANCE, (150, 150))
    peak = heatmap_peak(heat, (150, 150))
    assert tuple(result.peaks[0, 0]) == (peak if peak is not None else (-1, -1))


def test_game_refuses_models_without_shape_classes_and_bad_values(shape_model):
    other = wrap(tiny_cnn(size=32, classes=3))
    with pytest.raises(ParameterError, match="'circle'"):
        pointing_game(other, ["gradcam"], scenes=1)
    with pytest.raises(ParameterError, match="0"):
        pointing_game(shape_model, ["gradcam"], scenes=0)
    with pytest.raises(ParameterError, match="'edges'"):
        pointing_game(shape_model, ["edges"], scenes=1)
    with pytest.raises(ParameterError, match="25"):
        pointing_game(shape_model, ["gradcam"], scenes=1, tolerance=25)
    with pytest.raises(Cancelled):
        pointing_game(shape_model, ["gradcam"], scenes=2, should_stop=lambda: True)


@pytest.mark.slow
@pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="the demo model is not committed yet")
def test_demo_model_gradcam_points_at_the_shape():
    from viz_core.runtime.workbench import Workbench

    demo = Workbench(allow_download=False).builtin_model("demo")
    result = pointing_game(demo, ["gradcam"], scenes=8)
    assert result.score("gradcam").hit_rate >= 0.9
