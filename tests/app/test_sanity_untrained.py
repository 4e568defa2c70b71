"""The sanity check on a model with random (untrained) weights calls it untrained, and its
conclusion follows what the probabilities did (issue: an untrained VGG16 was called "trained"
and "the model itself has changed" was said when nothing had)."""
from __future__ import annotations

import dataclasses
import re

from streamlit.testing.v1 import AppTest

import ui.cost
import viz_core.runtime.workbench
from tests.conftest import tiny_cnn, wrap


def test_an_untrained_model_is_called_untrained(monkeypatch):
    from ui.state import workbench

    loaded = dataclasses.replace(
        wrap(tiny_cnn(size=48, classes=4, seed=6), name="vgg16"), weights="none",
        title="VGG16 (random weights)")
    monkeypatch.setattr(viz_core.runtime.workbench, "load_builtin_model",
                        lambda name, weights="imagenet", **kw: loaded)
    # a real VGG16's check is slow: it waits for its button under the untrained maps
    monkeypatch.setattr(ui.cost, "SLOW_SECONDS", -1.0)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=180)
    at.run()
    at.sidebar.selectbox(key="model").set_value("vgg16").run()
    at.switch_page("pages/sanity.py").run()
    assert not at.exception, at.exception
    assert any("versions of the model (untrained, then" in i.value for i in at.info)
    assert any(c.value.startswith("The untrained model's maps.") for c in at.caption)
    at.button(key="san_run").click().run()
    assert not at.exception, at.exception
    grid = [img for img in at.get("image") if img.captions]
    assert grid[0].captions[0] == "untrained"
    assert not any(c == "trained" for img in grid for c in img.captions)
    conclusion = next(c.value for c in at.caption if c.value.startswith("p("))
    before, after = (float(x) for x in re.findall(r"([\d.]+)% with the", conclusion))
    assert "with the untrained model" in conclusion
    if abs(after - before) >= 1.0:  # percentage points
        assert conclusion.endswith("randomising changed the model's answer.")
    else:
        assert conclusion.endswith("(an untrained model's never does).")
    workbench.clear()
