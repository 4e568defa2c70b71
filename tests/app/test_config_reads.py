"""Streamlit's config reads skip its config lock in this app (ui.config_reads)."""
from __future__ import annotations

import threading

import pytest
from streamlit import config

from ui.config_reads import read_without_lock

KEY = "global.minCachedMessageSize"  # read for every message a page sends


@pytest.fixture
def lock_free(monkeypatch):
    """The lock-free read installed for one test (Streamlit's own put back after)."""
    monkeypatch.setattr(config, "get_option", config.get_option)
    config.get_config_options()  # parsed, as in a running server
    assert read_without_lock() and read_without_lock()  # idempotent
    return config.get_option


def _read_while_the_lock_is_held(key: str) -> list:
    """``config.get_option(key)`` from a thread while another thread holds the config lock:
    what it returned within 2 s (nothing, if it waited for the lock)."""
    got, holding, done = [], threading.Event(), threading.Event()

    def hold() -> None:
        with config._config_lock:
            holding.set()
            done.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    reader = threading.Thread(target=lambda: got.append(config.get_option(key)), daemon=True)
    reader.start()
    reader.join(2)
    within = list(got)
    done.set()
    holder.join()
    reader.join(5)
    return within


def test_streamlit_as_installed_waits_for_its_lock():
    # The premise, on this Streamlit: a read waits while another thread holds the lock.
    config.get_config_options()
    assert _read_while_the_lock_is_held(KEY) == []


def test_reads_do_not_wait_for_the_lock_and_give_the_parsed_value(lock_free):
    expected = lock_free.__wrapped__(KEY)  # Streamlit's own read
    assert expected > 0  # 10 kB here (a float in Streamlit 1.67)
    assert _read_while_the_lock_is_held(KEY) == [expected]


def test_a_set_option_is_read_back_and_unknown_keys_still_fail(lock_free, monkeypatch):
    before = lock_free(KEY)
    try:
        config.set_option(KEY, before + 123)
        assert config.get_option(KEY) == before + 123
    finally:
        config.set_option(KEY, before)
    assert config.get_option(KEY) == before
    with pytest.raises(RuntimeError, match='Config key "global.noSuchOption" not defined'):
        config.get_option("global.noSuchOption")


def test_an_override_such_as_apptests_is_left_alone(monkeypatch):
    from streamlit.testing.v1.util import patch_config_options

    monkeypatch.setattr(config, "get_option", config.get_option)
    with patch_config_options({"global.appTest": True}):
        overridden = config.get_option
        assert not read_without_lock()
        assert config.get_option is overridden
        assert config.get_option("global.appTest") is True
