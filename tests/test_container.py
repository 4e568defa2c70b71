"""The class server's container (issue 15, item 5), checked by reading the files (there is no
Docker here): the Dockerfile, compose.yaml and the README say the same commands; the memory
bounds compose.yaml sets are exactly the variables the code reads, and they are read."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import yaml

from tests.test_packaging import SOURCES  # what the wheel is built from
from viz_core.runtime import settings as settings_module
from viz_core.errors import ParameterError
from viz_core.runtime.settings import VARIABLES, Settings, read_settings
from viz_core.runtime.workbench import Workbench

ROOT = Path(__file__).resolve().parents[1]


def compose_service() -> dict:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    (service,) = compose["services"].values()
    return compose, service


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def dockerfile_instruction(text: str, name: str) -> str:
    """An instruction's text with its continuation lines joined."""
    joined = text.replace("\\\n", " ")
    (line,) = [ln for ln in joined.splitlines() if ln.startswith(name + " ")]
    return re.sub(r"\s+", " ", line[len(name) + 1:]).strip()


# -- settings ----------------------------------------------------------------------------------
def test_settings_are_read_from_the_environment():
    assert read_settings({}) == Settings()
    got = read_settings({"CNN_EXPLORER_CACHE_ENTRIES": "32", "CNN_EXPLORER_CACHE_MB": " 2_048 ",
                         "CNN_EXPLORER_MODELS": "5", "UNRELATED": "x"})
    assert got == Settings(cache_entries=32, cache_mb=2048, models=5)
    assert got.cache_bytes == 2048 * 2**20
    assert read_settings({"CNN_EXPLORER_MODELS": ""}) == Settings()  # blank = unset


@pytest.mark.parametrize("variable, value", [
    ("CNN_EXPLORER_CACHE_MB", "2G"), ("CNN_EXPLORER_CACHE_MB", "8"),
    ("CNN_EXPLORER_CACHE_ENTRIES", "0"), ("CNN_EXPLORER_MODELS", "-1"),
    ("CNN_EXPLORER_MODELS", "2.5"),
])
def test_a_bad_setting_names_the_variable_the_value_and_the_range(variable, value):
    with pytest.raises(ParameterError) as info:
        read_settings({variable: value})
    text = str(info.value)
    assert text.startswith(f"The setting {variable} (") and f"got {value!r}" in text
    assert "must be a whole number from " in text


def test_the_defaults_are_the_workbench_s_own():
    defaults = inspect.signature(Workbench).parameters
    assert Settings().models == defaults["max_models"].default
    assert Settings().cache_entries == defaults["max_result_entries"].default
    assert Settings().cache_bytes == defaults["max_result_bytes"].default


def test_the_dashboard_s_workbench_is_bounded_by_the_environment(monkeypatch, capsys):
    from ui.state import workbench

    monkeypatch.setenv("CNN_EXPLORER_CACHE_ENTRIES", "7")
    monkeypatch.setenv("CNN_EXPLORER_CACHE_MB", "96")
    monkeypatch.setenv("CNN_EXPLORER_MODELS", "2")
    workbench.clear()
    try:
        bench = workbench()
        assert bench.results.max_entries == 7
        assert bench.results.max_bytes == 96 * 2**20
        assert bench.models.max_entries == 2
        for i in range(9):  # the bound holds: the oldest results go
            bench.results.put(("r", i), i, size=1)
        assert len(bench.results) == 7 and ("r", 0) not in bench.results

        monkeypatch.setenv("CNN_EXPLORER_CACHE_MB", "lots")  # a bad value: log it, use defaults
        workbench.clear()
        bench = workbench()
        assert bench.results.max_bytes == Settings().cache_bytes
        assert bench.results.max_entries == Settings().cache_entries  # all defaults, not half
        assert "warning: The setting CNN_EXPLORER_CACHE_MB" in capsys.readouterr().err
    finally:
        workbench.clear()


def test_only_the_settings_module_reads_these_variables():
    """Every ``CNN_EXPLORER_*`` name in the code is one of :data:`VARIABLES`, and only
    ``viz_core/runtime/settings.py`` names them: one reader, so compose.yaml cannot drift from it."""
    named: dict[str, set[str]] = {}
    for path in [ROOT / "app.py", *(ROOT / "viz_core").rglob("*.py"), *(ROOT / "ui").rglob("*.py"),
                 *(ROOT / "pages").rglob("*.py")]:
        for name in re.findall(r"\bCNN_EXPLORER_[A-Z_]+\b", path.read_text(encoding="utf-8")):
            named.setdefault(name, set()).add(path.relative_to(ROOT).as_posix())
    assert set(named) == set(VARIABLES)
    assert all(files == {"viz_core/runtime/settings.py"} for files in named.values()), named
    assert set(VARIABLES) == {s.variable for s in settings_module.SETTINGS}


# -- compose.yaml ------------------------------------------------------------------------------
def test_compose_sets_exactly_the_variables_the_code_reads_with_its_defaults():
    _, service = compose_service()
    environment = service["environment"]
    assert set(environment) == set(VARIABLES)
    defaults = Settings()
    for setting in settings_module.SETTINGS:
        match = re.fullmatch(r"\$\{(\w+):-(\d+)\}", str(environment[setting.variable]))
        assert match and match[1] == setting.variable  # overridable from the shell or .env
        assert int(match[2]) == getattr(defaults, setting.field)
        assert read_settings({setting.variable: match[2]}) == defaults  # a valid value


def test_compose_runs_the_dockerfile_s_image_as_the_dockerfile_says():
    compose, service = compose_service()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert service["build"] == "." and service["image"] == "cnn-explorer"
    assert f"EXPOSE {service['ports'][0].split(':')[1]}" in dockerfile
    assert service["ports"] == ["8501:8501"]
    (volume,) = service["volumes"]
    name, mount = volume.split(":")
    assert name in compose["volumes"]  # a named volume, kept across rebuilds
    assert dockerfile_instruction(dockerfile, "VOLUME") == mount == "/data"
    assert "KERAS_HOME=/data/keras" in dockerfile and "CNN_VIZ_CACHE=/data/cache" in dockerfile
    # the same health check: command and timings
    health = dockerfile_instruction(dockerfile, "HEALTHCHECK")
    options, command = health.split(" CMD ", 1)
    check = service["healthcheck"]
    assert check["test"][0] == "CMD"
    assert check["test"][1:3] == command.split(" ", 2)[:2]
    assert check["test"][3] == command.split(" ", 2)[2].strip('"')
    flags = dict(re.findall(r"--([\w-]+)=(\S+)", options))
    assert (check["interval"], check["timeout"], check["start_period"], str(check["retries"])) \
        == (flags["interval"], flags["timeout"], flags["start-period"], flags["retries"])


# -- Dockerfile and README ---------------------------------------------------------------------
def test_the_dockerfile_installs_the_package_and_starts_the_app():
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "RUN pip install ." in text and "EXPOSE 8501" in text and "USER explorer" in text
    assert "/_stcore/health" in text
    assert 'CMD ["cnn-explorer", "app", "--address", "0.0.0.0", "--port", "8501"]' in text
    copied = {word for line in text.splitlines() if line.startswith("COPY")
              for word in line.split()[1:-1]}
    assert set(SOURCES) <= copied  # the image gets what the wheel is built from


def test_the_readme_s_commands_are_the_files_own():
    """Each ``docker`` command in the README's class-server section is written in the
    Dockerfile's or compose.yaml's header, and each of theirs is in the README."""
    section = readme_section("Class server (Docker)")
    readme = {line.strip() for line in section.splitlines() if line.startswith("docker ")}
    files = {line.lstrip("# ").strip()
             for name in ("Dockerfile", "compose.yaml")
             for line in (ROOT / name).read_text().splitlines()
             if line.lstrip("# ").startswith("docker ")}
    files = {re.sub(r"\s{2,}.*$", "", line) for line in files}  # drop trailing remarks
    assert readme == {"docker build -t cnn-explorer .",
                      "docker run -p 8501:8501 -v cnn-data:/data cnn-explorer",
                      "docker compose up -d --build"}
    assert readme <= files
    assert files - readme == {"docker compose logs -f"}  # a remark for the admin, not a setup step
    # the README's table of settings: the variables the code reads, with its defaults
    rows = re.findall(r"^\| `(CNN_EXPLORER_\w+)` \|.*\| (\d+) \|$", section, flags=re.M)
    assert {name: int(default) for name, default in rows} == {
        s.variable: getattr(Settings(), s.field) for s in settings_module.SETTINGS}
