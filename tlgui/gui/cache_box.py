"""The decoded-image cache in the settings dialog: the space it uses, its limit, Clear.

Reading and clearing the cache walk up to hundreds of thousands of files: both run in a
worker thread (``workers.start_job``), never in the GUI thread. The limit is saved with
``cache_control.save_limit``, the same setting ``tlgui cache limit`` writes.
"""

from __future__ import annotations

import logging
from typing import Any

import shiboken6
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from tlgui.core import cache_control as cc
from tlgui.core.entries import printable
from tlgui.gui.workers import Job, start_job

log = logging.getLogger(__name__)
GB = 10**9


class CacheBox(QGroupBox):
    """Shows the cache's use and limit; ``apply()`` saves the limit, ``stop()`` cancels a
    walk in progress (the dialog calls both)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Decoded-image cache", parent)
        self.setToolTip("Images decoded at the model's size are kept here, so that the next "
                        "training or audit of the same images starts at once. Removing "
                        "them is safe: they are decoded again when needed.")
        self.root = cc.pixels_dir()
        self.default = cc.default_limit(self.root)
        self.job: Job | None = None
        self.folder_label = QLabel(printable(self.root))
        self.folder_label.setWordWrap(True)
        self.usage_label = QLabel("Reading…")
        self.usage_label.setWordWrap(True)
        self.default_box = QCheckBox(f"Default ({cc.format_size(self.default)}: 10% of the "
                                     "disk, 1 to 50 GB)")
        self.limit_spin = QDoubleSpinBox()
        self.limit_spin.setRange(0.0, cc.MAX_LIMIT / GB)
        self.limit_spin.setDecimals(1)
        self.limit_spin.setSuffix(" GB")
        self.limit_spin.setToolTip("When the cache grows past this, the images used "
                                   "longest ago are removed after the next job.")
        saved = cc.saved_limit()
        self.default_box.setChecked(saved is None)
        self.limit_spin.setValue((saved if saved is not None else self.default) / GB)
        self.limit_spin.setEnabled(saved is not None)
        self.default_box.toggled.connect(lambda on: self.limit_spin.setEnabled(not on))
        self.clear_button = QPushButton("Clear cache")
        self.clear_button.setToolTip("Remove every decoded image tlgui keeps (nothing in "
                                     "your folders): the next job decodes them again.")
        self.clear_button.clicked.connect(self.clear)
        self.prune_button = QPushButton("Remove those of missing folders")
        self.prune_button.setToolTip("Remove the decoded images of dataset folders that no "
                                     "longer exist; the others stay.")
        self.prune_button.clicked.connect(self.prune)
        self.prune_button.hide()  # shown when the reading finds such images
        limit_row = QHBoxLayout()
        limit_row.addWidget(self.limit_spin)
        limit_row.addWidget(self.default_box, 1)
        form = QFormLayout(self)
        form.addRow("Folder", self.folder_label)
        form.addRow("Uses", self.usage_label)
        form.addRow("Limit", limit_row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.clear_button)
        buttons.addWidget(self.prune_button)
        form.addRow("", buttons)
        self.refresh()

    def limit(self) -> int | None:
        """The limit chosen in the box (None: the default)."""
        return None if self.default_box.isChecked() else int(self.limit_spin.value() * GB)

    def apply(self) -> None:
        """Saves the limit chosen (it applies from the next job on).

        Raises:
            WriteError: the setting cannot be written.
        """
        chosen = self.limit()
        if chosen != cc.saved_limit():
            cc.save_limit(chosen)

    def refresh(self) -> None:
        """Reads the cache's use in a worker thread."""
        self.usage_label.setText("Reading…")
        self._start("cache-inspect", lambda report, cancel: cc.inspect(self.root, report,
                                                                       cancel),
                    self._show_summary)

    def clear(self) -> None:
        """Removes the cache's entries in a worker thread, then shows what it removed."""
        self.usage_label.setText("Clearing…")
        self._start("cache-clear", lambda report, cancel: cc.clear(self.root, report, cancel),
                    self._show_cleared)

    def prune(self) -> None:
        """Removes the entries of dataset folders that no longer exist, in a worker thread."""
        self.usage_label.setText("Removing…")
        self.prune_button.hide()
        self._start("cache-prune",
                    lambda report, cancel: cc.prune(self.root, self.limit(), report, cancel),
                    self._show_pruned)

    def stop(self) -> None:
        """Cancels a walk in progress (the dialog is closing)."""
        if self.job is not None and self.job.is_running():
            self.job.cancel()

    def _start(self, name: str, fn: Any, done: Any) -> None:
        if self.job is not None and self.job.is_running():
            return
        self.clear_button.setEnabled(False)
        # No Qt parent: a job outlives a dialog deleted while it walks (the dialog only
        # cancels it); its callbacks then find the box gone and do nothing.
        self.job = start_job(name, fn, on_success=self._if_alive(done),
                             on_failure=self._if_alive(self._failed),
                             on_finish=self._if_alive(
                                 lambda: self.clear_button.setEnabled(True)))

    def _if_alive(self, slot: Any) -> Any:
        def call(*args: Any) -> None:
            if shiboken6.isValid(self):
                slot(*args)
        return call

    def _show_summary(self, s: cc.CacheSummary) -> None:
        text = f"{cc.format_size(s.nbytes)} in {s.entries:,} decoded images"
        if s.datasets:
            top = s.datasets[0]
            text += (f"; the most for {printable(top.folder)} "
                     f"({cc.format_size(top.nbytes)})")
        gone = sum(d.nbytes for d in s.datasets if not d.exists)
        if gone:
            text += f"; {cc.format_size(gone)} for folders that no longer exist"
        self.prune_button.setVisible(bool(gone))
        self.usage_label.setText(text)

    def _show_pruned(self, r: cc.Removed) -> None:
        self.usage_label.setText(f"Removed {r.entries:,} decoded images of missing folders "
                                 f"({cc.format_size(r.nbytes)}).")

    def _show_cleared(self, r: cc.Removed) -> None:
        self.usage_label.setText(f"Cleared: {r.entries:,} decoded images removed "
                                 f"({cc.format_size(r.nbytes)}).")

    def _failed(self, error: BaseException) -> None:
        self.usage_label.setText(f"Cannot read the cache: {printable(str(error))}")
