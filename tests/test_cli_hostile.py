"""Hostile and careless command lines (issue 17): every one ends cleanly.

Each case runs ``python -m viz_core ...`` in a subprocess and must exit with status 2, print
exactly one line on stderr, starting ``error:`` (no traceback, no TensorFlow start-up log),
within 30 s, and never grow past 1 GB of resident memory (a watchdog polls
``/proc/<pid>/status`` and kills the child above it). Cases run two at a time (the machine has
two cores); most are refused by argparse before TensorFlow is imported, in well under a second.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIME_LIMIT = 30.0
RSS_LIMIT_KB = 1024 * 1024  # 1 GB
IMG = "{img}"

# (id, arguments); {placeholders} are files made by the `files` fixture.
CASES = [
    # no or unknown command
    ("no command", []),
    ("unknown command", ["explode"]),
    ("top-level option", ["--model", "demo"]),
    # models
    ("models unknown option", ["models", "--bogus"]),
    ("models extra word", ["models", "--json", "extra"]),
    # info: model files, labels, options that do not apply
    ("info model is a folder", ["info", "--model", "{dir}"]),
    ("info model missing", ["info", "--model", "missing.keras"]),
    ("info model empty name", ["info", "--model", ""]),
    ("info model device", ["info", "--model", "/dev/null"]),
    ("info labels folder", ["info", "--model", "{m}", "--labels", "{dir}"]),
    ("info labels latin1", ["info", "--model", "{m}", "--labels", "{latin1}"]),
    ("info labels missing", ["info", "--model", "{m}", "--labels", "missing.txt"]),
    ("info labels binary", ["info", "--model", "{m}", "--labels", "{binary}"]),
    ("info labels huge", ["info", "--model", "{m}", "--labels", "{huge}"]),
    ("info labels with built-in", ["info", "--labels", "{names}"]),
    ("info preprocess with built-in", ["info", "--preprocess", "caffe"]),
    ("info weights with model file", ["info", "--model", "{m}", "--weights", "none"]),
    ("info unknown preprocess", ["info", "--model", "{m}", "--preprocess", "bogus"]),
    ("info unknown weights", ["info", "--weights", "maybe"]),
    ("info unknown built-in", ["info", "--model", "vgg17"]),
    # predict
    ("predict top negative", ["predict", "--image", IMG, "--top", "-3"]),
    ("predict top zero", ["predict", "--image", IMG, "--top", "0"]),
    ("predict top huge", ["predict", "--image", IMG, "--top", "1000000000"]),
    ("predict top word", ["predict", "--image", IMG, "--top", "abc"]),
    ("predict top nan", ["predict", "--image", IMG, "--top", "nan"]),
    ("predict no image", ["predict"]),
    ("predict image folder", ["predict", "--image", "{dir}"]),
    ("predict image missing", ["predict", "--image", "missing.png"]),
    ("predict image device", ["predict", "--image", "/dev/zero"]),
    ("predict image not an image", ["predict", "--image", "{text}"]),
    ("predict too many images", ["predict", *["--image", IMG] * 300]),
    ("predict labels folder", ["predict", "--model", "{m}", "--labels", "{dir}", "--image", IMG]),
    ("predict labels latin1", ["predict", "--model", "{m}", "--labels", "{latin1}",
                               "--image", IMG]),
    ("predict labels with built-in", ["predict", "--labels", "{names}", "--image", IMG]),
    ("predict default preprocess given with built-in",
     ["predict", "--preprocess", "unit", "--image", IMG]),
    # activations
    ("activations out under a file", ["activations", "--image", IMG, "--out", "{file}/sub"]),
    ("activations out is a file", ["activations", "--image", IMG, "--out", "{file}"]),
    ("activations no out", ["activations", "--image", IMG]),
    ("activations per-row zero", ["activations", "--image", IMG, "--out", "{out}",
                                  "--per-row", "0"]),
    ("activations per-row huge", ["activations", "--image", IMG, "--out", "{out}",
                                  "--per-row", "100000"]),
    ("activations tile negative", ["activations", "--image", IMG, "--out", "{out}",
                                   "--tile", "-1"]),
    ("activations tile huge", ["activations", "--image", IMG, "--out", "{out}",
                               "--tile", "100000"]),
    ("activations unknown cmap", ["activations", "--image", IMG, "--out", "{out}",
                                  "--cmap", "nope"]),
    ("activations unknown scale", ["activations", "--image", IMG, "--out", "{out}",
                                   "--scale", "nope"]),
    # filters
    ("filters no layer", ["filters", "--out", "{out}"]),
    ("filters huge range", ["filters", "--layer", "conv2d", "--out", "{out}",
                            "--filters", "0:1000000000"]),
    ("filters huge index", ["filters", "--layer", "conv2d", "--out", "{out}",
                            "--filters", "99999999"]),
    ("filters negative index", ["filters", "--layer", "conv2d", "--out", "{out}",
                                "--filters", "-5,3"]),
    ("filters not a range", ["filters", "--layer", "conv2d", "--out", "{out}",
                             "--filters", "abc"]),
    ("filters backwards step", ["filters", "--layer", "conv2d", "--out", "{out}",
                                "--filters", "5:1:-1"]),
    ("filters steps zero", ["filters", "--layer", "conv2d", "--out", "{out}", "--steps", "0"]),
    ("filters steps huge", ["filters", "--layer", "conv2d", "--out", "{out}",
                            "--steps", "100000000"]),
    ("filters size huge", ["filters", "--layer", "conv2d", "--out", "{out}", "--size", "100000"]),
    ("filters size tiny", ["filters", "--layer", "conv2d", "--out", "{out}", "--size", "1"]),
    ("filters per-row zero", ["filters", "--layer", "conv2d", "--out", "{out}",
                              "--per-row", "0"]),
    ("filters seed negative", ["filters", "--layer", "conv2d", "--out", "{out}", "--seed", "-1"]),
    ("filters unknown method", ["filters", "--layer", "conv2d", "--out", "{out}",
                                "--method", "nope"]),
    ("filters out under a file", ["filters", "--layer", "conv2d", "--out", "{file}/sub"]),
    # heatmap (method parameters: their bounds come from the method registry)
    ("heatmap smoothgrad seed negative", ["heatmap", "--image", IMG, "--out", "{out}",
                                          "--method", "smoothgrad", "--seed", "-1"]),
    ("heatmap integrated gradients steps huge",
     ["heatmap", "--image", IMG, "--out", "{out}", "--method", "integrated_gradients",
      "--steps", "1000000000"]),
    ("heatmap smoothgrad samples huge", ["heatmap", "--image", IMG, "--out", "{out}",
                                         "--method", "smoothgrad", "--samples", "1000000000"]),
    ("heatmap smoothgrad noise negative", ["heatmap", "--image", IMG, "--out", "{out}",
                                           "--method", "smoothgrad", "--noise", "-1"]),
    ("heatmap scorecam channels negative", ["heatmap", "--image", IMG, "--out", "{out}",
                                            "--method", "scorecam", "--max-channels", "-5"]),
    ("heatmap out under a file", ["heatmap", "--image", IMG, "--out", "{file}/sub"]),
    ("heatmap opacity 2", ["heatmap", "--image", IMG, "--out", "{out}", "--opacity", "2"]),
    ("heatmap threshold nan", ["heatmap", "--image", IMG, "--out", "{out}",
                               "--threshold", "nan"]),
    ("heatmap unknown method", ["heatmap", "--image", IMG, "--out", "{out}", "--method", "nope"]),
    ("heatmap image folder", ["heatmap", "--image", "{dir}", "--out", "{out}"]),
    ("heatmap labels with built-in", ["heatmap", "--image", IMG, "--out", "{out}",
                                      "--labels", "{names}"]),
    # lime
    ("lime samples huge", ["lime", "--image", IMG, "--out", "{out}", "--samples", "1000000000"]),
    ("lime samples few", ["lime", "--image", IMG, "--out", "{out}", "--samples", "5"]),
    ("lime superpixels one", ["lime", "--image", IMG, "--out", "{out}", "--superpixels", "1"]),
    ("lime superpixels huge", ["lime", "--image", IMG, "--out", "{out}",
                               "--superpixels", "100000"]),
    ("lime compactness negative", ["lime", "--image", IMG, "--out", "{out}",
                                   "--compactness", "-1"]),
    ("lime compactness infinite", ["lime", "--image", IMG, "--out", "{out}",
                                   "--compactness", "inf"]),
    ("lime features zero", ["lime", "--image", IMG, "--out", "{out}", "--features", "0"]),
    ("lime scale huge", ["lime", "--image", IMG, "--out", "{out}", "--scale", "100"]),
    ("lime seed negative", ["lime", "--image", IMG, "--out", "{out}", "--seed", "-1"]),
    ("lime unknown hide", ["lime", "--image", IMG, "--out", "{out}", "--hide", "purple"]),
    ("lime out under a file", ["lime", "--image", IMG, "--out", "{file}/sub"]),
    ("lime labels latin1", ["lime", "--model", "{m}", "--labels", "{latin1}", "--image", IMG,
                            "--out", "{out}"]),
    # compare, sanity, evaluate
    ("compare unknown method", ["compare", "--image", IMG, "--out", "{out}", "--methods", "nope"]),
    ("compare opacity 5", ["compare", "--image", IMG, "--out", "{out}", "--opacity", "5"]),
    ("compare unknown baseline", ["compare", "--image", IMG, "--out", "{out}",
                                  "--baseline", "nope"]),
    ("compare out under a file", ["compare", "--image", IMG, "--out", "{file}/sub"]),
    ("compare image folder", ["compare", "--image", "{dir}", "--out", "{out}"]),
    ("sanity threshold 5", ["sanity", "--image", IMG, "--out", "{out}", "--threshold", "5"]),
    ("sanity unknown method", ["sanity", "--image", IMG, "--out", "{out}", "--methods", "nope"]),
    ("sanity unknown metric", ["sanity", "--image", IMG, "--out", "{out}", "--metric", "nope"]),
    ("sanity out under a file", ["sanity", "--image", IMG, "--out", "{file}/sub"]),
    ("evaluate unknown method", ["evaluate", "--methods", "nope"]),
    ("evaluate labels with built-in", ["evaluate", "--labels", "{names}"]),
    ("evaluate scenes word", ["evaluate", "--scenes", "many"]),
]


@dataclass
class Outcome:
    code: int | None
    stderr: str
    seconds: float
    peak_kb: int
    killed: str | None


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_watched(args: list[str], cwd: Path) -> Outcome:
    """Run ``python -m viz_core *args``; kill it above 1 GB or after 30 s."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the command must quiet TensorFlow by itself
    start = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "viz_core", *args], cwd=cwd, env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    peak, killed = 0, None
    import threading

    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(child.stderr.read()), daemon=True)
    reader.start()
    while child.poll() is None:
        peak = max(peak, _rss_kb(child.pid))
        if peak > RSS_LIMIT_KB:
            killed = f"resident memory {peak / 1024:.0f} MB"
        elif time.monotonic() - start > TIME_LIMIT:
            killed = f"still running after {TIME_LIMIT:.0f} s"
        if killed:
            child.kill()
            break
        time.sleep(0.05)
    child.wait()
    reader.join(timeout=5)
    return Outcome(child.returncode, b"".join(chunks).decode("utf-8", "replace"),
                   time.monotonic() - start, peak, killed)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    shutil.copy(ROOT / "assets" / "demo" / "shapes_cnn.keras", folder / "m.keras")
    shutil.copy(ROOT / "assets" / "samples" / "circle.png", folder / "circle.png")
    (folder / "labels_dir").mkdir()
    (folder / "latin1.txt").write_bytes("circle\nsquare\ntriangle\nétoile\n".encode("latin-1"))
    (folder / "names.txt").write_text("circle\nsquare\ntriangle\nstar\n", encoding="utf-8")
    (folder / "binary.txt").write_bytes(b"circle\x00\x00square\n")
    (folder / "huge.txt").write_bytes(b"x" * (2 * 1024 * 1024))
    (folder / "a_file").write_text("not a folder")
    (folder / "notes.png").write_text("<html>not an image</html>")
    names = {"m": "m.keras", "img": "circle.png", "dir": "labels_dir", "latin1": "latin1.txt",
             "names": "names.txt", "binary": "binary.txt", "huge": "huge.txt",
             "file": "a_file", "text": "notes.png", "out": "out"}
    return folder, {key: str(folder / name) for key, name in names.items()}


@pytest.fixture(scope="module")
def outcomes(files):
    """Every case, run two at a time (the machine's two cores), keyed by id."""
    folder, names = files
    argv = {case_id: [word.format(**names) for word in args] for case_id, args in CASES}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {case_id: pool.submit(run_watched, args, folder)
                   for case_id, args in argv.items()}
        return {case_id: future.result() for case_id, future in futures.items()}


def test_the_table_is_large_and_covers_every_command():
    assert len(CASES) >= 60 and len({case_id for case_id, _ in CASES}) == len(CASES)
    commands = {args[0] for _, args in CASES if args}
    assert {"models", "info", "predict", "activations", "filters", "heatmap", "lime",
            "compare", "sanity", "evaluate"} <= commands


@pytest.mark.slow  # starts a python -m viz_core process per case
@pytest.mark.parametrize("case_id", [case_id for case_id, _ in CASES])
def test_hostile_arguments_end_with_one_error_line(outcomes, case_id):
    result = outcomes[case_id]
    assert result.killed is None, f"{case_id}: killed, {result.killed}"
    lines = result.stderr.splitlines()
    assert result.code == 2, f"exit status {result.code}; stderr:\n{result.stderr[-2000:]}"
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.seconds < TIME_LIMIT and result.peak_kb < RSS_LIMIT_KB


@pytest.mark.slow  # starts a python -m viz_core process per case
def test_messages_name_the_problem(outcomes, files):
    folder, names = files
    said = {case_id: result.stderr for case_id, result in outcomes.items()}
    assert "from 1 to 100000; got -3" in said["predict top negative"]
    assert "line 4" in said["predict labels latin1"] and "UTF-8" in said["predict labels latin1"]
    assert "is a folder" in said["predict labels folder"]
    assert f"{names['file']!r} is a file" in said["activations out under a file"]
    assert "--labels applies only to a model file" in said["predict labels with built-in"]
    assert "--preprocess applies only to a model file" in \
        said["predict default preprocess given with built-in"]
    assert "from 10 to 20000; got 1000000000" in said["lime samples huge"]
    assert not (folder / "a_file" / "sub").exists() and not (folder / "out").exists()
