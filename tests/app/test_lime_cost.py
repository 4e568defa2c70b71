"""Before LIME runs, the page states its cost (forward passes, and the time from this model's
measured forward pass) and, for a slow model, offers a quick preset that says so in the
result's caption."""
from __future__ import annotations

import viz_core.methods.steps
from tests.app.test_lime_page import app  # noqa: F401 - the page on the stand-in model


def captions(at) -> list[str]:
    return [c.value for c in at.caption]


def test_cost_is_stated_and_a_slow_model_gets_a_quick_preset(app, monkeypatch):  # noqa: F811
    at, _, _ = app
    # A fast model: the cost is stated and no preset is offered.
    assert any("about 500 forward passes" in c for c in captions(at))
    assert not any(b.key == "lime_quick_go" for b in at.button)
    # The same page for a model that takes 0.5 s per image: 500 passes are ~4 min.
    monkeypatch.setattr(viz_core.methods.steps, "forward_seconds", lambda model: 0.5)
    at.run()
    assert any("about 500 forward passes, ~4 min here" in c for c in captions(at))
    quick = at.button(key="lime_quick_go")
    assert quick.label == "Quick look: 250 samples (about ~2 min)"
    quick.click().run()
    assert at.select_slider(key="lime_samples").value == 250
    assert any("about 250 forward passes, ~2 min here" in c for c in captions(at))
    at.button(key="lime_run").click().run()
    assert not at.exception, at.exception
    shown = [c for image in at.get("image") for c in image.captions if "R² =" in c]
    assert len(shown) == 2 and all(c.endswith(" · quick look: 250 samples") for c in shown)
