"""Export bundles: the command written into a bundle, run, remakes its pictures bit for bit."""
from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import tiny_cnn
from viz_core.cli.bundle import bundle_command, export_bundle
from viz_core.models.catalog import DEMO_MODEL_FILE
from viz_core.errors import ParameterError
from viz_core.features.filters import default_layer, filter_patterns
from viz_core.inputs.intake import image_from_array
from viz_core.render import png_bytes
from viz_core.render.filter_grid import pattern_grid

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("bundle") / "tiny.keras"
    tiny_cnn(size=32, classes=3).save(path)
    return path


def scene() -> np.ndarray:
    img = np.full((48, 64, 3), 30, dtype=np.uint8)
    img[10:30, 20:44] = (220, 180, 40)
    return img


def rerun_bundle(data: bytes, folder: Path, **extra_env) -> dict[str, bytes]:
    """Unzip, delete the pictures, run command.txt there (``extra_env``: extra environment
    variables); return the pictures it wrote."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(folder)
    shutil.rmtree(folder / "pictures")
    line = (folder / "command.txt").read_text().strip()
    argv = shlex.split(line)
    assert argv[:3] == ["python", "-m", "viz_core"]
    # As a user runs it after the README's Quickstart: the project installed in the venv
    # (``pip install -e .``), no PYTHONPATH, from the unzipped folder.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", **extra_env)
    found = subprocess.run([sys.executable, "-c", "import viz_core; print(viz_core.__file__)"],
                           cwd=folder, env=env, capture_output=True, text=True, timeout=60)
    if found.returncode != 0:
        pytest.fail("viz_core is not installed in this Python: the README's Quickstart installs "
                    "the project (pip install -r requirements-dev.txt -e .)")
    assert Path(found.stdout.strip()).resolve().is_relative_to(ROOT)  # this checkout's code
    out = subprocess.run([sys.executable, *argv[1:]], cwd=folder, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted((folder / "pictures").rglob("*")) if p.is_file()}


@pytest.mark.slow  # runs the bundle's command in a new process (TensorFlow imported again)
@pytest.mark.parametrize(
    "command,options",
    [
        ("heatmap", ["--class", "1", "--class", "2", "--colormap", "magma", "--opacity", "0.65",
                     "--threshold", "0.1"]),
        ("activations", ["--layers", "conv_a,pool_a", "--cmap", "terrain", "--per-row", "2"]),
    ],
)
def test_bundle_command_reproduces_pictures_bit_for_bit(model_path, bench, tmp_path, command,
                                                        options):
    images = [image_from_array(scene(), "scene one"), image_from_array(scene()[::-1], "flip")]
    options = ["--model", str(model_path), "--preprocess", "unit", *options]
    data = export_bundle(command, options, images, {"page": command, "opacity": 0.65},
                         bench=bench)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        stored = {n: archive.read(n) for n in names if n.startswith("pictures/")}
        params = json.loads(archive.read("parameters.json"))
        line = archive.read("command.txt").decode().strip()
    assert {"command.txt", "parameters.json", "README.txt", "input/scene one.png",
            "input/flip.png"} <= set(names)
    assert params == {"page": command, "opacity": 0.65}
    assert line.endswith("--image 'input/scene one.png' --image input/flip.png --out pictures")
    pngs = [n for n in stored if n.endswith(".png")]
    assert len(pngs) == (4 if command == "heatmap" else 4)
    again = rerun_bundle(data, tmp_path / "unzipped")
    assert again.keys() == stored.keys()
    for name, content in stored.items():
        assert again[name] == content, name


@pytest.mark.slow  # runs the bundle's command in a new process (TensorFlow imported again)
@pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not built")
def test_filters_bundle_holds_the_patterns_shown_and_remakes_them_bit_for_bit(bench, tmp_path):
    model = bench.builtin_model("demo")
    layer = default_layer(model)
    # What the Filter patterns page computes (and shows) for filters 0:3, 3 steps, 64 px.
    shown = filter_patterns(model, layer, (0, 1, 2), method="fast", steps=3, size=64, seed=0,
                            disk=bench.disk)
    options = ["--model", "demo", "--layer", layer, "--filters", "0:3", "--method", "fast",
               "--steps", "3", "--size", "64", "--per-row", "2", "--seed", "0"]
    data = export_bundle("filters", options, [], {"page": "Filter patterns"}, bench=bench)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        stored = {n: archive.read(n) for n in names if n.startswith("pictures/")}
        line = archive.read("command.txt").decode().strip()
        readme = archive.read("README.txt").decode()
    assert line == f"python -m viz_core filters {shlex.join(options)} --out pictures"
    assert not any(n.startswith("input/") for n in names) and "input/" not in readme
    stem = f"pictures/{layer}_fast"
    assert sorted(stored) == [f"{stem}_filter_{k:03d}.png" for k in range(3)] + [
        f"{stem}_grid.png"]
    # The bundle was answered from the page's cache: its pictures are those on the page.
    grid = pattern_grid(shown.patterns, columns=2, dead=shown.dead)
    assert stored[f"{stem}_grid.png"] == png_bytes(grid.image)
    for k in range(3):
        assert stored[f"{stem}_filter_{k:03d}.png"] == png_bytes(shown.by_filter(k).pattern)
    # A fresh process with an empty disk cache ascends again (seeded) to the same bytes.
    again = rerun_bundle(data, tmp_path / "unzipped", CNN_VIZ_CACHE=str(tmp_path / "fresh"))
    assert (tmp_path / "fresh").is_dir()  # it computed, and cached there, rather than reused
    assert again.keys() == stored.keys()
    for name, content in stored.items():
        assert again[name] == content, name


def test_bundle_command_uses_relative_paths_and_unique_names():
    images = [image_from_array(scene(), "cat"), image_from_array(scene(), "cat")]
    argv = bundle_command("lime", ["--model", "demo"], images)
    assert argv == ["lime", "--model", "demo", "--image", "input/cat.png", "--image",
                    "input/cat_2.png", "--out", "pictures"]


@pytest.mark.slow  # runs the bundle's command in a new process (TensorFlow imported again)
def test_an_uploaded_model_travels_in_the_bundle_with_its_class_names(model_path, bench,
                                                                     tmp_path):
    model_bytes = model_path.read_bytes()
    files = {"model/model.keras": model_bytes, "model/labels.txt": b"red\ngreen\nblue\n"}
    options = ["--model", "model/model.keras", "--preprocess", "unit", "--labels",
               "model/labels.txt", "--class", "green"]
    data = export_bundle("heatmap", options, [image_from_array(scene(), "scene")],
                         {"page": "heatmap"}, bench=bench, files=files)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("model/model.keras") == model_bytes
        assert archive.read("model/labels.txt") == b"red\ngreen\nblue\n"
        stored = {n: archive.read(n) for n in archive.namelist() if n.startswith("pictures/")}
        line = archive.read("command.txt").decode().strip()
        assert "model/ holds the uploaded model" in archive.read("README.txt").decode()
    assert line.startswith("python -m viz_core heatmap --model model/model.keras --preprocess "
                           "unit --labels model/labels.txt --class green")
    # class "green" is index 1 of the given names: the overlay is named after it
    assert sorted(stored) == ["pictures/scene_gradcam_1.npy", "pictures/scene_gradcam_1.png"]
    again = rerun_bundle(data, tmp_path / "unzipped")
    assert again == stored


@pytest.mark.parametrize("name", ["../outside.keras", "/tmp/absolute.keras", ""])
def test_bundle_files_must_stay_inside_the_bundle(bench, name):
    with pytest.raises(ParameterError, match="relative path"):
        export_bundle("heatmap", ["--model", "demo"], [image_from_array(scene(), "s")], {},
                      bench=bench, files={name: b"x"})


# --- names that look like options, shell code or nothing are data ---------------------------

from tests.hostile_names import CLASS_NAMES, LAYER_NAMES, hostile_names_cnn, shown  # noqa: E402
from viz_core.cli.bundle import option_pairs  # noqa: E402


@pytest.fixture(scope="module")
def hostile_model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile") / "hostile.keras"
    hostile_names_cnn().save(path)
    return path


def test_option_values_are_taken_as_values_whatever_they_look_like():
    pairs = option_pairs("lime", ["--model", "demo", "--class", "-h", "--negative",
                                  "--class", "--out=/tmp/x", "--hide", ""])
    assert pairs == [("--model", "demo"), ("--class", "-h"), ("--negative", None),
                     ("--class", "--out=/tmp/x"), ("--hide", "")]
    argv = bundle_command("heatmap", ["--layer", "-h", "--class", "", "--class", "$(touch x)"],
                          [])
    assert argv == ["heatmap", "--layer=-h", "--class=", "--class", "$(touch x)", "--out",
                    "pictures"]
    # The shell gives the command back word for word.
    assert shlex.split(shlex.join(argv)) == argv


@pytest.mark.parametrize("options,message", [
    (["--help"], "asked for help"),
    (["--no-such-flag", "1"], "not an option"),
    (["--layer"], "needs a value"),
    (["--colormap", "no-such-map"], "could not be read: argument --colormap"),
    (["--opacity", "lots"], "could not be read: argument --opacity"),
])
def test_a_bad_export_command_raises_instead_of_ending_the_process(bench, options, message):
    with pytest.raises(ParameterError, match=message):
        export_bundle("heatmap", ["--model", "demo", *options],
                      [image_from_array(scene(), "s")], {}, bench=bench)


@pytest.mark.slow  # runs the bundle's command in a new process (TensorFlow imported again)
@pytest.mark.parametrize("layer", LAYER_NAMES)
def test_hostile_layer_and_class_names_export_and_reproduce(hostile_model_path, bench, tmp_path,
                                                            monkeypatch, layer):
    monkeypatch.chdir(tmp_path)  # a "$(touch x)" that ran would leave ./x here
    labels = "".join(f"{name}\n" for name in CLASS_NAMES).encode()
    files = {"model/model.keras": hostile_model_path.read_bytes(), "model/labels.txt": labels}
    options = ["--model", "model/model.keras", "--preprocess", "unit", "--labels",
               "model/labels.txt", "--layer", shown(layer), "--class", "-h", "--class",
               "--out=/tmp/x"]
    data = export_bundle("heatmap", options, [image_from_array(scene(), "-h")],
                         {"layer": layer}, bench=bench, files=files)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        stored = {n: archive.read(n) for n in archive.namelist() if n.startswith("pictures/")}
        line = archive.read("command.txt").decode().strip()
        assert archive.read("model/labels.txt") == labels
    argv = shlex.split(line)
    # Values that look like options are written --flag=value; the shell gives them back.
    assert argv[argv.index("--layer") + 1] == shown(layer)
    assert "--class=-h" in argv and "--class=--out=/tmp/x" in argv
    # Classes "-h" (0) and "--out=/tmp/x" (1): an overlay and a map each, named by index.
    assert sorted(stored) == ["pictures/-h_gradcam_0.npy", "pictures/-h_gradcam_0.png",
                              "pictures/-h_gradcam_1.npy", "pictures/-h_gradcam_1.png"]
    heat = np.load(io.BytesIO(stored["pictures/-h_gradcam_1.npy"]))
    assert heat.shape == (32, 32) and heat.dtype == np.float32 and heat.max() == 1.0
    again = rerun_bundle(data, tmp_path / "unzipped")
    assert again == stored
    assert not (tmp_path / "x").exists() and not (tmp_path / "unzipped" / "x").exists()
    assert not Path("/tmp/x").exists()


def test_two_exports_at_once_leave_the_servers_stdout_alone(model_path, bench):
    """Bundles write the command's report to a stream of their own: two at once in threads
    (two users of one server) neither swap ``sys.stdout`` nor mix their pictures."""
    import sys
    import threading

    before = sys.stdout
    results: dict[str, bytes] = {}

    def export(name: str, colormap: str) -> None:
        results[name] = export_bundle(
            "heatmap", ["--model", str(model_path), "--preprocess", "unit", "--colormap",
                        colormap], [image_from_array(scene(), name)], {"who": name},
            bench=bench)

    threads = [threading.Thread(target=export, args=args)
               for args in (("ann", "magma"), ("bob", "jet"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sys.stdout is before
    for name in ("ann", "bob"):
        with zipfile.ZipFile(io.BytesIO(results[name])) as archive:
            pictures = [n for n in archive.namelist() if n.startswith("pictures/")]
            assert json.loads(archive.read("parameters.json")) == {"who": name}
        assert pictures and all(n.startswith(f"pictures/{name}_") for n in pictures)
