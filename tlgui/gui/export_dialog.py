"""Exporting the trained model: format, destination, progress (in a worker)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QStandardPaths, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialogButtonBox,
    QFileDialog,
    QMessageBox,
    QWidget,
)

from tlgui.core.entries import printable
from tlgui.core.errors import DestinationExists, TlguiError
from tlgui.core.export_files import check_export_target
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


def default_folder(protected: list[Path]) -> Path:
    """Where an export goes unless the user picks a place: Documents (else the home
    folder), a place the user finds again; never the hidden run folder, nor a dataset."""
    docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    for candidate in (Path(docs) if docs else None, Path.home()):
        if candidate is None or not candidate.is_dir():
            continue
        real = candidate.resolve()
        if not any(real == p.resolve() or real.is_relative_to(p.resolve())
                   for p in protected):
            return candidate
    return Path.home()


class ExportDialog(JobDialog):
    """Exports the engine's model (``model`` describes it); emits ``exported(path)``.

    Every file the export writes is checked before the engine starts: a file that is
    there is replaced only after the user says so, and a destination inside the dataset
    is refused.
    """

    exported = Signal(Path)

    def __init__(self, engine: EngineHost, model: ModelInfo, folder: Path,
                 parent: QWidget | None = None, *, protected: list[Path] | None = None,
                 name: str = "classifier") -> None:
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
        self.name = name
        self.protected = list(protected or [])
        self.result: Any = None
        self.format_box = self.choice
        self.export_button = self.action_button
        for fmt, text, _suffix in FORMATS:
            self.format_box.addItem(text, fmt)
        self.format_box.setToolTip("Every format takes photos of any size as they are and "
                                   "gives one probability per class; the class names go with "
                                   "the model.")
        self.format_box.currentIndexChanged.connect(self._update_dest)
        self.mirror_box = QCheckBox("Average with the mirror image (test-time augmentation)")
        self.mirror_box.setToolTip(
            "The exported model classifies each photo as it is and mirrored left to right "
            "and averages the two answers: often a little more accurate, twice the "
            "computation per photo. Evaluate shows what it changes on your images.")
        self.form.addRow("", self.mirror_box)
        self.export_button.setIcon(icon("export"))
        self.export_button.clicked.connect(self.start)
        self._update_dest()
        self.resize(640, self.sizeHint().height())

    def fmt(self) -> str:
        return str(self.format_box.currentData())

    def _update_dest(self) -> None:
        current = self.dest.text().strip()
        stem = Path(current) if current else self.folder / self.name
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

    def confirmed_overwrite(self, out: Path) -> bool | None:
        """Checks the destination: False when nothing is there, True when the user
        agreed to replace what is, None when the export must not start."""
        try:
            check_export_target(self.fmt(), out, inputs=self.protected)
            return False
        except DestinationExists as exc:
            answer = QMessageBox.question(
                self, "Replace the existing file?",
                f"{printable(exc.path)} already exists.\n\nReplace it with this export? "
                "(labels.txt beside it is replaced too.)",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                self.message.setText("Nothing was exported: choose another name, or agree "
                                     "to replace the file.")
                return None
        except TlguiError as exc:
            self.message.setText(f"<b>Cannot export there.</b> {error_text(exc)}")
            return None
        try:
            check_export_target(self.fmt(), out, overwrite=True, inputs=self.protected)
        except TlguiError as exc:
            self.message.setText(f"<b>Cannot export there.</b> {error_text(exc)}")
            return None
        return True

    def start(self) -> None:
        text = self.dest.text().strip()
        if not text:
            self.message.setText("Give a file name to export to.")
            return
        out = Path(text).expanduser()
        overwrite = self.confirmed_overwrite(out)
        if overwrite is None:
            return
        self.export_button.setEnabled(False)
        self.format_box.setEnabled(False)
        self.mirror_box.setEnabled(False)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.message.setText(f"Exporting to {out}…")
        self.job = start_job(
            "export", functools.partial(jobs.export, self.engine, self.model.run, self.fmt(),
                                        out, overwrite=overwrite, protected=self.protected,
                                        mirror=self.mirror_box.isChecked()),
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
        self.mirror_box.setEnabled(True)

