"""A unit card's synthetic pattern: read from the filter-pattern disk cache, never drawn."""
from __future__ import annotations

import numpy as np

from tests.conftest import tiny_cnn, wrap
from viz_core.dataset.atlas import cached_unit_pattern, cached_unit_patterns, pattern_requests
from viz_core.features.filters import filter_patterns
from viz_core.runtime.cache import DiskCache

DRAWN = dict(method="fourier", steps=2, size=64, seed=0)


def files(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_the_requests_hold_each_channel():
    requests = pattern_requests([3, 70], count=100)
    assert requests[:2] == [(3,), (70,)]
    assert tuple(range(8)) in requests and tuple(range(64)) in requests
    assert tuple(range(64, 100)) in requests  # the block of 70, cut at the layer's end
    assert all(3 in r or 70 in r for r in requests)


def test_patterns_come_from_the_pages_requests_and_nothing_is_drawn(tmp_path):
    model = wrap(tiny_cnn(classes=3))
    disk = DiskCache(tmp_path / "cache")
    assert cached_unit_patterns(model, "conv_b", [1, 4], disk=disk, steps=2, size=64) == {}
    assert files(tmp_path) == []  # looked up only: nothing drawn, nothing written
    # The page's first visit draws the layer's first filters (all 6 of conv_b) together
    drawn = filter_patterns(model, "conv_b", "0:6", disk=disk, **DRAWN)
    found = cached_unit_patterns(model, "conv_b", [1, 4], disk=disk, steps=2, size=64)
    assert sorted(found) == [1, 4]
    for c in (1, 4):
        np.testing.assert_array_equal(found[c].pattern, drawn.by_filter(c).pattern)
        assert found[c].index == c and found[c].pattern.shape == (64, 64, 3)
    # other settings (steps, method) are other requests: not found
    assert cached_unit_pattern(model, "conv_b", 1, disk=disk, steps=3, size=64) is None
    assert cached_unit_pattern(model, "conv_b", 1, disk=disk, method="fast", steps=2,
                               size=64) is None


def test_a_filter_drawn_alone_is_found_alone(tmp_path):
    model = wrap(tiny_cnn(classes=3))
    disk = DiskCache(tmp_path / "cache")
    drawn = filter_patterns(model, "conv_a", (2,), disk=disk, **DRAWN)  # "every method" view
    found = cached_unit_patterns(model, "conv_a", [0, 2], disk=disk, steps=2, size=64)
    assert list(found) == [2]
    np.testing.assert_array_equal(found[2].pattern, drawn.item(0).pattern)
