"""The project as a package (issue 15): ``pip install .`` gives ``cnn-explorer`` and the app.

Offline and without touching the checkout: the sources are copied to a temporary folder, a
wheel is built there with the virtual environment's own setuptools (``--no-build-isolation``,
so nothing is downloaded), and installed with ``pip install --no-deps --target`` (the
dependencies are the environment's). The installed copy then runs from another folder.
The container's files (Dockerfile, compose.yaml) are read in ``tests/test_container.py``.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "requirements.txt", "README.md", "LICENSE", "app.py", ".streamlit",
           "viz_core", "ui", "pages", "assets")
pytestmark = pytest.mark.slow


def files_under(base: Path, folder: str) -> list[Path]:
    return sorted(p.relative_to(base) for p in (base / folder).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("package")
    source = folder / "src"
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(path, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(folder / "dist"), str(source)],
                   check=True, capture_output=True, timeout=300)
    (built,) = (folder / "dist").glob("cnn_explorer-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                    "--target", str(site), str(wheel)], check=True, capture_output=True,
                   timeout=300)
    return site


def installed_env(site: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(site))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return env


def test_every_subpackage_of_the_backend_is_listed_for_the_wheel():
    """setuptools packages only what pyproject.toml lists: a new subpackage (a folder of
    viz_core with an ``__init__.py``) must be named there, or the wheel silently lacks it."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "viz_core").rglob("__init__.py") if "__pycache__" not in p.parts}
    assert {"viz_core", "viz_core.models", "viz_core.render"} <= found
    assert found - listed == set()


def test_the_wheel_holds_the_backend_the_app_and_the_assets(wheel):
    source = wheel.parent.parent / "src"  # the copy the wheel was built from
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        meta = {Path(n).name: archive.read(n).decode() for n in names if ".dist-info/" in n}
    expected = {p.as_posix() for p in files_under(source, "viz_core") if p.suffix == ".py"}
    expected |= {f"viz_core/{p.as_posix()}" for p in files_under(source, "assets")}
    expected |= {f"cnn_explorer/{p.as_posix()}" for folder in ("pages", "ui")
                 for p in files_under(source, folder) if p.suffix == ".py"}
    expected |= {"cnn_explorer/app.py", "cnn_explorer/.streamlit/config.toml"}
    assert expected - names == set()
    assert not any(n.startswith(("tests/", "bench/", "ui/", "pages/", "app.py", "assets/"))
                   for n in names)
    assert "cnn-explorer = viz_core.cli:main" in meta["entry_points.txt"]
    requirements = [line.strip() for line in (source / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    assert [line[len("Requires-Dist: "):] for line in meta["METADATA"].splitlines()
            if line.startswith("Requires-Dist: ") and "extra ==" not in line] == requirements
    assert "MIT License" in meta["LICENSE"]


def test_the_installed_command_runs_from_any_folder(installed, tmp_path):
    command = installed / "bin" / "cnn-explorer"
    env = installed_env(installed)
    where = subprocess.run([sys.executable, "-c", "import viz_core; print(viz_core.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, check=True)
    assert Path(where.stdout.strip()).is_relative_to(installed)  # not the checkout's copy

    image = tmp_path / "star.png"
    shutil.copy(ROOT / "assets" / "samples" / "star.png", image)
    out = subprocess.run([str(command), "predict", "--image", "star.png", "--top", "1", "--json"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert '"label": "star"' in out.stdout  # the demo model came from the installed assets/
    found = subprocess.run([sys.executable, "-c", "from viz_core.paths import ASSETS; print(ASSETS)"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, check=True)
    assert Path(found.stdout.strip()) == installed / "viz_core" / "assets"

    out = subprocess.run([str(command), "app", "--dry-run", "--port", "8600"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    app = installed / "cnn_explorer" / "app.py"
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert f"streamlit run {app}" in out.stdout and "--server.port=8600" in out.stdout
    assert f"--server.maxUploadSize={config['server']['maxUploadSize']}" in out.stdout
    assert "--server.headless=true" in out.stdout


def test_the_installed_app_serves(installed, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(installed / "bin" / "cnn-explorer"), "app", "--port",
                               str(port), "--address", "127.0.0.1"], cwd=tmp_path,
                              env=installed_env(installed), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline, health = time.monotonic() + 90, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                            timeout=2) as answer:
                    health = answer.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert health == "ok"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def test_an_editable_install_points_at_the_sources(wheel, tmp_path):
    """``pip install -e .``: a fresh venv (seeing this environment's packages through a .pth
    file, so nothing is downloaded) runs the command and finds the app in the source tree."""
    source = wheel.parent.parent / "src"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "zz_outer_environment.pth").write_text(
        "\n".join(p for p in sys.path if p.endswith("site-packages")) + "\n")
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", "-e", str(source)],
                   check=True, capture_output=True, timeout=300)
    env = installed_env(tmp_path)  # PYTHONPATH set to a folder without viz_core
    out = subprocess.run([str(venv / "bin" / "cnn-explorer"), "app", "--dry-run"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"streamlit run {source / 'app.py'}" in out.stdout
