"""Getting a sample data set (TensorFlow Datasets) written as class folders."""

from __future__ import annotations

import functools
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
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
from tlgui.core.paths import data_dir
from tlgui.gui import jobs
from tlgui.gui.dialogs import error_text
from tlgui.gui.workers import Job, start_job


class SampleDialog(QDialog):
    """Pick a sample set and a folder; fetch it in the background."""

    fetched = Signal(Path)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from tlgui.core.tfds_fetch import SAMPLE_DATASETS

        self.setWindowTitle("Get a sample data set")
        self.job: Job | None = None
        self.name_box = QComboBox()
        for name, text in SAMPLE_DATASETS.items():
            self.name_box.addItem(f"{name} — {text}", name)
        self.name_box.currentIndexChanged.connect(self._default_dest)
        self.dest_edit = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        dest_row = QHBoxLayout()
        dest_row.addWidget(self.dest_edit, 1)
        dest_row.addWidget(browse)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.message = QLabel("The images are written as one folder per class; it needs an "
                              "internet connection unless a prepared copy is on this computer.")
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.fetch_button = self.buttons.addButton(
            "Get it", QDialogButtonBox.ButtonRole.AcceptRole)
        self.fetch_button.clicked.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Data set", self.name_box)
        form.addRow("Save into", dest_row)
        v = QVBoxLayout(self)
        v.addLayout(form)
        v.addWidget(self.message)
        v.addWidget(self.progress)
        v.addWidget(self.buttons)
        self._default_dest()
        self.resize(620, self.sizeHint().height())

    def _default_dest(self) -> None:
        self.dest_edit.setText(str(data_dir() / "samples" / str(self.name_box.currentData())))

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save the sample data set into")
        if folder:
            self.dest_edit.setText(str(Path(folder) / str(self.name_box.currentData())))

    def start(self) -> None:
        dest = Path(self.dest_edit.text()).expanduser()
        if dest.is_dir() and any(dest.iterdir()):
            # Already fetched earlier: open it rather than fetch again.
            self.fetched.emit(dest)
            self.accept()
            return
        self.fetch_button.setEnabled(False)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.message.setText("Getting the data set…")
        self.job = start_job(
            "fetch", functools.partial(jobs.fetch_sample, str(self.name_box.currentData()), dest),
            on_progress=self._on_progress, on_success=self._on_done,
            on_failure=self._on_failed, on_cancel=self.reject)

    def _on_progress(self, event: object) -> None:
        if isinstance(event, StageProgress):
            if event.total:
                self.progress.setRange(0, event.total)
                self.progress.setValue(event.done)
            self.message.setText(event.message or "Getting the data set…")

    def _on_done(self, dest: Path) -> None:
        self.fetched.emit(dest)
        self.accept()

    def _on_failed(self, exc: BaseException) -> None:
        self.progress.setVisible(False)
        self.fetch_button.setEnabled(True)
        self.message.setText(f"<b>Could not get the data set.</b><br>{error_text(exc)}")

    def reject(self) -> None:
        if self.job is not None and self.job.is_running():
            self.job.cancel()
            self.job.wait()
        super().reject()
