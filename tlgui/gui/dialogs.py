"""Messages to the user: errors name the file or setting at fault; the log keeps the rest."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtWidgets import QAbstractButton, QMessageBox, QWidget

from tlgui.core.errors import TlguiError
from tlgui.core.wording import plural

log = logging.getLogger(__name__)
OPEN_AS_DATASET = "Open as a dataset to train on"
CLASSIFY_IMAGES = "Classify its images"


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


def offer_dataset(parent: QWidget, folders: Sequence[Path], on_open: Callable[[], None],
                  on_classify: Callable[[], None]) -> QMessageBox:
    """Asks, without blocking, whether dropped class folders are a dataset to train on or
    images to classify; Cancel does neither. Returns the box (object name
    ``datasetOffer``)."""
    more = f" (and {plural(len(folders) - 1, 'other folder')})" if len(folders) > 1 else ""
    box = QMessageBox(QMessageBox.Icon.Question, "A folder of class folders",
                      f"'{folders[0].name}'{more} holds class folders, like a dataset. Open "
                      "it as the dataset to train on, or classify all its images with the "
                      "current model?", QMessageBox.StandardButton.Cancel, parent)
    box.setObjectName("datasetOffer")
    box.setDefaultButton(box.addButton(OPEN_AS_DATASET, QMessageBox.ButtonRole.AcceptRole))
    box.addButton(CLASSIFY_IMAGES, QMessageBox.ButtonRole.ActionRole)

    def answered(button: QAbstractButton) -> None:
        if button.text() == OPEN_AS_DATASET:
            on_open()
        elif button.text() == CLASSIFY_IMAGES:
            on_classify()

    box.buttonClicked.connect(answered)
    box.open()
    return box
