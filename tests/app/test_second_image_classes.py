"""Class heatmaps with a second image: each image is explained for its own most probable
classes (issue: the star beside the circle was shown "circle" and "square" maps, never
"star"). The expected classes come from viz_core's own ranking of each image."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from viz_core.methods.heatmap import top_classes
from viz_core.models.catalog import DEMO_MODEL_FILE

pytestmark = pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not built")


def panel_titles(at) -> list[str]:
    return [m.value for m in at.markdown if m.value.endswith(")") and "**" in m.value
            and len(m.value) < 60]


def test_the_second_image_is_explained_for_its_own_top_classes():
    from ui.state import workbench

    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=300)
    at.run()
    at.sidebar.selectbox(key="image").set_value("circle").run()
    at.sidebar.selectbox(key="second").set_value("star").run()
    selection = at.session_state["_selection"]
    model = selection.model
    ranked = {im.name: [k for k, _, _ in top_classes(model, model.view(im), 2)]
              for im in (selection.image, selection.second)}
    assert ranked["star"][0] == model.class_index("star")  # the model sees the star
    at.switch_page("pages/heatmaps.py").run()
    assert not at.exception, at.exception

    # Two classes (the default: the circle's top class and its runner-up), one row per image.
    expected = [f"**{model.label(k)}** ({k})" for name in ("circle", "star")
                for k in ranked[name]]
    assert panel_titles(at) == expected
    # One class: the images side by side, each for its own top class.
    at.selectbox(key="cam_class_2").set_value(-1).run()
    assert not at.exception, at.exception
    assert panel_titles(at) == [f"circle · **{model.label(ranked['circle'][0])}** "
                                f"({ranked['circle'][0]})",
                                f"star · **star** ({model.class_index('star')})"]
    workbench.clear()
