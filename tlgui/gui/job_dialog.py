"""A small dialog that runs one background job: a choice, a destination, progress."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tlgui.core.events import StageProgress
from tlgui.gui.workers import Job


class JobDialog(QDialog):
    """Lays out ``choice`` / destination + Browse… / message / progress / buttons.

    Subclasses fill ``choice``, connect ``action_button`` and implement ``_browse``;
    closing the dialog cancels a running job and waits for it.
    """

    def __init__(self, choice_label: str, dest_label: str, message: str,
                 close_button: QDialogButtonBox.StandardButton, action_text: str,
                 action_role: QDialogButtonBox.ButtonRole,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job: Job | None = None
        self.choice = QComboBox()
        self.dest = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        dest_row = QHBoxLayout()
        dest_row.addWidget(self.dest, 1)
        dest_row.addWidget(browse)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.message = QLabel(message)
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(close_button)
        self.action_button = self.buttons.addButton(action_text, action_role)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        self.form = form  # a dialog adds its own options under the two rows
        form.addRow(choice_label, self.choice)
        form.addRow(dest_label, dest_row)
        v = QVBoxLayout(self)
        v.addLayout(form)
        v.addWidget(self.message)
        v.addWidget(self.progress)
        v.addWidget(self.buttons)

    def _browse(self) -> None:
        raise NotImplementedError

    def show_progress(self, event: object, fallback: str = "") -> None:
        """Shows a ``StageProgress`` in the bar and the message line."""
        if isinstance(event, StageProgress):
            if event.total:
                self.progress.setRange(0, event.total)
                self.progress.setValue(event.done)
            if event.message or fallback:
                self.message.setText(event.message or fallback)

    def reject(self) -> None:
        if self.job is not None and self.job.is_running():
            self.job.cancel()
            self.job.wait()
        super().reject()
