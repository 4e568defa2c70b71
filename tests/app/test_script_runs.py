"""Streamlit's end-of-run clean-up must not reset Keras in this app (ui.script_runs)."""
from __future__ import annotations

import sys
import types

import keras
import pytest
from streamlit.runtime.scriptrunner import script_runner
from streamlit.testing.v1 import AppTest

from ui.script_runs import HOOK, STREAMLIT_HOOK, keep_keras_state
from viz_core.models.catalog import DEMO_MODEL_FILE


@pytest.fixture
def resets(monkeypatch) -> list[bool]:
    """Every call of ``keras.backend.clear_session`` (as Streamlit makes it), recorded."""
    calls: list[bool] = []
    monkeypatch.setattr(keras.backend, "clear_session",
                        lambda free_memory=True: calls.append(free_memory))
    return calls


def test_streamlit_as_installed_resets_keras_after_a_run(resets):
    # The premise, on this Streamlit: its own hook clears the Keras session (with a full
    # garbage collection) once per script run. If this fails, Streamlit changed and
    # ui.script_runs may be unneeded.
    stock = getattr(script_runner, STREAMLIT_HOOK, getattr(script_runner, HOOK))
    stock()
    assert resets == [True]


@pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not built")
def test_the_app_runs_pages_without_resetting_keras(resets):
    at = AppTest.from_file("../../app.py", default_timeout=180)
    at.run()
    at.switch_page("pages/heatmaps.py").run()
    assert not at.exception
    assert at.title[0].value == "Class heatmaps"
    assert resets == []  # two runs, no reset (Streamlit's hook would have made two)


def test_the_replacement_still_closes_matplotlib_figures(monkeypatch, resets):
    closed: list[str] = []
    pyplot = types.SimpleNamespace(close=closed.append)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", pyplot)
    assert keep_keras_state() and keep_keras_state()  # idempotent
    getattr(script_runner, HOOK)()
    assert closed == ["all"]
    assert resets == []



class _Node:
    """Something in a reference cycle, weakly referable."""


def test_new_imports_are_frozen_once_and_the_idle_trim_collects_them(monkeypatch):
    import gc
    import weakref

    from ui import script_runs
    from ui.idle import release_memory

    monkeypatch.setattr(script_runs._Tidy, "modules", 0)
    monkeypatch.setattr(script_runs._Tidy, "collected", float("-inf"))
    before = gc.get_freeze_count()
    node = _Node()
    node.me = node  # a cycle: only the collector frees it
    alive = weakref.ref(node)
    try:
        assert script_runs.tidy_after_run(now=1000.0) == "froze"
        frozen = gc.get_freeze_count()
        assert frozen > before + 100_000  # the imports' objects (TensorFlow, Keras, Streamlit)
        # nothing imported since: no new freeze, and no collection before COLLECT_EVERY_S
        assert script_runs.tidy_after_run(now=1000.0 + script_runs.COLLECT_EVERY_S / 2) \
            == "skipped"
        # nothing new frozen (frozen objects other threads drop may still go: never more)
        assert gc.get_freeze_count() <= frozen
        del node
        gc.collect()
        assert alive() is not None  # frozen: a collection after a run skips it
        release_memory()  # the idle trim
        assert alive() is None  # collected
        assert gc.get_freeze_count() > 100_000  # and the survivors frozen again
    finally:
        gc.unfreeze()


def test_a_run_collects_garbage_at_most_once_every_few_seconds(monkeypatch):
    import gc
    import weakref

    from ui import script_runs

    monkeypatch.setattr(script_runs._Tidy, "modules", len(sys.modules) + 10**6)  # no freeze
    monkeypatch.setattr(script_runs._Tidy, "collected", 500.0)
    every = script_runs.COLLECT_EVERY_S
    kept = []
    for moment in (500.0 + every * 0.5, 500.0 + every * 0.99, 500.0 + every, 500.0 + every * 1.5):
        node = _Node()
        node.me = node
        alive = weakref.ref(node)
        del node
        gc.disable()  # only tidy_after_run may collect here
        try:
            outcome = script_runs.tidy_after_run(now=moment)
        finally:
            gc.enable()
        kept.append((outcome, alive() is not None))
        gc.collect()
    assert kept == [("skipped", True), ("skipped", True), ("collected", False),
                    ("skipped", True)]


def test_the_server_config_leaves_collection_to_the_hook():
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).parents[2] / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
