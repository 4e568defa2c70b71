"""Fixtures for the browser tests: the app served on a free localhost port, Debian's Chromium.

Without Chromium (``/usr/bin/chromium`` or ``chromium`` on the PATH) or Playwright for Python
these tests are skipped with the reason, except under CI (``CI=true``), where a missing
browser fails the run. Playwright never downloads a browser here: it drives the system's.
Screenshots and the server's log go to ``artifacts/e2e/`` (ignored by git).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]
SERVER_START_SECONDS = 120
IDLE_SECONDS = 180  # one script run on 2 shared cores, the first one importing TensorFlow


def find_chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def missing_requirement() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -r requirements-dev.txt)"
    if find_chromium() is None:
        return ("Chromium is not installed (apt-get install chromium); the browser tests need "
                "/usr/bin/chromium")
    return None


@pytest.fixture(scope="session")
def e2e_ready():
    """Skip (or, under CI, fail) when the browser tests cannot run here."""
    reason = missing_requirement()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        # Under CI a missing browser is a broken setup, not a reason to skip.
        pytest.fail(f"CI=true and the browser tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except OSError:
        return False


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@contextlib.contextmanager
def running_app(artifacts: Path, cache_dir: Path, log_name: str):
    """``streamlit run app.py`` on a free localhost port while the block runs; gives its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CNN_VIZ_CACHE=str(cache_dir))
    log = open(artifacts / log_name, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not _healthy(url):
            if process.poll() is not None:
                pytest.fail(f"streamlit exited with status {process.returncode}; see "
                            f"{artifacts / log_name}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer on {url} within "
                            f"{SERVER_START_SECONDS} s", pytrace=False)
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)
        log.close()


@pytest.fixture(scope="session")
def server(e2e_ready, artifacts, tmp_path_factory):
    """The app, shared by the browser tests; yields its base URL."""
    with running_app(artifacts, tmp_path_factory.mktemp("viz_cache"), "server.log") as url:
        yield url


@pytest.fixture
def fresh_server(e2e_ready, artifacts, tmp_path):
    """The app just started, with no request served yet; yields its base URL."""
    with running_app(artifacts, tmp_path / "viz_cache", "fresh_server.log") as url:
        yield url


@pytest.fixture(scope="session")
def browser(e2e_ready):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=find_chromium(),
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, artifacts, request):
    """A fresh browser session (its own Streamlit session); a screenshot is kept at the end."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(IDLE_SECONDS * 1000)
    yield page
    try:
        page.screenshot(path=str(artifacts / f"{request.node.name}.png"), full_page=True)
    finally:
        context.close()
