"""Every numeric bound refuses a value that would divide by zero or loop: LIME's compactness
must be above 0 (SLIC divides by it) in the backend, the command line and a shared link alike,
all from ``viz_core.runtime.limits``."""
from __future__ import annotations

import numpy as np
import pytest

from viz_core.errors import ParameterError
from viz_core.methods.superpixels import superpixels
from viz_core.runtime import limits


def test_compactness_excludes_zero_and_says_so():
    assert limits.COMPACTNESS.describe() == "a number above 0, up to 1000"
    assert limits.COMPACTNESS.check(1e-6) == 1e-6 and limits.COMPACTNESS.check(1000) == 1000.0
    for bad in (0, 0.0, -0.0, -1e-9):
        with pytest.raises(ParameterError, match=r"compactness must be a number above 0, up to "
                                                 r"1000; got -?0\.0|got -1e-09"):
            limits.COMPACTNESS.check(bad)


def test_no_bound_lets_through_a_value_that_divides_or_loops():
    """The bounds checked by hand: counts, sizes, steps and factors start at 1 or more; seeds and
    indices at 0 are values, not divisors; opacities and thresholds at 0 or 1 are used as they
    are (``heat >= threshold``); compactness is the one that divides, so it excludes 0."""
    starts_at_one = ("TOP", "IMAGES", "ACTIVATION_PER_ROW", "ACTIVATION_TILE", "LIME_SAMPLES",
                     "SUPERPIXELS", "LIME_FEATURES", "LIME_SCALE", "FILTER_STEPS",
                     "FILTER_SIZE", "FILTER_PER_ROW", "FILTER_COUNT", "BATCH_SIZE",
                     "DATASET_LIMIT", "RAY_WORKERS", "CLUSTERS")
    for name in starts_at_one:
        assert getattr(limits, name).low >= 1, name
    bounds = {name for name, value in vars(limits).items() if isinstance(value, limits.Bound)}
    assert bounds == set(starts_at_one) | {"SEED", "FILTER_INDEX", "OPACITY", "HEAT_THRESHOLD",
                                           "SIMILARITY_THRESHOLD", "MASK_OPACITY", "COMPACTNESS"}
    assert limits.COMPACTNESS.above_low
    with pytest.raises(ParameterError, match="write a range"):
        limits.filter_indices("0:64:0")  # a zero step would never end


def test_slic_with_compactness_zero_is_refused_not_divided():
    pixels = np.random.default_rng(0).integers(0, 255, (32, 32, 3)).astype("uint8")
    with pytest.raises(ParameterError, match="compactness must be a number above 0"):
        superpixels(pixels, algorithm="slic", n_superpixels=10, compactness=0.0)
    assert superpixels(pixels, algorithm="slic", n_superpixels=10, compactness=0.5).count >= 2


def test_the_command_line_refuses_compactness_zero_in_one_line(tmp_path, capsys):
    from PIL import Image

    from viz_core.cli import main

    image = tmp_path / "a.png"
    Image.new("RGB", (32, 32), (9, 9, 9)).save(image)
    code = main(["lime", "--image", str(image), "--out", str(tmp_path / "out"),
                 "--compactness", "0"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error:") and "above 0, up to 1000; got 0.0" in lines[0]
    assert not (tmp_path / "out").exists()
