"""A small dialog that asks for a run's name and note."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QPlainTextEdit,
    QWidget,
)

from tlgui.core.run_catalog import MAX_NAME, RunRecord


class LabelDialog(QDialog):
    """Asks for a run's name and note."""

    def __init__(self, record: RunRecord, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Name the run {record.path.name}")
        self.name = QLineEdit(record.label)
        self.name.setPlaceholderText(record.path.name)
        self.name.setMaxLength(MAX_NAME)
        self.note = QPlainTextEdit(record.note)
        self.note.setPlaceholderText("What was tried, what to remember…")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Name", self.name)
        form.addRow("Note", self.note)
        form.addRow(buttons)
        self.resize(460, 240)
