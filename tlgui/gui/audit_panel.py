"""The Audit tab: find images that look mislabeled, copies and outliers, and review them.

Run audit sends the session's dataset (its corrections applied) to the engine, which
runs ``core.audit`` (one frozen backbone pass, cross-validated head) and sends back the
findings with the nearest images of each. The list is filtered by problem; the review
beside it decides about one finding at a time, keyboard first. Export CSV… writes the
same file as ``tlgui audit --csv``, never inside the dataset.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tlgui.core.audit_findings import (
    PROBLEMS,
    TITLES,
    AuditSummary,
    check_csv_destination,
    write_findings_csv,
)
from tlgui.core.errors import TlguiError
from tlgui.core.events import StageProgress
from tlgui.core.wording import plural
from tlgui.gui import jobs
from tlgui.gui.icons import icon
from tlgui.gui.review_items import PROBLEM_WORDS, ReviewItem, from_audit
from tlgui.gui.workers import Job, start_job

if TYPE_CHECKING:
    from tlgui.gui.review_controller import ReviewController

ALL = "all"
COLUMNS = ("Problem", "Image", "Given → suggested", "Score", "Decision")
INTRO = ("<b>Find label mistakes.</b> The audit looks at every image once with the "
         "backbone and cross-validates the labels: it lists images that look mislabeled, "
         "copies of one photo (also across classes and the training/validation split) and "
         "images unlike every class. It never changes your folders.")


class AuditPanel(QWidget):
    """Runs the audit, lists its findings by problem, and reviews them one at a time."""

    def __init__(self, controller: ReviewController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.session = controller.session
        self.audit: AuditSummary | None = None
        self.items: list[ReviewItem] = []
        self.shown: list[int] = []
        self.problem = ALL
        self.job: Job | None = None

        self.intro = QLabel(INTRO)
        self.intro.setWordWrap(True)
        self.run_button = QPushButton(icon("audit"), "Run audit")
        self.run_button.clicked.connect(self.run_audit)
        self.cancel_button = QPushButton(icon("cancel"), "Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.csv_button = QPushButton(icon("csv"), "Export CSV…")
        self.csv_button.clicked.connect(self.choose_csv)
        top = QHBoxLayout()
        top.addWidget(self.intro, 1)
        top.addWidget(self.run_button)
        top.addWidget(self.cancel_button)

        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.filters = QButtonGroup(self)
        self.filters.setExclusive(True)
        self.filter_buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        for key in (ALL, *PROBLEMS):
            button = QPushButton()
            button.setCheckable(True)
            button.setChecked(key == ALL)
            button.clicked.connect(functools.partial(self.set_filter, key))
            self.filters.addButton(button)
            self.filter_buttons[key] = button
            row.addWidget(button)
        row.addStretch()
        row.addWidget(self.csv_button)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("auditFindings")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.setColumnWidth(1, 150)
        self.table.currentCellChanged.connect(lambda r, _c, _pr, _pc: self._row_chosen(r))
        self.review = controller.review_widget()
        self.review.current_changed.connect(self._review_moved)
        self.review.decided.connect(self._decided)
        split = QSplitter()
        split.addWidget(self.table)
        split.addWidget(self.review)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([580, 700])
        self.table.setMinimumWidth(240)
        self.bar = controller.corrections_bar()

        v = QVBoxLayout(self)
        v.addLayout(top)
        v.addWidget(self.progress)
        v.addWidget(self.summary)
        v.addLayout(row)
        v.addWidget(self.bar)
        v.addWidget(split, 1)
        self.session.busy_changed.connect(lambda _b: self.update_state())
        self.session.dataset_changed.connect(lambda _ds: self.clear())
        self.session.model_changed.connect(lambda _m: self._heat_source())
        self.session.training_finished.connect(lambda *_a: self._heat_source())
        self.session.run_opened.connect(lambda *_a: self._heat_source())
        controller.store.changed.connect(self._refresh_decisions)
        self.clear()

    # -- running ------------------------------------------------------------------------
    def update_state(self) -> None:
        s = self.session
        running = self.job is not None and self.job.is_running()
        self.run_button.setEnabled(s.dataset is not None and not s.busy and not running)
        self.run_button.setToolTip("Open a dataset first." if s.dataset is None else
                                   f"Wait: {s.busy}…" if s.busy and not running else
                                   "Look for label mistakes, copies and outliers")
        self.cancel_button.setEnabled(running)
        self.csv_button.setEnabled(self.audit is not None and bool(self.audit.findings))

    def run_audit(self) -> Job | None:
        """Audits the session's dataset (corrections applied) in the engine."""
        ref = self.session.dataset_ref()
        if ref is None or not self.session.claim("auditing"):
            self.update_state()
            return None
        config = self.session.config_source()
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.summary.setText("Auditing… the first pass decodes every image (later runs "
                             "read the cache).")
        self.job = start_job(
            "audit", functools.partial(jobs.audit, self.controller.engine, ref, config),
            on_progress=self._on_progress, on_success=self.show_audit,
            on_failure=lambda exc: self.controller.error.emit("The audit failed", exc),
            on_cancel=lambda: self.summary.setText("Audit cancelled."),
            on_finish=self._finished)
        self.update_state()
        return self.job

    def cancel(self) -> None:
        """Stops the audit within one batch."""
        if self.job is not None and self.job.is_running():
            self.job.cancel()

    def _on_progress(self, event: object) -> None:
        if isinstance(event, StageProgress):
            if event.total:
                self.progress.setRange(0, event.total)
                self.progress.setValue(event.done)
            self.summary.setText(f"{event.message}…")

    def _finished(self) -> None:
        self.job = None
        self.progress.setVisible(False)
        self.session.release()
        self.update_state()

    # -- showing --------------------------------------------------------------------------
    def show_audit(self, audit: AuditSummary) -> None:
        """Lists an audit's findings and reviews the first."""
        self.audit = audit
        self.items = from_audit(audit)
        counts = audit.counts()
        self.summary.setText(
            f"{plural(len(audit.paths), 'image')} audited with {audit.backbone} at "
            f"{audit.image_size} px; out-of-fold accuracy {audit.accuracy:.1%}. "
            + (f"{plural(len(audit.findings), 'finding')}, highest score first."
               if audit.findings else "Nothing suspicious found.")
            + (f" {plural(len(audit.problems), 'file')} could not be read."
               if audit.problems else ""))
        self.filter_buttons[ALL].setText(f"All ({len(audit.findings)})")
        for key in PROBLEMS:
            self.filter_buttons[key].setText(f"{TITLES[key]} ({counts[key]})")
        self.set_filter(self.problem)
        self._heat_source()
        self.update_state()

    def set_filter(self, problem: str) -> None:
        """Shows the findings of one problem (``all``: every finding)."""
        self.problem = problem
        self.filter_buttons[problem].setChecked(True)
        self.shown = [i for i, item in enumerate(self.items)
                      if problem == ALL or item.problem == problem]
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.shown))
        for row, i in enumerate(self.shown):
            item = self.items[i]
            moved = f"{item.given} → {item.suggested}" if item.suggested else item.given
            for col, text in enumerate((PROBLEM_WORDS[item.problem], self._shown_path(item.path),
                                        moved, f"{item.score:.2f}", "")):
                cell = QTableWidgetItem(text)
                cell.setToolTip(str(item.path) if col == 1 else f"{item.title}\n{item.detail}")
                self.table.setItem(row, col, cell)
        self.table.blockSignals(False)
        self._refresh_decisions()
        self.review.set_items([self.items[i] for i in self.shown],
                              self.controller.class_names())
        if self.shown:
            self.table.selectRow(0)

    def _shown_path(self, path: Path) -> str:
        root = self.audit.root if self.audit is not None else None
        return path.relative_to(root).as_posix() if root and path.is_relative_to(root) \
            else str(path)

    def _row_chosen(self, row: int) -> None:
        if 0 <= row < len(self.shown):
            self.review.go_to(row)

    def _review_moved(self, index: int) -> None:
        if self.table.currentRow() != index:
            self.table.selectRow(index)

    def _decided(self, item: ReviewItem) -> None:
        self._refresh_decisions()

    def _refresh_decisions(self) -> None:
        store = self.controller.store
        for row, i in enumerate(self.shown):
            cell = self.table.item(row, 4)
            if cell is not None:
                cell.setText(store.decision_text(self.items[i].path, short=True))

    def _heat_source(self) -> None:
        self.review.set_heat_source(*self.controller.model_heat_source())

    def clear(self) -> None:
        """Forgets the audit (another dataset was opened)."""
        self.audit = None
        self.items, self.shown = [], []
        self.table.setRowCount(0)
        self.review.set_items([], self.controller.class_names())
        self.filter_buttons[ALL].setText("All")
        for key in PROBLEMS:
            self.filter_buttons[key].setText(TITLES[key])
        self.summary.setText("")
        self.update_state()

    # -- CSV ------------------------------------------------------------------------------
    def choose_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the audit as CSV", "audit.csv",
                                              "CSV table (*.csv)")
        if path:
            # The file dialog asked before choosing an existing file: that is consent.
            self.write_csv(Path(path), overwrite=True)

    def write_csv(self, path: Path, overwrite: bool = False) -> Path | None:
        """Writes every finding as CSV (refused inside the dataset)."""
        if self.audit is None:
            return None
        try:
            dest = check_csv_destination(path, self.audit.root, overwrite)
            write_findings_csv(self.audit.findings, dest, overwrite=overwrite)
        except (TlguiError, OSError) as exc:
            self.controller.error.emit("Cannot save the audit", exc)
            return None
        self.controller.status_message.emit(f"Saved {plural(len(self.audit.findings), 'finding')}"
                                            f" to {dest}")
        return dest
