"""The one way the window loads its icons: ``icon("train")``."""

from __future__ import annotations

from functools import cache
from importlib import resources

from PySide6.QtGui import QIcon


def icon_path(name: str) -> str:
    """The file of an icon in ``tlgui/assets/icons`` (``name`` without ``.svg``)."""
    ref = resources.files("tlgui") / "assets" / "icons" / f"{name}.svg"
    path = str(ref)
    if not ref.is_file():
        raise FileNotFoundError(f"no icon named '{name}' ({path})")
    return path


@cache
def icon(name: str) -> QIcon:
    """The icon ``name`` (e.g. ``train``, ``open``, ``export``)."""
    return QIcon(icon_path(name))
