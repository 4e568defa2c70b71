"""LIME's weak fits get a caution: under each picture whose straight-line fit has R² below
0.5, and only there. The fit is the real one, with its R² for the first class lowered to 0.30
(a weak fit on purpose), so one class is cautioned and the other not."""
from __future__ import annotations

import dataclasses
import re

import viz_core.methods.lime
from tests.app.test_lime_page import app  # noqa: F401 - the page on the stand-in model

CAUTION = "The straight-line fit explains little of the model's answers"


def test_a_weak_fit_is_cautioned_and_a_good_one_is_not(app, monkeypatch):  # noqa: F811
    at, _, _ = app
    real = viz_core.methods.lime.fit_explanation

    def weak_first(*args, **kwargs):
        explanation = real(*args, **kwargs)
        return dataclasses.replace(explanation, r2=(0.3, *explanation.r2[1:]))

    monkeypatch.setattr(viz_core.methods.lime, "fit_explanation", weak_first)
    at.button(key="lime_run").click().run()
    assert not at.exception, at.exception
    r2 = [float(re.search(r"R² = (-?[\d.]+)", c).group(1))
          for image in at.get("image") for c in image.captions if "R² =" in c]
    assert len(r2) == 2 and r2[0] == 0.3 and r2[1] >= 0.5, r2
    cautions = [c.value for c in at.caption if CAUTION in c.value]
    assert len(cautions) == 1
    assert "(R² 0.30 < 0.5)" in cautions[0]
