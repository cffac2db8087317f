"""Choosing the engine's Keras backend in the window; it applies to the next job.

Which backends are installed is found without importing them (``find_spec``): the window
never loads Keras or a backend itself.
"""

from __future__ import annotations

import importlib.util

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from tlgui.gui.engine_host import BACKENDS

BACKEND_KEY = "engine/backend"
BACKEND_NOTES = {
    "tensorflow": "TensorFlow: every export format; the default.",
    "jax": "JAX: fast on NVIDIA GPUs under Linux.",
    "torch": "PyTorch: the GPU backend on Windows.",
}


def installed_backends() -> list[str]:
    """The Keras backends whose package is installed, in the order of ``BACKENDS``."""
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def saved_backend(settings: QSettings) -> str | None:
    """The backend chosen last time (None: Keras' default)."""
    value = settings.value(BACKEND_KEY)
    return str(value) if value in BACKENDS else None


class EngineSettingsDialog(QDialog):
    """Backend picker; ``backend()`` is the choice once accepted."""

    def __init__(self, current: str | None, running: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Engine settings")
        self.backend_box = QComboBox()
        self.backend_box.addItem("Default (TensorFlow, or KERAS_BACKEND)", None)
        for name in installed_backends():
            self.backend_box.addItem(BACKEND_NOTES[name], name)
        self.backend_box.setCurrentIndex(max(0, self.backend_box.findData(current)))
        self.backend_box.setToolTip("The library that runs training, evaluation and "
                                    "prediction in the engine process.")
        note = QLabel(f"Running now: {running or 'not started'}. A change applies to the "
                      "next job: the engine restarts when it is idle, without restarting "
                      "the window; the model is built again.")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Backend", self.backend_box)
        v = QVBoxLayout(self)
        v.addLayout(form)
        v.addWidget(note)
        v.addWidget(buttons)
        self.resize(520, self.sizeHint().height())

    def backend(self) -> str | None:
        """The chosen backend (None: the default)."""
        data = self.backend_box.currentData()
        return str(data) if data else None
