"""Messages to the user: errors name the file or setting at fault; the log keeps the rest."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QMessageBox, QWidget

from tlgui.core.errors import TlguiError

log = logging.getLogger(__name__)


def error_text(exc: BaseException) -> str:
    """The message shown for an error: a TlguiError's own words, else type and text."""
    if isinstance(exc, TlguiError):
        return str(exc)
    from tlgui.logs import setup_logging

    where = setup_logging()
    hint = f" Details are in the log file {where}." if where else ""
    return f"Something went wrong: {type(exc).__name__}: {exc}.{hint}"


def show_error(parent: QWidget | None, title: str, exc: BaseException) -> QMessageBox:
    """Shows an error without blocking the event loop; returns the message box."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, error_text(exc),
                      QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorBox")
    box.open()
    return box


def ask(parent: QWidget | None, title: str, text: str) -> bool:
    """Asks a yes/no question; True for yes."""
    answer = QMessageBox.question(parent, title, text,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes
