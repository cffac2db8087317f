"""Renders the app icon for installers from the window's own artwork.

``tlgui/assets/icons/app.svg`` is the one source: this copies it to ``resources/tlgui.svg``
and renders ``resources/tlgui-<size>.png``, ``tlgui.ico`` and ``tlgui.icns`` with Qt's SVG
renderer, so the window, the menus and the installers show the same icon. Run it after
changing the artwork:

    QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/make_icons.py
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tlgui" / "assets" / "icons" / "app.svg"
RESOURCES = ROOT / "resources"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def render(size: int) -> object:
    """The icon as a QImage of ``size`` x ``size`` pixels."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    QSvgRenderer(str(SOURCE)).render(painter)
    painter.end()
    return image


def main() -> int:
    """Writes every icon file into ``resources/``."""
    from PIL import Image
    from PySide6.QtGui import QGuiApplication

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    RESOURCES.mkdir(exist_ok=True)
    shutil.copyfile(SOURCE, RESOURCES / "tlgui.svg")
    for size in SIZES:
        render(size).save(str(RESOURCES / f"tlgui-{size}.png"))  # type: ignore[attr-defined]
    big = Image.open(RESOURCES / "tlgui-1024.png")
    big.save(RESOURCES / "tlgui.ico", sizes=[(s, s) for s in ICO_SIZES])
    big.save(RESOURCES / "tlgui.icns")
    print(f"icons written to {RESOURCES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
