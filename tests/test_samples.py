"""The offline samples: the committed shapes gallery and scikit-image's bundled photos."""

import io
import json

import pytest
from PIL import Image

from viz_core.demo.gallery import GALLERY, write_gallery
from viz_core.demo.shapes import CLASS_NAMES, draw_scene
from viz_core.inputs.samples import INDEX_FILE, SAMPLES_DIR, Sample, list_samples, sample_bytes


def test_list_samples_has_the_gallery_and_the_four_photos():
    samples = list_samples()
    assert all(isinstance(s, Sample) for s in samples)
    shapes = [s for s in samples if s.kind == "shapes"]
    photos = [s for s in samples if s.kind == "photo"]
    assert len(shapes) >= 8
    assert [s.name for s in photos] == ["chelsea", "coffee", "astronaut", "rocket"]
    assert photos[0].title == "Cat (chelsea)" and photos[0].boxes == ()
    names = {s.name for s in shapes}
    assert {
        "circle",
        "square",
        "triangle",
        "star",
        "circle_and_star",
        "square_and_triangle",
    } <= names
    assert len({s.name for s in samples}) == len(samples)


def test_each_class_alone_and_pairs_have_the_right_boxes():
    by_name = {s.name: s for s in list_samples()}
    for index, label in enumerate(CLASS_NAMES):
        ((box_label, box_index, box),) = by_name[label].boxes
        assert (box_label, box_index) == (label, index)
        x0, y0, x1, y1 = box
        assert 0 <= x0 < x1 <= 150 and 0 <= y0 < y1 <= 150
    assert [b[0] for b in by_name["circle_and_star"].boxes] == ["circle", "star"]
    assert [b[0] for b in by_name["square_and_triangle"].boxes] == ["square", "triangle"]


@pytest.mark.parametrize("name", ["circle", "circle_and_star"])
def test_shapes_sample_bytes_are_a_150_pixel_png(name):
    image = Image.open(io.BytesIO(sample_bytes(name)))
    assert image.format == "PNG" and image.size == (150, 150) and image.mode == "RGB"


def test_photo_sample_bytes_decode_to_the_photo_size():
    image = Image.open(io.BytesIO(sample_bytes("chelsea")))
    assert image.format == "PNG" and image.size == (451, 300) and image.mode == "RGB"


def test_unknown_sample_names_the_bad_and_the_known_names():
    with pytest.raises(ValueError, match=r"'dog'.*chelsea") as info:
        sample_bytes("dog")
    assert "circle_and_star" in str(info.value)


def test_samples_json_agrees_with_regenerated_scenes():
    records = json.loads(INDEX_FILE.read_text())
    assert len(records) == len(GALLERY)
    for record in records:
        scene = draw_scene(record["seed"], record["classes"], record["clutter"])
        assert [s.label for s in scene.shapes] == [s["label"] for s in record["shapes"]]
        assert [list(s.box) for s in scene.shapes] == [s["box"] for s in record["shapes"]]
        committed = Image.open(SAMPLES_DIR / record["file"])
        assert committed.tobytes() == Image.fromarray(scene.image).tobytes()


def test_gallery_command_rewrites_the_same_index(tmp_path):
    records = write_gallery(tmp_path)
    assert records == json.loads(INDEX_FILE.read_text())
    assert len(list(tmp_path.glob("*.png"))) == len(GALLERY)
