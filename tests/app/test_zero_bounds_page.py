"""The LIME page never offers compactness 0 (SLIC divides by it), even from a shared link."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from viz_core.models.catalog import DEMO_MODEL_FILE
from viz_core.runtime.limits import COMPACTNESS

pytestmark = pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not built")


def test_a_link_asking_for_compactness_zero_opens_the_page_with_the_default():
    at = AppTest.from_file("../../app.py", default_timeout=300)
    at.query_params["lime_compactness"] = "0"
    at.run()
    at.switch_page("pages/lime.py").run()
    assert not at.exception, at.exception
    slider = at.slider(key="lime_compactness")
    assert slider.value == 10.0 and slider.min == 1.0 and COMPACTNESS.contains(slider.min)
    assert not at.error
