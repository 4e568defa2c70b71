"""ui.classes.second_class: on a sample scene, the other shape in the picture; else the
runner-up."""
from types import SimpleNamespace

from ui.classes import second_class, shapes_present
from viz_core.inputs.intake import load_image
from viz_core.inputs.samples import sample_bytes

LABELS = ("circle", "square", "triangle", "star")
MODEL = SimpleNamespace(label=lambda k: LABELS[k])


def scene(name: str, called: str = "photo"):
    return load_image(sample_bytes(name), called)  # recognised by its bytes, not its name


def test_the_other_shape_in_a_two_shape_scene():
    image = scene("circle_and_star")
    assert shapes_present(image) == {"circle", "star"}
    # the demo model's ranking on it: star, square (9.3%), circle (9.1%), triangle
    assert second_class(MODEL, image, [3, 1, 0, 2], 3, none=-1) == 0
    assert second_class(MODEL, image, [3, 1, 0, 2], 0, none=-1) == 3


def test_the_runner_up_elsewhere():
    ranked = [3, 1, 0, 2]
    assert second_class(MODEL, scene("circle"), ranked, 3, none=-1) == 1  # star not in it
    assert second_class(MODEL, scene("square"), [1, 3], 1, none=-1) == 3  # one shape only
    assert shapes_present(load_image(sample_bytes("chelsea"), "circle_and_star")) == set()
    assert second_class(MODEL, scene("circle_and_star"), [3], 3, none=-1) == -1
