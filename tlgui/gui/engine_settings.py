"""Choosing the engine's Keras backend in the window; it applies to the next job. The
same dialog shows the decoded-image cache (``cache_box``): its space, limit and Clear.

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
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from tlgui.core.entries import printable
from tlgui.core.errors import TlguiError
from tlgui.gui.cache_box import CacheBox
from tlgui.gui.engine_host import BACKENDS

BACKEND_KEY = "engine/backend"
DEVICE_KEY = "engine/device"
DEVICES_KEY = "engine/devices"
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


def saved_device(settings: QSettings) -> str | None:
    """The device setting chosen last time (None: automatic)."""
    value = settings.value(DEVICE_KEY)
    return str(value) if isinstance(value, str) and value and value != "auto" else None


def saved_devices(settings: QSettings) -> str:
    """How many devices share each batch, as chosen last time: ``1``, ``N`` or ``all``."""
    value = settings.value(DEVICES_KEY)
    return str(value) if isinstance(value, str) and (value == "all" or value.isdigit()) \
        and value != "0" else "1"


class EngineSettingsDialog(QDialog):
    """Backend and device picker; ``backend()``, ``device()`` and ``shared()`` are the
    choice (``shared``: how many devices share each batch, ADR 010). The cache limit
    chosen is saved on OK."""

    def __init__(self, current: str | None, running: str, parent: QWidget | None = None,
                 device: str | None = None, devices: list[dict[str, object]] | None = None,
                 shared: str = "1") -> None:
        super().__init__(parent)
        self.setWindowTitle("Engine settings")
        self.backend_box = QComboBox()
        self.backend_box.addItem("Default (TensorFlow, or KERAS_BACKEND)", None)
        for name in installed_backends():
            self.backend_box.addItem(BACKEND_NOTES[name], name)
        self.backend_box.setCurrentIndex(max(0, self.backend_box.findData(current)))
        self.backend_box.setToolTip("The library that runs training, evaluation and "
                                    "prediction in the engine process.")
        self.device_box = QComboBox()
        self.device_box.addItem("Automatic: the GPU when there is one", None)
        self.device_box.addItem("CPU only", "cpu")
        for d in devices or []:
            if d.get("kind") != "cpu":
                memory = d.get("memory_bytes")
                size = f" ({int(memory) / 2**30:.0f} GB)" if isinstance(memory, int) else ""
                self.device_box.addItem(f"{d.get('name')}{size}", str(d.get("id")))
        if device and self.device_box.findData(device) < 0:
            self.device_box.addItem(f"{device} (not found now)", device)
        self.device_box.setCurrentIndex(max(0, self.device_box.findData(device)))
        self.device_box.setToolTip("Where training runs. The list shows the GPUs the "
                                   "running engine found.")
        gpus = sum(1 for d in devices or [] if d.get("kind") != "cpu")
        self.shared_box = QComboBox()
        self.shared_box.addItem("One device", "1")
        self.shared_box.addItem("All GPUs, each batch shared among them", "all")
        for n in range(2, gpus):
            self.shared_box.addItem(f"{n} GPUs, each batch shared among them", str(n))
        if self.shared_box.findData(shared) < 0:
            self.shared_box.addItem(f"{shared} devices (not found now)", shared)
        self.shared_box.setCurrentIndex(max(0, self.shared_box.findData(shared)))
        self.shared_box.setToolTip("Several GPUs of this computer train together on each "
                                   "batch, with the same result as one GPU. Needs the JAX "
                                   "backend; the batch size must be a multiple of the "
                                   "number of GPUs.")
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
        form.addRow("Device", self.device_box)
        form.addRow("GPUs per run", self.shared_box)
        self.cache_box = CacheBox(self)
        self.finished.connect(self.cache_box.stop)
        v = QVBoxLayout(self)
        v.addLayout(form)
        v.addWidget(note)
        v.addWidget(self.cache_box)
        v.addWidget(buttons)
        self.resize(520, self.sizeHint().height())

    def accept(self) -> None:
        """Saves the cache limit, then closes (a limit that cannot be saved is said)."""
        try:
            self.cache_box.apply()
        except TlguiError as exc:
            QMessageBox.warning(self, "Cache limit not saved", printable(str(exc)))
        super().accept()

    def backend(self) -> str | None:
        """The chosen backend (None: the default)."""
        data = self.backend_box.currentData()
        return str(data) if data else None

    def device(self) -> str | None:
        """The chosen device (None: automatic)."""
        data = self.device_box.currentData()
        return str(data) if data else None

    def shared(self) -> str:
        """How many devices share each batch: ``1``, ``N`` or ``all``."""
        return str(self.shared_box.currentData() or "1")
