"""Shortcut finder: SpRAy clusters per class, corner shares, and the bundled shortcut model."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from viz_core.errors import ParameterError
from viz_core.dataset.shortcuts import CORNERS, corner_shares, eigengap_count, find_shortcuts


def blob(cx, cy, side=28, width=3.0):
    yy, xx = np.mgrid[:side, :side]
    return np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * width**2)).astype(np.float32)


def strategies(seed=0):
    """20 maps on the object (centre, jittered) and 10 on a top-left tag, all one class."""
    rng = np.random.default_rng(seed)
    centre = [blob(14 + rng.integers(-3, 4), 14 + rng.integers(-3, 4)) for _ in range(20)]
    corner = [blob(2 + rng.integers(0, 2), 2 + rng.integers(0, 2), width=2.0) for _ in range(10)]
    maps = np.stack(centre + corner)
    return maps / maps.max(axis=(1, 2), keepdims=True), np.array([0] * 20 + [1] * 10)


def test_corner_shares_by_hand():
    m = np.zeros((8, 8), np.float32)
    m[0, 0], m[7, 7], m[4, 4] = 3.0, 1.0, 4.0
    assert corner_shares(m).tolist() == pytest.approx([0.375, 0.0, 0.0, 0.125])
    assert corner_shares(np.ones((2, 8, 8))).tolist() == [[0.0625] * 4] * 2
    assert corner_shares(np.zeros((4, 4))).tolist() == [0.0] * 4
    with pytest.raises(ParameterError, match="0.7"):
        corner_shares(m, 0.7)


def test_a_corner_strategy_is_its_own_flagged_cluster():
    maps, truth = strategies()
    report = find_shortcuts(maps, np.zeros(30, int), ["star"])
    (star,) = report.classes
    assert [c.size for c in star.clusters] == [20, 10]
    assert adjusted_rand_score(truth, report.assignments) == 1.0
    big, tag = star.clusters
    assert tag.flagged and tag.corner == CORNERS[0] and tag.corner_share > 0.6
    assert not big.flagged and big.corner_share < 0.1
    assert set(tag.examples) <= set(tag.members) and len(tag.examples) == 6
    assert tag.mean_map.max() == pytest.approx(1.0) and report.flagged == (tag,)


def test_clusters_per_class_and_by_request():
    maps, truth = strategies()
    predicted = np.array([0, 1] * 15)  # both classes get a mix
    report = find_shortcuts(maps, predicted, ["a", "b"], clusters=2)
    assert [s.label for s in report.classes] == ["a", "b"]
    for k in (0, 1):
        pick = predicted == k
        assert adjusted_rand_score(truth[pick], report.assignments[pick]) == 1.0
    one = find_shortcuts(maps, np.zeros(30, int), ["a"], clusters=1)
    assert len(one.classes[0].clusters) == 1 and not one.assignments.any()
    few = find_shortcuts(maps[:3], np.zeros(3, int), ["a"])
    assert [c.size for c in few.clusters] == [3]
    with pytest.raises(ParameterError, match="'many'"):
        find_shortcuts(maps, predicted, ["a", "b"], clusters="many")
    with pytest.raises(ParameterError, match=r"got \(30, 28, 28\) and \(4,\)"):
        find_shortcuts(maps, predicted[:4], ["a", "b"])


def test_alike_maps_are_one_cluster():
    rng = np.random.default_rng(1)
    maps = np.stack([blob(14 + rng.normal(0, 1), 14 + rng.normal(0, 1)) for _ in range(30)])
    assert eigengap_count(np.ones((5, 5)) - np.eye(5))[0] == 1
    assert len(find_shortcuts(maps, np.zeros(30, int), ["a"]).clusters) == 1


def test_the_bundled_shortcut_model_is_caught():
    """The shortcut demo model calls a star a star by the corner tag: plain stars are missed,
    and the finder flags the star heatmaps' top-left corner; every cluster is pure in the tag."""
    from viz_core.dataset.engine import run_dataset
    from viz_core.models.catalog import load_builtin_model
    from viz_core.dataset.readers import is_tagged_path, sample_dataset

    model = load_builtin_model("shortcut_demo")
    run = run_dataset(model, sample_dataset("shortcut", model.labels, count=80))
    star = model.labels.index("star")
    tagged = np.array([is_tagged_path(p) for p in run.paths])
    stars = run.label_indices == star
    assert run.correct[stars & tagged].mean() == 1.0
    assert run.correct[stars & ~tagged].mean() <= 0.1  # 0.0 on these 20
    others_tagged = ~stars & tagged
    assert (run.predicted[others_tagged] == star).mean() >= 0.9  # the tag alone makes a star
    report = find_shortcuts(run.maps, run.predicted, run.classes)
    assert report.flagged and {c.label for c in report.flagged} == {"star"}
    top = report.flagged[0]
    assert top.corner == "top left" and top.corner_share > 0.35
    for cluster in report.clusters:
        share = tagged[cluster.members].mean()
        assert share >= 0.9 or share <= 0.1, (cluster.label, cluster.id, share)
        assert cluster.flagged == (share >= 0.9)
    # the criterion: the images whose evidence is the mark are set apart (ARI >= 0.6)
    in_flagged = np.zeros(len(run), bool)
    for cluster in report.flagged:
        in_flagged[cluster.members] = True
    assert adjusted_rand_score(tagged, in_flagged) >= 0.9
