"""Exporting the trained model: format, destination, progress (in a worker)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialogButtonBox,
    QFileDialog,
    QWidget,
)

from tlgui.core.outcomes import ModelInfo
from tlgui.gui import jobs
from tlgui.gui.dialogs import error_text
from tlgui.gui.icons import icon
from tlgui.gui.job_dialog import JobDialog
from tlgui.gui.workers import start_job

if TYPE_CHECKING:
    from tlgui.gui.engine_host import EngineHost

FORMATS = (
    ("keras", "Keras (.keras): for Python and Keras", ".keras"),
    ("savedmodel", "TensorFlow SavedModel (a folder): for TensorFlow Serving", ""),
    ("tflite", "TensorFlow Lite (.tflite): phones and small devices", ".tflite"),
    ("onnx", "ONNX (.onnx): other tools and programming languages", ".onnx"),
)


class ExportDialog(JobDialog):
    """Exports the engine's model (``model`` describes it); emits ``exported(path)``."""

    exported = Signal(Path)

    def __init__(self, engine: EngineHost, model: ModelInfo, folder: Path,
                 parent: QWidget | None = None) -> None:
        super().__init__(
            "Format", "Save as",
            f"Classes: {', '.join(model.class_names)} · input {model.image_size} px "
            "(resized inside the model)",
            QDialogButtonBox.StandardButton.Close, "Export",
            QDialogButtonBox.ButtonRole.ActionRole, parent)
        self.setWindowTitle("Export the model")
        self.setWindowIcon(icon("export"))
        self.engine = engine
        self.model = model
        self.folder = folder
        self.result: Any = None
        self.format_box = self.choice
        self.export_button = self.action_button
        for fmt, text, _suffix in FORMATS:
            self.format_box.addItem(text, fmt)
        self.format_box.setToolTip("Every format takes photos of any size as they are and "
                                   "gives one probability per class; the class names go with "
                                   "the model.")
        self.format_box.currentIndexChanged.connect(self._update_dest)
        self.export_button.setIcon(icon("export"))
        self.export_button.clicked.connect(self.start)
        self._update_dest()
        self.resize(640, self.sizeHint().height())

    def fmt(self) -> str:
        return str(self.format_box.currentData())

    def _update_dest(self) -> None:
        current = self.dest.text().strip()
        stem = Path(current) if current else self.folder / "classifier"
        name = stem.name
        for end in (".keras", ".tflite", ".onnx", "_savedmodel"):
            name = name.removesuffix(end)
        suffix = FORMATS[self.format_box.currentIndex()][2] or "_savedmodel"
        self.dest.setText(str(stem.with_name(name + suffix)))

    def _browse(self) -> None:
        if self.fmt() == "savedmodel":
            folder = QFileDialog.getExistingDirectory(self, "Save the SavedModel inside")
            if folder:
                self.dest.setText(str(Path(folder) / "classifier_savedmodel"))
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export the model as", self.dest.text())
        if path:
            self.dest.setText(path)

    def start(self) -> None:
        out = Path(self.dest.text().strip()).expanduser()
        self.export_button.setEnabled(False)
        self.format_box.setEnabled(False)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.message.setText(f"Exporting to {out}…")
        self.job = start_job(
            "export", functools.partial(jobs.export, self.engine, self.model.run, self.fmt(),
                                        out),
            on_progress=self._on_progress, on_success=lambda r: self._on_done(out, r),
            on_failure=self._on_failed, on_cancel=self._on_cancelled)

    def _on_progress(self, event: object) -> None:
        self.show_progress(event)

    def _on_done(self, out: Path, result: Any) -> None:
        self.result = result
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        written = result if isinstance(result, list | tuple) else [result or out]
        self.message.setText("Written: " + ", ".join(str(p) for p in written))
        self._ready()
        self.exported.emit(Path(written[0]) if written else out)

    def _on_failed(self, exc: BaseException) -> None:
        self.progress.setVisible(False)
        self.message.setText(f"<b>Export failed.</b> {error_text(exc)}")
        self._ready()

    def _on_cancelled(self) -> None:
        self.progress.setVisible(False)
        self.message.setText("Export cancelled; nothing was written.")
        self._ready()

    def _ready(self) -> None:
        self.export_button.setEnabled(True)
        self.format_box.setEnabled(True)

