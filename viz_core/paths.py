"""Where the bundled files are (demo models, sample images, class names, colour tables).

In the checkout they sit in ``assets/`` beside ``viz_core/``; an installed wheel carries them
inside the package as ``viz_core/assets`` (pyproject.toml maps the folder there), so the
install adds no top-level ``assets`` package to site-packages.
"""
from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def assets_dir() -> Path:
    """The folder of bundled files: ``viz_core/assets`` when installed, else the checkout's
    ``assets/``."""
    inside = _PACKAGE / "assets"
    return inside if inside.is_dir() else _PACKAGE.parent / "assets"


ASSETS = assets_dir()
