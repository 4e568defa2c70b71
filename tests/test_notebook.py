"""viz_core.notebook: every kind of result shows as a picture a notebook can draw, the
lower-level results too (``vc.show``)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from viz_core.features.activations import feature_maps
from viz_core.methods.heatmap import class_heatmap
from viz_core.errors import ParameterError
from viz_core.features.filters import filter_patterns
from viz_core.methods.lime import lime_explanation
from viz_core.notebook import picture, show
from viz_core.render import overlay_heatmap
from viz_core.inputs.samples import ASSETS_DIR
from viz_core.models.targets import Target
import viz_core as vc

SAMPLE = ASSETS_DIR / "samples" / "circle_and_star.png"


@pytest.fixture(scope="module")
def demo():
    model = vc.load_model("demo")
    image = vc.load_image(SAMPLE)
    return model, image, model.view(image)


def test_a_heatmap_shows_over_the_original_image(demo):
    model, image, view = demo
    result = class_heatmap(model, view, Target(model.class_index("star")))
    shown = show(result, image)
    assert isinstance(shown, Image.Image) and hasattr(shown, "_repr_png_")
    assert shown.size == (image.pixels.shape[1], image.pixels.shape[0])
    np.testing.assert_array_equal(np.asarray(shown), overlay_heatmap(image.pixels, result.heatmap))
    alone = show(result)  # no image: the map in colour, at the model's size
    assert alone.size == (result.heatmap.shape[1], result.heatmap.shape[0])


def test_feature_maps_filters_and_lime_show(demo):
    model, image, view = demo
    maps = feature_maps(model, view, model.info.last_conv_layer)
    (grid,) = picture(maps)
    channels = maps.layers[0].values.shape[-1]
    assert grid.dtype == np.uint8 and grid.ndim == 3 and channels > 1
    patterns = filter_patterns(model, model.info.last_conv_layer, (0, 1), steps=1, size=32)
    assert show(patterns).mode == "RGB"
    explanation = lime_explanation(model, view, [model.class_index("star")], samples=10)
    lime_picture = show(explanation)
    assert (lime_picture.size[1], lime_picture.size[0]) == explanation.segments.shape
    with pytest.raises(ParameterError, match="got str"):
        show("not a result")


def test_explain_results_show_with_options(demo):
    model, image, _ = demo
    result = vc.explain(model, image, target="star")
    shown = show(result, colormap="magma", opacity=0.8)
    np.testing.assert_array_equal(
        np.asarray(shown), overlay_heatmap(image.pixels, result.map, colormap="magma",
                                           opacity=0.8))
    pair = vc.explain(model, [image, image], target=["star", "circle"])
    height, width = model.info.input_shape[:2]
    assert show(pair).size == (4 + 2 * (width + 4), 4 + height + 4)


def test_explain_equals_the_heatmap_command_on_the_demo_model(demo, tmp_path):
    """The same maps as ``heatmap --method layercam`` (run in this process) within 1e-4."""
    from viz_core.cli import main

    names = ["circle_and_star", "star", "square_and_triangle"]
    paths = [str(ASSETS_DIR / "samples" / f"{name}.png") for name in names]
    flags = [flag for path in paths for flag in ("--image", path)]
    assert main(["heatmap", "--model", "demo", *flags, "--method", "layercam", "--out",
                 str(tmp_path), "--json", "--quiet"]) == 0
    results = vc.explain(demo[0], paths)
    for name, result in zip(names, results):
        written = np.load(tmp_path / f"{name}_layercam_{result.class_index}.npy")
        np.testing.assert_allclose(result.map, written, atol=1e-4)
