"""The command line starts lazily and quietly (issue 15), and its bounds are the backend's.

* ``--help`` and argument errors never import TensorFlow: they run with ``tensorflow`` and
  ``keras`` blocked in ``sys.modules`` (an import of either fails with a traceback), and
  ``-X importtime`` lists what was imported (it cannot see TensorFlow on its own: the command
  imports it with file descriptor 2 silenced, timing lines included);
* a command that runs prints nothing of TensorFlow's start-up on stderr;
* the parser's choices come from modules that import neither NumPy nor TensorFlow, and the bounds in
  ``viz_core.runtime.limits`` are what the backend checks.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from viz_core.runtime import limits
from viz_core.methods import registry as methods
from viz_core.errors import ParameterError

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "samples" / "circle.png"


# ``python -m viz_core`` with TensorFlow and Keras unimportable: importing either raises
# ModuleNotFoundError ("import of tensorflow halted"), a traceback and exit status 1.
WITHOUT_TENSORFLOW = ("import runpy, sys; sys.modules.update(tensorflow=None, keras=None); "
                      "runpy.run_module('viz_core', run_name='__main__', alter_sys=True)")


def run(*args, importtime=False, without_tensorflow=False):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the command must quiet TensorFlow by itself
    flags = ["-X", "importtime"] if importtime else []
    entry = ["-c", WITHOUT_TENSORFLOW] if without_tensorflow else ["-m", "viz_core"]
    start = time.monotonic()
    out = subprocess.run([sys.executable, *flags, *entry, *args], capture_output=True,
                         text=True, cwd=ROOT, env=env, timeout=300)
    return out, time.monotonic() - start


def imported(stderr: str) -> set[str]:
    """Top-level packages in ``-X importtime`` output."""
    return {line.split("|")[-1].strip().split(".")[0]
            for line in stderr.splitlines() if line.startswith("import time:")}


IMAGE_OUT = ["--image", str(SAMPLE), "--out", "x"]  # "x" is never made: parsing fails first
# what compare and evaluate accept: every registered method, then LIME (once, if registered)
METHODS = ", ".join(dict.fromkeys((*methods.names(), "lime")))


# (id, arguments, what the one error line must say: the flag, the bad value, what is allowed)
ARGUMENT_CASES = [
    ("help", ["--help"], None),
    ("predict help", ["predict", "--help"], None),
    ("lime help", ["lime", "--help"], None),
    ("activations help", ["activations", "--help"], None),
    ("filters help", ["filters", "--help"], None),
    ("bad top", ["predict", "--image", str(SAMPLE), "--top", "-3"],
     "argument --top: the number of top classes must be a whole number from 1 to 100000; "
     "got -3"),
    ("bad samples", ["lime", *IMAGE_OUT, "--samples", "1000000000"],
     "from 10 to 20000; got 1000000000"),
    ("unknown model", ["info", "--model", "vgg17"], "'vgg17' is neither a built-in model"),
    ("text as image", ["predict", "--image", str(ROOT / "README.md")],
     "is a text file, not a supported image"),
    # issue 17: these once loaded TensorFlow (about 10 s) before refusing the value
    ("heatmap opacity 2", ["heatmap", *IMAGE_OUT, "--opacity", "2"],
     "argument --opacity: the heatmap opacity must be a number from 0 to 1; got 2.0"),
    ("heatmap threshold nan", ["heatmap", *IMAGE_OUT, "--threshold", "nan"],
     "argument --threshold: the heat threshold must be a number from 0 to 1; got nan"),
    ("compare unknown method", ["compare", *IMAGE_OUT, "--methods", "gradcam,nope"],
     f"argument --methods: unknown method 'nope'; choose from {METHODS} "),
    ("compare opacity 5", ["compare", *IMAGE_OUT, "--opacity", "5"],
     "argument --opacity: the heatmap opacity must be a number from 0 to 1; got 5.0"),
    ("sanity threshold 5", ["sanity", *IMAGE_OUT, "--threshold", "5"],
     "argument --threshold: the similarity threshold must be a number from -1 to 1; got 5.0"),
    ("sanity unknown method", ["sanity", *IMAGE_OUT, "--methods", "nope"],
     f"argument --methods: unknown method 'nope'; choose from {METHODS}, edges "),
    ("evaluate unknown method", ["evaluate", "--methods", "nope"],
     f"argument --methods: unknown method 'nope'; choose from {METHODS} "),
    ("evaluate no method", ["evaluate", "--methods", " , "],
     f"argument --methods: choose at least one method from {METHODS} "),
]


@pytest.mark.slow  # starts python -m viz_core processes
@pytest.mark.parametrize("args, says", [case[1:] for case in ARGUMENT_CASES],
                         ids=[case[0] for case in ARGUMENT_CASES])
def test_help_and_argument_errors_never_import_tensorflow(args, says):
    out, _ = run(*args, importtime=True, without_tensorflow=True)
    modules = imported(out.stderr)
    assert "viz_core" in modules  # the timing lines are there
    assert not modules & {"tensorflow", "keras"}
    if args[-1] == "--help":
        assert "numpy" not in modules  # help is text only
    messages = [line for line in out.stderr.splitlines() if not line.startswith("import time:")]
    if args[-1] == "--help":
        assert out.returncode == 0 and messages == [] and "usage:" in out.stdout
    else:  # a TensorFlow import would be a traceback and exit status 1
        assert out.returncode == 2 and len(messages) == 1, out.stderr[-2000:]
        assert messages[0].startswith("error: ") and says in messages[0]
    assert not (ROOT / "x").exists()


@pytest.mark.slow  # starts python -m viz_core processes
def test_the_guard_catches_a_tensorflow_import():
    """The guard of the test above: a command that loads TensorFlow fails loudly under it."""
    out, _ = run("predict", "--image", str(SAMPLE), "--top", "1", without_tensorflow=True)
    assert out.returncode == 1 and "halted; None in sys.modules" in out.stderr


def test_methods_are_parsed_into_the_checked_list():
    from viz_core.cli import build_parser

    parser = build_parser(command="compare")
    base = ["compare", "--image", str(SAMPLE), "--out", "x"]
    args = parser.parse_args([*base, "--methods", " saliency, ,gradcam,saliency ,lime"])
    assert args.methods == ("saliency", "gradcam", "lime")  # blanks and repeats dropped
    assert parser.parse_args(base).methods == methods.default_names()
    args = build_parser(command="sanity").parse_args(["sanity", *base[1:]])
    assert args.methods == (*methods.default_names(), "edges")


@pytest.mark.slow  # starts python -m viz_core processes
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


@pytest.mark.slow  # starts python -m viz_core processes
def test_a_run_prints_nothing_on_stderr_and_a_late_error_one_line(tmp_path):
    out, _ = run("predict", "--image", str(SAMPLE), "--top", "1", "--json")
    assert out.returncode == 0 and out.stderr == "" and '"label": "circle"' in out.stdout
    out, _ = run("activations", "--image", str(SAMPLE), "--layers", "no_such_layer",
                 "--out", str(tmp_path))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert out.stderr.startswith("error: ") and "'no_such_layer'" in out.stderr


@pytest.mark.slow
def test_the_choice_modules_import_neither_numpy_nor_tensorflow():
    """The modules the parser reads its choices from are plain data, as are the packages
    holding them (importing a module runs its package's ``__init__``)."""
    modules = ("viz_core.models.builtin_models", "viz_core.models.preprocess_names",
               "viz_core.render.choices", "viz_core.features.filter_options",
               "viz_core.methods.lime_options", "viz_core.metrics.choices",
               "viz_core.runtime.limits")
    code = (f"import sys; import {', '.join(modules)}; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'numpy', 'tensorflow', 'keras', 'PIL'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr[-2000:]
    from viz_core.models.catalog import BUILTIN_NAMES, builtin
    from viz_core.render import COLORMAPS, montage

    assert BUILTIN_NAMES[:2] == ("demo", "shortcut_demo") and builtin("vgg16").constructor == "VGG16"
    assert "viridis" in COLORMAPS and montage.SCALES == ("channel", "layer")


def test_limits_are_the_backend_checks():
    from viz_core.methods import lime as lime_explain
    from viz_core.methods import superpixels

    assert (lime_explain.MIN_SAMPLES, lime_explain.MAX_SAMPLES) == (
        limits.LIME_SAMPLES.low, limits.LIME_SAMPLES.high)
    assert (superpixels.MIN_SUPERPIXELS, superpixels.MAX_SUPERPIXELS) == (
        limits.SUPERPIXELS.low, limits.SUPERPIXELS.high)


def test_the_opacity_bound_is_the_overlays_check():
    """--opacity (heatmap, compare) is refused while parsing exactly where the overlay would
    refuse it later."""
    from viz_core.render import overlay_heatmap

    black, heat = np.zeros((2, 2, 3), dtype="uint8"), np.ones((2, 2), dtype="float32")
    bound = limits.OPACITY
    assert overlay_heatmap(black, heat, opacity=bound.low).max() == 0  # the image alone
    full = overlay_heatmap(black, heat, opacity=bound.high)
    assert (full == full[0, 0]).all() and full.max() > 0  # the colour of heat 1 alone
    for outside in (bound.low - 1e-9, bound.high + 1e-9):
        with pytest.raises(ParameterError):
            overlay_heatmap(black, heat, opacity=outside)
        with pytest.raises(ParameterError, match="heatmap opacity"):
            bound.check(outside)
    # --threshold (heatmap) likewise: heat at or above it is coloured, nothing outside 0-1
    heat_bound = limits.HEAT_THRESHOLD
    assert overlay_heatmap(black, heat, opacity=1.0, threshold=heat_bound.high).max() > 0
    for outside in (heat_bound.low - 1e-9, heat_bound.high + 1e-9, float("nan")):
        with pytest.raises(ParameterError, match="heat threshold must be a number from 0 to 1"):
            overlay_heatmap(black, heat, threshold=outside)


def test_the_similarity_threshold_bound_is_the_sanity_checks():
    """--threshold (sanity) is refused while parsing with the words the sanity check itself
    uses: both read limits.SIMILARITY_THRESHOLD."""
    from viz_core.metrics.sanity import cascading_randomisation

    bound = limits.SIMILARITY_THRESHOLD
    assert (bound.low, bound.high) == (-1.0, 1.0)  # a correlation or SSIM
    for outside in (bound.low - 1e-9, bound.high + 1e-9, float("nan")):
        with pytest.raises(ParameterError, match="similarity threshold must be a number "
                                                 "from -1 to 1"):
            cascading_randomisation(None, None, None, threshold=outside)  # refused before any model use


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
