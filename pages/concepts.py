"""Concepts: what the model found in a class's images, not only where it looked. Two tabs:
CRAFT (concepts found in the class's own images) and TCAV (a concept the user brings)."""
import streamlit as st

from ui.concepts_craft import NOTE, craft_tab
from ui.concepts_tcav import tcav_tab
from ui.notes import show as show_note
from ui.page import page_setup

page = page_setup(
    "Concepts",
    # one line: the first concept's crops start on a 1280x720 projector's first screen
    "What does the model see in a class's images? CRAFT finds concepts; TCAV tests yours.",
    needs="model",
)
show_note(NOTE, page.note)
# keyed: the open tab survives the rerun a finished job makes (else it falls back to CRAFT)
craft, tcav = st.tabs(["CRAFT", "TCAV"], key="concepts_tab", on_change="rerun")
with craft:
    craft_tab(page)
with tcav:
    tcav_tab(page)
