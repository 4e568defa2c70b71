"""User-controlled strings (layer, class, file names) shown as text, never as Markdown or HTML.

Streamlit renders Markdown in ``st.markdown``, ``st.caption``, ``st.write`` of a string,
headers, alerts, widget labels and help, ``st.radio`` options, tabs and expanders: a layer
called ``![px](px_layer.png)`` would make the browser fetch ``/px_layer.png`` and a class
called ``**x**`` would be bold. :func:`literal` escapes such a name so it is shown as typed.
Option lists of selectboxes and multiselects are plain text already and need no escaping.
"""
from __future__ import annotations

import html
import re

# CommonMark lets a backslash escape any ASCII punctuation. Escaped: what can start markup
# anywhere (emphasis, code, links and images, HTML, strikethrough, "$math$"); ":" and "&" only
# before a letter (Streamlit's ":red[...]", ":material/icon:", ":emoji:"; "&lt;" entities);
# "_" only where it can open or close emphasis (not inside a word: "block5_conv3" stays as it
# is); block markers ("# ", "1. ", "- ") only at the start. Text is made one line, so no table.
_ANYWHERE = re.compile(r"([\\`*\[\]<>~$]|[:&](?=[A-Za-z#]))")
_EMPHASIS_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_BLOCK_START = re.compile(r"^(\d+)([.)])|^([#=+\-])")


def literal(text: object) -> str:
    r"""``text`` escaped so Streamlit's Markdown shows it exactly, on one line.

    >>> print(literal("![px](px_layer.png) **x** <img src=x> block5_conv3"))
    !\[px\](px_layer.png) \*\*x\*\* \<img src=x\> block5_conv3
    """
    one_line = " ".join(str(text).split())
    escaped = _EMPHASIS_UNDERSCORE.sub(r"\\_", _ANYWHERE.sub(r"\\\1", one_line))
    return _BLOCK_START.sub(lambda m: (f"{m[1]}\\{m[2]}" if m[1] else f"\\{m[3]}"), escaped)


def literal_code(text: object) -> str:
    """``text`` as inline code (monospace, shown as typed): backticks that the name itself
    holds are matched by a longer fence, as CommonMark prescribes."""
    one_line = " ".join(str(text).split())
    longest = max((len(run) for run in re.findall(r"`+", one_line)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if one_line.startswith("`") or one_line.endswith("`") or not one_line else ""
    return f"{fence}{pad}{one_line}{pad}{fence}"


def plotly_text(text: object) -> str:
    """``text`` for a plotly title, legend or hover label, which read a subset of HTML
    (``<b>``, ``<a href>``...): tags are shown as typed, never followed."""
    return html.escape(str(text), quote=False)


def breakable_path(path: object) -> str:
    """``path`` with a zero-width space after each ``/``: a narrow caption (a 112 px thumbnail)
    breaks between folder and file name instead of inside a word ("circle/scene_00 / 00.png").

    >>> breakable_path("circle/scene_0000.png") == "circle/\\u200bscene_0000.png"
    True
    """
    return str(path).replace("/", "/\u200b")
