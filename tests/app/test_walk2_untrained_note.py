"""Issue 28, finding 6: every page that shows a prediction or a map of a model with random
weights says so in one line (it was said only on Overview and in the sidebar; Class heatmaps
showed "disk brake p = 0.1%" maps of a cat with no word that VGG16 is untrained)."""
from __future__ import annotations

import dataclasses

import pytest
from streamlit.testing.v1 import AppTest

import viz_core.runtime.workbench
from tests.conftest import tiny_cnn, wrap

LINE = ("**VGG16 has random weights (untrained)**: its predictions and maps show no learned "
        "evidence.")
PAGES = ("overview", "heatmaps", "lime", "compare", "sanity", "feature_maps", "filters",
         "dataset")


@pytest.fixture(scope="module")
def app():
    """The sidebar's VGG16 with random weights, played by a tiny seeded CNN (the line depends
    only on the weights being "none", not on the architecture)."""
    from ui.state import workbench

    loaded = dataclasses.replace(
        wrap(tiny_cnn(size=48, classes=4, seed=6), name="vgg16"), weights="none",
        title="VGG16 (random weights)")
    real = viz_core.runtime.workbench.load_builtin_model
    patch = pytest.MonkeyPatch()
    patch.setattr(viz_core.runtime.workbench, "load_builtin_model",
                  lambda name, weights="imagenet", **kw: (
                      loaded if name == "vgg16" else real(name, weights, **kw)))
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=180)
    at.run()
    at.sidebar.selectbox(key="model").set_value("vgg16").run()
    yield at
    patch.undo()
    workbench.clear()


def lines(at) -> list[str]:
    return [c.value for c in at.main.caption if "random weights (untrained)" in c.value]


@pytest.mark.parametrize("page", PAGES)
def test_the_page_says_the_model_is_untrained(app, page):
    app.switch_page(f"pages/{page}.py").run()
    assert not app.exception, app.exception
    assert [t.split(" ", 1)[1] for t in lines(app)] == [LINE]


def test_a_trained_model_gets_no_such_line(app):
    app.switch_page("pages/heatmaps.py").run()
    app.sidebar.selectbox(key="model").set_value("demo").run()
    assert not app.exception, app.exception
    assert lines(app) == []

