"""AppTest for the Compare methods page, on a tiny model standing in for the demo model.

What the page shows (AUCs, curves, agreement matrix, pictures) is checked against
viz_core called directly with the page's arguments; display options must not recompute, and
maps are shared with the Class heatmaps page through the workbench.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import viz_core.runtime.workbench
from tests.app.media import capture_media, png_of, values
from tests.conftest import tiny_cnn, wrap
from ui.state import SELECTION_KEY
from viz_core.methods.heatmap import class_heatmap, top_classes
from viz_core.methods import registry as methods
from viz_core.metrics import registry as metrics
from viz_core.metrics.agreement import rank_agreement
from viz_core.metrics.faithfulness import deletion_insertion
from viz_core.metrics.maps import compare_methods, method_title
from viz_core.render.compare import compare_picture
from viz_core.inputs.intake import load_image
from viz_core.methods.lime import fit_explanation, lime_heatmap, perturbed_predictions
from viz_core.inputs.samples import sample_bytes
from viz_core.methods.superpixels import superpixels
from viz_core.models.targets import Target

LABELS = ["circle", "square", "triangle", "star"]
# one method of each kind the page draws (layer, pixel-gradient, LIME), checked in detail
SIX = ("gradcam", "gradcam++", "scorecam", "smoothgrad", "integrated_gradients", "lime")


@pytest.fixture(scope="module")
def app():
    from ui.state import workbench

    loaded = wrap(tiny_cnn(size=48, classes=4, seed=4), labels=LABELS, name="demo")
    patch = pytest.MonkeyPatch()
    patch.setattr(viz_core.runtime.workbench, "load_builtin_model",
                  lambda name, weights="imagenet", **kw: loaded)
    media = capture_media(patch)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=180)
    at.run()
    at.switch_page("pages/compare.py")
    at.run()
    assert not at.exception, at.exception
    yield at, loaded, media
    workbench.clear()
    patch.undo()




def reference(loaded, view, k):
    """Every compared method's map, computed directly with the page's settings."""
    layer = loaded.info.last_conv_layer
    maps = {
        "gradcam": class_heatmap(loaded, view, Target(k), "gradcam", layer).heatmap,
        "gradcam++": class_heatmap(loaded, view, Target(k), "gradcam++", layer).heatmap,
        "scorecam": class_heatmap(loaded, view, Target(k), "scorecam", layer).heatmap,
        "smoothgrad": class_heatmap(loaded, view, Target(k), "smoothgrad", samples=25,
                                    noise=0.15).heatmap,
        "integrated_gradients": class_heatmap(loaded, view, Target(k), "integrated_gradients",
                                              steps=64).heatmap,
    }
    segmentation = superpixels(view, algorithm="slic", n_superpixels=35, compactness=10.0)
    predictions = perturbed_predictions(loaded, view, segmentation, samples=500, hide="blurred",
                                        seed=0)
    maps["lime"] = lime_heatmap(fit_explanation(loaded, predictions, (k,)), k)
    return maps


def test_compare_maps_curves_and_agreement_drawn_on_arrival(app):
    at, loaded, media = app
    assert at.title[0].value == "Compare methods"
    # the fast methods by default, every registered one (LIME is one) on offer
    assert at.multiselect(key="cmp_methods").value == list(compare_methods())
    assert compare_methods() == methods.default_names()
    assert at.multiselect(key="cmp_methods").options == [
        methods.title(m) for m in methods.names()]
    assert "LIME" in at.multiselect(key="cmp_methods").options
    # quick on this model: the maps and curves are made on arrival (pictures first), no button
    at.multiselect(key="cmp_methods").set_value(list(SIX)).run()
    assert not at.exception, at.exception
    assert not any(b.key == "cmp_run" for b in at.button)

    image = at.session_state[SELECTION_KEY].image
    original = load_image(sample_bytes(image.name), image.name)
    view = loaded.view(original)
    k = at.selectbox(key="cmp_class").value
    assert k == top_classes(loaded, view, 1)[0][0]
    maps = reference(loaded, view, k)
    curves = {m: deletion_insertion(loaded, view, k, maps[m], steps=20, baseline="blurred")
              for m in SIX}
    # one picture per method (captions carry the areas) and the colour bar
    pictures = [img for img in at.get("image") if img.captions and "AUC" in img.captions[0]]
    assert len(pictures) == 6
    for picture, method in zip(pictures, SIX):
        c = curves[method]
        assert picture.captions[0] == (f"deletion AUC {c.deletion_auc:.3f} · insertion AUC "
                                       f"{c.insertion_auc:.3f}")
        # the picture is the map over the original image (what `compare` writes too)
        np.testing.assert_array_equal(png_of(media, picture.proto.imgs[0].url),
                                      compare_picture(original.pixels, maps[method]))
    # the curves, in percent of pixels, one trace per method plus the random order
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    deletion, insertion, agreement = charts
    assert len(deletion["data"]) == 7
    first = deletion["data"][0]
    assert first["name"] == f"Grad-CAM · AUC {curves['gradcam'].deletion_auc:.3f}"
    # the true share of pixels changed: round(k / 20 * 48 * 48) / (48 * 48)
    np.testing.assert_allclose(values(first["x"]), np.rint(np.arange(21) / 20 * 2304) / 23.04,
                               atol=1e-4)
    np.testing.assert_allclose(values(first["y"]), curves["gradcam"].deletion, atol=1e-6)
    np.testing.assert_allclose(values(insertion["data"][5]["y"]), curves["lime"].insertion,
                               atol=1e-6)
    assert deletion["data"][6]["name"].startswith("Random order")
    # the agreement matrix: Spearman of the same maps
    expected = rank_agreement({method_title(m): maps[m] for m in SIX}).matrix
    z = values(agreement["data"][0]["z"]).reshape(6, 6)
    np.testing.assert_allclose(z, expected, atol=1e-5, equal_nan=True)
    assert agreement["data"][0]["x"][0] == "Grad-CAM"
    which = at.dataframe[0].value  # the "which method when" table, from the registry
    assert list(which["Method"]) == [spec.title for spec in methods.specs()]
    table = at.dataframe[1].value
    assert list(table["Method"])[:2] == ["Grad-CAM", "Grad-CAM++"]
    assert table["Deletion AUC ↓"].iloc[2] == pytest.approx(curves["scorecam"].deletion_auc)
    # the columns come from the registry: title and the arrow of its direction
    assert list(table.columns) == ["Method", "Deletion AUC ↓", "Insertion AUC ↑",
                                   "Insertion − deletion ↑"]


def test_slow_curves_wait_for_the_button_under_maps_drawn_on_arrival(app, monkeypatch):
    """Where the curves are slow (here: every pass said to take a second), the maps (a pass
    or two each) are still drawn on arrival, and the curves' cost and button sit under them."""
    import ui.cost

    at, loaded, media = app
    monkeypatch.setattr(ui.cost, "run_seconds", lambda model, passes: float(passes))
    at.switch_page("pages/compare.py")
    at.run()
    at.multiselect(key="cmp_methods").set_value(["gradcam", "xgradcam"]).run()
    at.select_slider(key="cmp_steps").set_value(50).run()  # curves not computed yet
    assert not at.exception, at.exception
    assert [b.label for b in at.button if b.key == "cmp_run"] == ["Compare 2 methods"]
    # 3 curves (2 methods and the random order), each 2 x 51 images
    assert [i.value for i in at.info] == [
        "306 images through the model for the deletion and insertion curves: about 306 "
        "forward passes, ~5 min here."]
    image = at.session_state[SELECTION_KEY].image
    original = load_image(sample_bytes(image.name), image.name)
    view = loaded.view(original)
    k = at.selectbox(key="cmp_class").value
    layer = loaded.info.last_conv_layer
    pictures = [img for img in at.get("image") if img.proto.imgs[0].url and not img.captions]
    drawn = [png_of(media, p.proto.imgs[0].url) for p in pictures]
    for method, picture in zip(("gradcam", "xgradcam"), drawn):  # the maps, before any curve
        heat = class_heatmap(loaded, view, Target(k), method, layer).heatmap
        np.testing.assert_array_equal(picture, compare_picture(original.pixels, heat))
    at.button(key="cmp_run").click().run()
    assert not at.exception, at.exception
    deletion = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert len(deletion["data"]) == 3 and len(values(deletion["data"][0]["y"])) == 51


def test_display_options_reuse_results_and_heatmaps_page_shares_maps(app):
    at, loaded, media = app
    from ui.state import workbench

    misses = workbench().results.stats.misses
    at.selectbox(key="cmp_colormap").set_value("magma").run()
    at.radio(key="cmp_show").set_value("heatmap").run()
    assert not at.exception
    assert workbench().results.stats.misses == misses
    assert not any(b.key == "cmp_run" for b in at.button)
    k = at.selectbox(key="cmp_class").value
    # the Class heatmaps page finds the top class's Grad-CAM already computed: the only new
    # map it makes is its default second class (the runner-up)
    at.switch_page("pages/heatmaps.py")
    at.run()
    assert not at.exception
    assert at.radio(key="cam_class").value == k
    assert workbench().results.stats.misses == misses + 1


def test_fewer_methods_and_a_new_curve_setting(app):
    at, loaded, media = app
    at.switch_page("pages/compare.py")
    at.run()
    at.multiselect(key="cmp_methods").set_value(["gradcam", "saliency"]).run()
    at.select_slider(key="cmp_steps").set_value(10).run()
    assert not at.exception
    deletion = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert len(deletion["data"]) == 3 and len(values(deletion["data"][0]["y"])) == 11
    assert len(json.loads(at.get("plotly_chart")[2].proto.spec)["data"][0]["x"]) == 2


def test_a_registered_toy_method_can_be_compared_with_no_other_edit(app):
    from tests.test_methods import TOY

    at, loaded, media = app
    at.switch_page("pages/compare.py")
    with methods.registered(TOY):
        at.run()
        assert "Toy CAM" in at.multiselect(key="cmp_methods").options
        assert compare_methods()[-1] == "toycam"  # fast: a default for a new session
        at.multiselect(key="cmp_methods").set_value(["gradcam", "toycam"]).run()
        assert not at.exception, at.exception
        assert "**Toy CAM**" in [m.value for m in at.markdown]
        at.multiselect(key="cmp_methods").set_value(["gradcam"]).run()
    at.run()
    assert not at.exception
    assert "Toy CAM" not in at.multiselect(key="cmp_methods").options


def test_more_metrics_table_equals_map_metrics(app):
    from viz_core.metrics.evaluation import map_metrics

    at, loaded, media = app
    at.switch_page("pages/compare.py")
    at.run()
    at.multiselect(key="cmp_methods").set_value(["gradcam", "eigencam", "lime"]).run()
    if any(b.key == "cmp_run" for b in at.button):
        at.button(key="cmp_run").click().run()
    # LIME is judged like every method; the cost is said first
    assert [b.label for b in at.button] == ["Compute metrics for 3 methods"]
    assert any("forward passes" in c.value for c in at.caption)
    at.button(key="cmp_metrics_run").click().run()
    assert not at.exception, at.exception
    image = at.session_state[SELECTION_KEY].image
    view = loaded.view(load_image(sample_bytes(image.name), image.name))
    k = at.selectbox(key="cmp_class").value
    table = at.dataframe[-1].value
    assert list(table["Method"]) == ["Grad-CAM", "EigenCAM", "LIME"]
    more = [s for s in metrics.specs() if s.name not in ("deletion_auc", "insertion_auc")]
    assert [c for c in table.columns if c.endswith(("↑", "↓"))] == [s.column for s in more]
    assert table["Random logit SSIM: vs class"].iloc[0].endswith(")")
    for row, method in enumerate(("gradcam", "eigencam", "lime")):
        expected = map_metrics(loaded, view, Target(k, "logit"), method)
        for spec in more:
            assert table[spec.column].iloc[row] == pytest.approx(
                expected[spec.name], abs=1e-6, nan_ok=True), (method, spec.name)
    assert table["Random logit SSIM ↓"].iloc[1] == pytest.approx(1.0)  # EigenCAM: no class
    # the caption is the registry's: each metric's paper and which way is better
    assert any("**ROAD MoRF** (Rong et al. 2022; lower is better)" in c.value for c in at.caption)
