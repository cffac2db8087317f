"""What every screenshot script does with the window: open it, let Qt run, save a picture."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def pump_events(app: Any, seconds: float, until: Callable[[], bool] = lambda: False) -> None:
    """Processes Qt events for ``seconds``, or until ``until()`` is true."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():
        app.processEvents()
        time.sleep(0.02)


class ShotWindow:
    """The main window at a fixed size, with settings and runs in throw-away folders
    (unless the caller set them), and a way to save what it shows."""

    def __init__(self, out: Path, size: tuple[int, int] = (1280, 800)) -> None:
        for var in ("TLGUI_SETTINGS_DIR", "TLGUI_DATA_DIR"):
            os.environ.setdefault(var, tempfile.mkdtemp(prefix="tlgui-shots-"))
        from tlgui.app import create_window
        from tlgui.gui.main_window import MainWindow

        self.app, window = create_window([], restore_last=False)
        assert isinstance(window, MainWindow)
        self.win = window
        self.win.move(0, 0)
        self.win.resize(*size)
        self.out = out
        out.mkdir(parents=True, exist_ok=True)

    def pump(self, seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        """Lets the window work for ``seconds``, or until ``until()`` is true."""
        pump_events(self.app, seconds, until)

    def shot(self, name: str, widget: Any = None) -> Path:
        """Saves ``widget`` (default: the window) as ``<out>/<name>.png`` once the
        thumbnails it asked for have come."""
        self.pump(1.0)
        self.pump(15, lambda: not self.win.thumbnails._requested)
        self.pump(0.5)
        path = self.out / f"{name}.png"
        (widget or self.win).grab().save(str(path))
        print(path, flush=True)  # noqa: T201
        return path

    def close(self) -> None:
        """Closes the window (its engine stops with it)."""
        self.win.close()
        self.app.processEvents()
