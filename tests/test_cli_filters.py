"""``python -m viz_core filters``: files, JSON, the disk cache across processes, bad input.

Most checks call :func:`viz_core.cli.main` in this process (what ``python -m viz_core`` runs);
one subprocess proves that a second run, in a new process, is answered from the disk cache.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import nested_cnn, tiny_cnn
from viz_core.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cache):
    """A new process, as a user would run it."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT),
               CNN_VIZ_CACHE=str(cache))
    return subprocess.run([sys.executable, "-m", "viz_core", "filters", *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def run_main(capsys, monkeypatch, *args, cache):
    monkeypatch.setenv("CNN_VIZ_CACHE", str(cache))
    code = main(["filters", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_filters")
    tiny_cnn(size=32, classes=3, seed=2).save(folder / "tiny.keras")
    nested_cnn(size=32, seed=2).save(folder / "nested.keras")
    return folder


def test_grid_and_one_png_per_filter_with_json(files, capsys, monkeypatch):
    out = files / "out"
    code, stdout, err = run_main(capsys, monkeypatch, "--model", str(files / "tiny.keras"),
                                 "--layer", "conv_b", "--filters", "1:5", "--size", "40",
                                 "--out", str(out), "--json", cache=files / "cache")
    assert code == 0, err
    payload = json.loads(stdout)
    assert payload["layer"] == "conv_b" and payload["method"] == "fast"
    assert [f["index"] for f in payload["filters"]] == [1, 2, 3, 4]
    grid = np.asarray(Image.open(payload["png"]))
    assert grid.shape == (4 + 1 * 44, 4 + 4 * 44, 3)  # one row of four 40 px tiles, 4 px gaps
    first = payload["filters"][0]
    pattern = np.asarray(Image.open(first["png"]))
    assert pattern.shape == (40, 40, 3) and Path(first["png"]).name == "conv_b_fast_filter_001.png"
    assert np.array_equal(grid[4:44, 4:44], pattern)  # the grid shows the same picture
    assert isinstance(first["activation"], float) and first["dead"] in (True, False)
    assert payload["from_cache"] is False


@pytest.mark.slow  # a second process, importing TensorFlow again
def test_a_second_process_is_answered_from_the_disk_cache(files, capsys, monkeypatch, tmp_path):
    args = ("--model", str(files / "tiny.keras"), "--layer", "conv_b", "--filters", "1:5",
            "--size", "40", "--out", str(tmp_path / "out"), "--json")
    code, stdout, err = run_main(capsys, monkeypatch, *args, cache=tmp_path / "cache")
    assert code == 0, err
    payload = json.loads(stdout)
    assert payload["from_cache"] is False

    again = run_cli(*args, cache=tmp_path / "cache")
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert second["from_cache"] is True
    assert [f["activation"] for f in second["filters"]] == [f["activation"]
                                                           for f in payload["filters"]]


def test_classic_on_a_nested_layer(files, capsys, monkeypatch):
    code, stdout, err = run_main(capsys, monkeypatch, "--model", str(files / "nested.keras"),
                                 "--layer", "base/conv_a", "--method", "classic", "--steps", "2",
                                 "--filters", "0,3", "--size", "24", "--out",
                                 str(files / "nested"), "--json", cache=files / "cache")
    assert code == 0, err
    payload = json.loads(stdout)
    assert payload["method"] == "classic" and payload["steps"] == 2
    assert [Path(f["png"]).name for f in payload["filters"]] == [
        "base__conv_a_classic_filter_000.png", "base__conv_a_classic_filter_003.png"]


@pytest.mark.parametrize("args, message", [
    (("--layer", "conv_z"), "no layer called 'conv_z'"),
    (("--layer", "conv_a", "--filters", "0:9"), "Filter 4 does not exist"),
    (("--layer", "conv_a", "--filters", "x"), "cannot read the filters 'x'"),
    (("--layer", "conv_a", "--steps", "0"), "gradient-ascent steps must be"),
])
def test_bad_input_is_one_line_and_exit_2(files, capsys, monkeypatch, args, message):
    code, stdout, err = run_main(capsys, monkeypatch, "--model", str(files / "tiny.keras"),
                                 *args, "--out", str(files / "bad"), cache=files / "cache")
    assert code == 2 and stdout == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("method", ["fourier", "maco"])
def test_prior_methods_report_readability_in_json(files, capsys, monkeypatch, method):
    code, stdout, err = run_main(capsys, monkeypatch, "--model", str(files / "tiny.keras"),
                                 "--layer", "conv_b", "--method", method, "--steps", "3",
                                 "--filters", "0,2", "--size", "32", "--out",
                                 str(files / method), "--json", cache=files / "cache")
    assert code == 0, err
    payload = json.loads(stdout)
    assert payload["method"] == method and payload["steps"] == 3
    assert payload["transparency"] is (method == "maco")
    for row in payload["filters"]:
        assert isinstance(row["spectral_slope"], float) and -6 < row["spectral_slope"] < 2
        assert row["robustness"] is None or row["robustness"] >= 0
    picture = np.asarray(Image.open(payload["filters"][0]["png"]))
    assert picture.shape == ((32, 32, 4) if method == "maco" else (32, 32, 3))
    slopes = [row["spectral_slope"] for row in payload["filters"]]
    assert payload["summary"]["spectral_slope"] == pytest.approx(float(np.median(slopes)),
                                                                 rel=1e-3)


def test_readability_numbers_match_the_written_pngs(files, capsys, monkeypatch):
    from viz_core.metrics.readability import spectral_slope

    code, stdout, err = run_main(capsys, monkeypatch, "--model", str(files / "tiny.keras"),
                                 "--layer", "conv_a", "--filters", "0:2", "--size", "32",
                                 "--out", str(files / "numbers"), "--json",
                                 cache=files / "cache")
    assert code == 0, err
    for row in json.loads(stdout)["filters"]:
        pattern = np.asarray(Image.open(row["png"]))
        assert row["spectral_slope"] == pytest.approx(spectral_slope(pattern), rel=1e-3)
