"""From a channel (Feature maps, Filter patterns) to its unit's card in the Neuron atlas.

The card is named by the atlas's own link keys: ``atlas_layer`` (the layer's path) and
``atlas_unit`` (the channel), as in a shared link (``atlas?model=demo&atlas_layer=conv2d_3&
atlas_unit=7``). Within a session the button sets them and switches page, so the session's
model and uploads stay; :func:`unit_card_url` is the same place as a link.
"""
from __future__ import annotations

from typing import Mapping
from urllib.parse import urlencode

import streamlit as st

ATLAS_PAGE = "pages/atlas.py"
ATLAS_PATH = "atlas"  # the page's URL path (st.navigation names it after the file)
LAYER_KEY, UNIT_KEY, SOURCE_KEY = "atlas_layer", "atlas_unit", "atlas_source"
# The shortcut scenes go with the shortcut demo model on the atlas page: another model's layer
# is not there, so a card asked from another page is built over the shapes scenes.
OWN_MODEL_SOURCES = ("shortcut",)


def card_settings(layer: str, channel: int, source: str | None = None) -> dict[str, object]:
    """The atlas page's settings that open ``channel``'s card of ``layer``: the session values
    to set, given the atlas's image ``source`` the session has now (None: none yet)."""
    settings: dict[str, object] = {LAYER_KEY: str(layer), UNIT_KEY: int(channel)}
    if source in OWN_MODEL_SOURCES:
        settings[SOURCE_KEY] = "shapes"
    return settings


def card_query(layer: str, channel: int) -> dict[str, str]:
    """The card's query parameters, as text."""
    return {LAYER_KEY: str(layer), UNIT_KEY: str(int(channel))}


def unit_card_url(layer: str, channel: int, *, base: str = "",
                  extra: Mapping[str, str] | None = None) -> str:
    """The link that opens ``channel``'s card of ``layer`` in a new session.

    Parameters
    ----------
    layer : str
        A layer path (``"base/conv_b"`` inside a nested model; quoted in the link).
    channel : int
    base : str
        The app's address (``"http://host:8501/"``); empty gives a link relative to the app.
    extra : mapping, optional
        More parameters first, e.g. the sidebar's ``{"model": "demo"}``.

    Returns
    -------
    str
        ``f"{base}atlas?model=demo&atlas_layer=...&atlas_unit=7"``.
    """
    params = {**dict(extra or {}), **card_query(layer, channel)}
    return f"{base}{ATLAS_PATH}?{urlencode(params)}"


def unit_card_button(layer: str, channel: int, *, key: str, where=st,
                     label: str | None = None) -> None:
    """A button that opens the unit's card in the Neuron atlas (same tab, same session).

    ``key`` ends in ``_go`` (a button, not a setting kept in links), e.g. ``"fm_atlas_go"``.
    """
    if where.button(label or f"Unit {int(channel)} in the Neuron atlas", key=key,
                    icon=":material/neurology:",
                    help="The dataset images that excite this unit most and least, and the "
                    "class it prefers (built over sample scenes, or your ZIP)."):
        st.session_state.update(card_settings(layer, channel, st.session_state.get(SOURCE_KEY)))
        st.switch_page(ATLAS_PAGE, query_params=card_query(layer, channel))
