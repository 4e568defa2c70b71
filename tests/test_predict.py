"""viz_core.models.predict: batches of at most BATCH images give what one image at a time gives."""
from __future__ import annotations

import numpy as np
import pytest

from viz_core.models import predict as predict_module
from viz_core.models.catalog import load_demo_model
from viz_core.errors import ParameterError
from viz_core.inputs.intake import load_image
from viz_core.models.predict import predict
from viz_core.inputs.samples import sample_bytes


def test_many_images_run_in_batches_with_the_same_answers(monkeypatch):
    model = load_demo_model()
    names = ["circle", "square", "triangle", "star", "circle_and_star"]
    views = [model.view(load_image(sample_bytes(n), n)) for n in names]
    one_by_one = [predict(model, [v], top=4)[0] for v in views]
    calls = []
    compiled = predict_module.probability_function(model)
    monkeypatch.setattr(predict_module, "BATCH", 2)
    monkeypatch.setattr(predict_module, "probability_function",
                        lambda m: lambda x: calls.append(len(x)) or compiled(x))
    batched = predict(model, views, top=4)
    assert calls == [2, 2, 1]
    for a, b in zip(one_by_one, batched):
        assert [c.class_index for c in a.top] == [c.class_index for c in b.top]
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-5)
    assert [r.top[0].label for r in batched[:4]] == names[:4]
    for bad in (0, -3, 100_001, 2.5):
        with pytest.raises(ParameterError, match="top classes"):
            predict(model, views[:1], top=bad)
