"""``tlgui-app``: builds the QApplication and the main window; nothing else.

The window is on screen before TensorFlow is imported: Keras loads in a worker started
right after the first paint.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

import tlgui.gui  # noqa: F401  (first: applies the PySide6 6.12.0 refcount guard)
from tlgui.logs import setup_logging

log = logging.getLogger(__name__)
_T0 = time.perf_counter()
KERAS_IMPORT_DELAY_MS = 50


def create_window(argv: Sequence[str] | None = None, restore_last: bool = True) -> tuple[
        QApplication, object]:
    """Creates the application (once) and a shown main window.

    Returns:
        (the QApplication, the MainWindow).
    """
    app = QApplication.instance() or QApplication(list(argv or sys.argv))
    assert isinstance(app, QApplication)
    app.setApplicationName("tlgui")
    app.setOrganizationName("tlgui")
    from tlgui.gui.icons import icon
    from tlgui.gui.main_window import MainWindow

    app.setWindowIcon(icon("app"))
    window = MainWindow(restore_last=restore_last)
    window.show()
    # Start the slow Keras import once the window has had a chance to paint.
    QTimer.singleShot(KERAS_IMPORT_DELAY_MS, window.start_background_setup)
    return app, window


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: object) -> None:
    """Keeps tracebacks of exceptions raised in Qt slots in the log file, not only stderr."""
    log.error("uncaught exception", exc_info=(kind, exc, tb))  # type: ignore[arg-type]
    sys.__excepthook__(kind, exc, tb)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the desktop app; returns the exit code."""
    setup_logging()
    sys.excepthook = _log_uncaught
    app, _window = create_window(argv)
    log.info("window shown %.0f ms after the app module loaded",
             (time.perf_counter() - _T0) * 1000)
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main())
