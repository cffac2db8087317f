"""Getting a sample data set (TensorFlow Datasets) written as class folders."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialogButtonBox,
    QFileDialog,
    QWidget,
)

from tlgui.core.paths import data_dir
from tlgui.core.sample_sets import SAMPLE_DATASETS
from tlgui.gui import jobs
from tlgui.gui.dialogs import error_text
from tlgui.gui.job_dialog import JobDialog
from tlgui.gui.workers import start_job

if TYPE_CHECKING:
    from tlgui.gui.engine_host import EngineHost


class SampleDialog(JobDialog):
    """Pick a sample set and a folder; fetch it in the background."""

    fetched = Signal(Path)

    def __init__(self, engine: EngineHost, parent: QWidget | None = None) -> None:

        super().__init__(
            "Data set", "Save into",
            "The images are written as one folder per class; it needs an internet "
            "connection unless a prepared copy is on this computer.",
            QDialogButtonBox.StandardButton.Cancel, "Get it",
            QDialogButtonBox.ButtonRole.AcceptRole, parent)
        self.setWindowTitle("Get a sample data set")
        self.engine = engine
        self.name_box = self.choice
        self.dest_edit = self.dest
        self.fetch_button = self.action_button
        for name, text in SAMPLE_DATASETS.items():
            self.name_box.addItem(f"{name} — {text}", name)
        self.name_box.currentIndexChanged.connect(self._default_dest)
        self.fetch_button.clicked.connect(self.start)
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
            "fetch", functools.partial(jobs.fetch_sample, self.engine,
                                       str(self.name_box.currentData()), dest),
            on_progress=self._on_progress, on_success=self._on_done,
            on_failure=self._on_failed, on_cancel=self.reject)

    def _on_progress(self, event: object) -> None:
        self.show_progress(event, "Getting the data set…")

    def _on_done(self, dest: Path) -> None:
        self.fetched.emit(dest)
        self.accept()

    def _on_failed(self, exc: BaseException) -> None:
        self.progress.setVisible(False)
        self.fetch_button.setEnabled(True)
        self.message.setText(f"<b>Could not get the data set.</b><br>{error_text(exc)}")

