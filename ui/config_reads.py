"""Streamlit's config reads without its config lock, so a class's page runs do not queue on it.

Every message a page sends (``forward_msg_cache.populate_hash_if_needed``) and every widget it
draws (``save_for_app_testing``) read a config option through ``streamlit.config.get_option``,
which takes the module's ``RLock`` for each read: a few hundred acquisitions per page visit.
Python's lock is taken with the GIL released, so under load the thread that gets the lock then
waits for the GIL while holding it, and every other session's run that reads an option queues
behind it (a lock convoy). On the classroom bench (25 students, 5 heavy jobs; py-spy with idle
frames) the Feature maps page's runs spent 31% of their time waiting there, more than in any
computation.

The options dict is only replaced, not taken apart, when a config file is parsed again, and
Streamlit's own ``get_config_options`` already reads it without the lock once parsed (its
maintainers asked for the same fast path in streamlit/streamlit#2860). :func:`read_without_lock`
installs a ``get_option`` that reads the parsed options directly and falls back to Streamlit's
own (with the lock) before the first parse and for unknown keys. A read during a re-parse of a
``config.toml`` edited while the server runs may see that option's default for that moment; the
server's own settings (address, port, limits) are read once at start.

Idempotent; a ``get_option`` already replaced by someone else (AppTest's config overrides) is
left alone; if a later Streamlit no longer has the names this relies on, nothing is patched and
a warning is logged.
"""
from __future__ import annotations

import logging
from typing import Any

LOG = logging.getLogger("cnn_explorer")
_MARK = "_cnn_explorer_lock_free"


def read_without_lock() -> bool:
    """Replace ``streamlit.config.get_option`` with a lock-free read of the parsed options.

    Returns
    -------
    bool
        Whether the lock-free read is in place (now or from an earlier call); False when
        ``get_option`` is overridden by someone else, such as AppTest.
    """
    from streamlit import config

    locked = config.get_option
    if getattr(locked, _MARK, False):
        return True
    if getattr(locked, "__module__", None) != config.__name__:
        return False  # overridden for now (AppTest's patch_config_options): leave it be
    if not hasattr(config, "_config_options"):
        LOG.warning("streamlit.config has no _config_options: config reads keep their lock")
        return False

    def get_option(key: str) -> Any:
        options = config._config_options  # one reference: a re-parse replaces the dict
        option = options.get(key) if options else None
        if option is None:  # not parsed yet, or an unknown key: Streamlit's own read and error
            return locked(key)
        return option.value

    get_option.__doc__ = locked.__doc__
    setattr(get_option, _MARK, True)
    get_option.__wrapped__ = locked  # type: ignore[attr-defined]
    config.get_option = get_option
    return True
