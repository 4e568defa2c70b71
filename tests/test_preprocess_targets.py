"""Preprocessing by name and class scores for every output kind, checked by hand."""
from __future__ import annotations

import numpy as np
import pytest

from viz_core.errors import ParameterError
from viz_core.models.preprocess import preprocess
from viz_core.models.targets import Target, class_probabilities, class_score


def test_preprocessing_values():
    px = np.array([[[[0.0, 127.5, 255.0]]]], dtype="float32")
    np.testing.assert_allclose(preprocess("none", px), px)
    np.testing.assert_allclose(preprocess("unit", px)[0, 0, 0], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(preprocess("symmetric", px)[0, 0, 0], [-1.0, 0.0, 1.0])
    # caffe: RGB -> BGR, minus (103.939, 116.779, 123.68)
    np.testing.assert_allclose(preprocess("caffe", px)[0, 0, 0],
                               [255 - 103.939, 127.5 - 116.779, 0 - 123.68], atol=1e-4)
    np.testing.assert_allclose(preprocess("torch", px)[0, 0, 0],
                               [(0 - 0.485) / 0.229, (0.5 - 0.456) / 0.224,
                                (1 - 0.406) / 0.225], atol=1e-5)
    with pytest.raises(ParameterError, match="Unknown preprocessing 'bgr'"):
        preprocess("bgr", px)


def test_class_scores_by_output_kind():
    logits = np.array([[2.0, -1.0, 0.5]], dtype="float32")
    probs = np.exp(logits) / np.exp(logits).sum()
    assert float(class_score(logits, probs, Target(2), "softmax")[0]) == 0.5
    assert float(class_score(logits, probs, Target(0, "probability"), "softmax")[0]) == \
        pytest.approx(probs[0, 0])
    one = np.array([[1.5]], dtype="float32")
    p = 1 / (1 + np.exp(-1.5))
    assert float(class_score(one, None, Target(1), "binary")[0]) == 1.5
    assert float(class_score(one, None, Target(0), "binary")[0]) == -1.5
    assert float(class_score(None, np.array([[p]]), Target(0, "probability"), "binary")[0]) == \
        pytest.approx(1 - p)
    with pytest.raises(ParameterError, match="classes 0 and 1, not 2"):
        class_score(one, None, Target(2), "binary")


def test_class_probabilities():
    np.testing.assert_allclose(class_probabilities(np.array([[0.8]]), "binary"), [[0.2, 0.8]],
                               atol=1e-6)
    lin = class_probabilities(np.array([[0.0, np.log(3.0)]]), "linear")
    np.testing.assert_allclose(lin, [[0.25, 0.75]], atol=1e-6)
