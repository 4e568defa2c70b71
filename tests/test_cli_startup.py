"""The command line starts lazily and quietly (issue 15), and its bounds are the backend's.

* ``--help`` and argument errors never import TensorFlow (checked with ``-X importtime``);
* a command that runs prints nothing of TensorFlow's start-up on stderr;
* choices read from source (``static_constant``) and the bounds in ``viz_core.limits`` equal
  what the backend modules hold.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from viz_core import limits
from viz_core.errors import ParameterError

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "samples" / "circle.png"


def run(*args, importtime=False):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the command must quiet TensorFlow by itself
    flags = ["-X", "importtime"] if importtime else []
    start = time.monotonic()
    out = subprocess.run([sys.executable, *flags, "-m", "viz_core", *args], capture_output=True,
                         text=True, cwd=ROOT, env=env, timeout=300)
    return out, time.monotonic() - start


def imported(stderr: str) -> set[str]:
    """Top-level packages in ``-X importtime`` output."""
    return {line.split("|")[-1].strip().split(".")[0]
            for line in stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("args", [
    ["--help"],
    ["predict", "--help"],
    ["lime", "--help"],
    ["activations", "--help"],
    ["filters", "--help"],
    ["predict", "--image", str(SAMPLE), "--top", "-3"],
    ["lime", "--image", str(SAMPLE), "--out", "x", "--samples", "1000000000"],
    ["info", "--model", "vgg17"],
    ["predict", "--image", str(ROOT / "README.md")],
], ids=["help", "predict help", "lime help", "activations help", "filters help", "bad top",
        "bad samples", "unknown model", "text as image"])
def test_help_and_argument_errors_never_import_tensorflow(args):
    out, _ = run(*args, importtime=True)
    modules = imported(out.stderr)
    assert "viz_core" in modules  # the timing lines are there
    assert not modules & {"tensorflow", "keras"}
    if args[-1] == "--help":
        assert "numpy" not in modules  # help is text only
    messages = [line for line in out.stderr.splitlines() if not line.startswith("import time:")]
    if args[-1] == "--help":
        assert out.returncode == 0 and messages == [] and "usage:" in out.stdout
    else:
        assert out.returncode == 2 and len(messages) == 1 and messages[0].startswith("error: ")


def test_help_answers_fast_and_lists_every_command():
    from viz_core.cli import COMMANDS

    out, seconds = run("--help")
    assert out.returncode == 0 and out.stderr == ""
    assert all(name in out.stdout for name in COMMANDS)
    baseline = min(_timed([sys.executable, "-c", "pass"]) for _ in range(3))
    # generous for a loaded machine, and far from importing TensorFlow (5 s and more)
    assert seconds < max(2.0, 20 * baseline)


def _timed(argv) -> float:
    start = time.monotonic()
    subprocess.run(argv, check=True)
    return time.monotonic() - start


def test_a_run_prints_nothing_on_stderr_and_a_late_error_one_line(tmp_path):
    out, _ = run("predict", "--image", str(SAMPLE), "--top", "1", "--json")
    assert out.returncode == 0 and out.stderr == "" and '"label": "circle"' in out.stdout
    out, _ = run("activations", "--image", str(SAMPLE), "--layers", "no_such_layer",
                 "--out", str(tmp_path))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert out.stderr.startswith("error: ") and "'no_such_layer'" in out.stderr


def test_choices_read_from_source_equal_the_modules():
    from viz_core import catalog, filters, lime_explain, preprocess, superpixels
    from viz_core.cli import activations as cli_activations
    from viz_core.cli import common
    from viz_core.cli import filters as cli_filters
    from viz_core.cli import lime as cli_lime
    from viz_core.render import colormaps, lime_view, montage

    assert common.BUILTIN_NAMES == catalog.BUILTIN_NAMES
    assert common.PREPROCESSING_NAMES == preprocess.PREPROCESSING_NAMES
    assert common.COLORMAPS == colormaps.COLORMAPS
    assert (cli_activations.SCALES, cli_activations.ORDERS) == (montage.SCALES, montage.ORDERS)
    assert cli_lime.HIDE_COLOURS == lime_explain.HIDE_COLOURS
    assert cli_lime.PAGE_DEFAULTS == dict(lime_explain.PAGE_DEFAULTS)
    assert cli_lime.STABILITY_K == lime_explain.STABILITY_K
    assert cli_lime.ALGORITHMS == superpixels.ALGORITHMS
    assert (cli_lime.STYLES, cli_lime.RESTS) == (lime_view.STYLES, lime_view.RESTS)
    assert cli_filters.METHODS == filters.METHODS
    assert cli_filters.METHOD_HELP == filters.METHOD_HELP
    assert cli_filters.DEFAULT_STEPS == filters.DEFAULT_STEPS
    assert cli_filters.DEFAULT_SIZE == filters.DEFAULT_SIZE


def test_limits_are_the_backend_checks():
    from viz_core import filters, lime_explain, superpixels

    assert (lime_explain.MIN_SAMPLES, lime_explain.MAX_SAMPLES) == (
        limits.LIME_SAMPLES.low, limits.LIME_SAMPLES.high)
    assert (superpixels.MIN_SUPERPIXELS, superpixels.MAX_SUPERPIXELS) == (
        limits.SUPERPIXELS.low, limits.SUPERPIXELS.high)
    assert filters.MAX_STEPS == limits.FILTER_STEPS.high
    assert tuple(filters.SIZE_RANGE) == (limits.FILTER_SIZE.low, limits.FILTER_SIZE.high)


def test_the_help_table_matches_what_each_module_registers():
    import argparse

    from viz_core.cli import COMMANDS, build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    registered = {a.dest: a.help for a in action._choices_actions}
    assert registered == {name: text for name, (_, text) in COMMANDS.items()}


def test_a_bound_refuses_what_is_not_a_number_in_range():
    top = limits.TOP
    assert top.check(3) == 3 and top.check(np.int64(7)) == 7 and type(top.check(np.int64(7))) is int
    for bad in (0, -3, 100_001, 2.0, True, "3", None, float("nan")):
        with pytest.raises(ParameterError, match="top classes"):
            top.check(bad)
    assert limits.COMPACTNESS.check(2) == 2.0
    for bad in (float("inf"), float("nan"), -0.5, 1e9, "x"):
        with pytest.raises(ParameterError, match="compactness"):
            limits.COMPACTNESS.check(bad)
