"""The Runs tab: every run (this dataset's first), to open, compare, name, delete or train
again; and the comparison of the selected runs."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from tlgui.core.errors import TlguiError
from tlgui.core.paths import runs_dir
from tlgui.core.run_catalog import (
    RunRecord,
    delete_run,
    list_run_records,
    same_folder,
    set_label,
)
from tlgui.core.run_compare import compare_runs, load_details
from tlgui.gui import dialogs
from tlgui.gui.compare_view import CompareView
from tlgui.gui.icons import icon
from tlgui.gui.run_label_dialog import LabelDialog
from tlgui.gui.run_preview import RunPreview
from tlgui.gui.run_table_model import DATASET, NAME, RunTableModel

log = logging.getLogger(__name__)
LIST, COMPARE = range(2)


class RunsPanel(QWidget):
    """A table of runs with Open, Train again, Compare, Rename, Delete and Open folder.

    Signals:
        open_requested(Path): restore this run into the window.
        train_again_requested(Path): train again with this run's settings.
        error(str, object): a title and an exception to show.
    """

    open_requested = Signal(Path)
    train_again_requested = Signal(Path)
    error = Signal(str, object)

    def __init__(self, root: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._root = root
        self.dataset: Path | None = None
        self.current_run: Path | None = None
        self.label_dialog: LabelDialog | None = None
        self.model = RunTableModel()
        self.model.label_failed.connect(
            lambda text: self.error.emit("Cannot rename the run", TlguiError(text)))

        self.this_button = QPushButton("This dataset")
        self.all_button = QPushButton("All runs")
        self.scope = QButtonGroup(self)
        for b in (self.this_button, self.all_button):
            b.setCheckable(True)
            self.scope.addButton(b)
        self.all_button.setChecked(True)
        self.this_button.setEnabled(False)
        self.this_button.setToolTip("Only the runs of the dataset open in the Data tab")
        self.all_button.setToolTip("Every run; those of the open dataset first, in bold")
        self.scope.buttonClicked.connect(lambda _b: self.refresh())

        def button(name: str, text: str, tip: str) -> QPushButton:
            b = QPushButton(icon(name), text)
            b.setToolTip(tip)
            return b

        self.open_button = button("open", "Open", "Restore this run's model, plot and "
                                  "evaluation in the window (double-click a row does too)")
        self.again_button = button("train", "Train again", "Load this run's settings, layer "
                                   "ticks and dataset, ready to train again")
        self.compare_button = button("evaluate", "Compare", "Compare the selected runs "
                                     "(select two or more with Ctrl or Shift)")
        self.rename_button = button("rename", "Name…", "Give the run a name and a note")
        self.delete_button = button("delete", "Delete…", "Delete the run folder (asks first; "
                                    "your dataset is never touched)")
        self.folder_button = button("reveal", "Open folder", "Show the run folder in the "
                                    "file manager")
        self.open_button.clicked.connect(self._open)
        self.again_button.clicked.connect(self._train_again)
        self.compare_button.clicked.connect(self.compare_selected)
        self.rename_button.clicked.connect(self.rename_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.folder_button.clicked.connect(self._open_folder)
        top = QHBoxLayout()
        top.addWidget(self.this_button)
        top.addWidget(self.all_button)
        top.addSpacing(12)
        for b in (self.open_button, self.again_button, self.compare_button):
            top.addWidget(b)
        top.addStretch(1)
        for b in (self.rename_button, self.delete_button, self.folder_button):
            top.addWidget(b)

        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                  | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.view.setSortingEnabled(False)
        self.view.horizontalHeader().setSectionsClickable(True)
        self.view.horizontalHeader().sectionClicked.connect(self._sort)
        self.view.verticalHeader().hide()
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        self.view.verticalHeader().setDefaultSectionSize(self.view.fontMetrics().height() + 8)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(DATASET, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(DATASET, 140)
        self.view.doubleClicked.connect(self._double_clicked)
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._update())
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.buttons = (self.open_button, self.again_button, self.compare_button,
                        self.rename_button, self.delete_button, self.folder_button)
        self._actions: list[QAction] = []
        for b in self.buttons:
            act = QAction(b.icon(), b.text(), self.view)
            act.triggered.connect(b.click)
            self._actions.append(act)
            self.view.addAction(act)
        delete_key = QAction(self.view)
        delete_key.setShortcut(QKeySequence.StandardKey.Delete)
        delete_key.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        delete_key.triggered.connect(self.delete_selected)
        self.view.addAction(delete_key)

        self.empty_label = QLabel()
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview = RunPreview()
        self.list_split = QSplitter(Qt.Orientation.Vertical)
        self.list_split.addWidget(self.view)
        self.list_split.addWidget(self.preview)
        self.list_split.setChildrenCollapsible(False)
        self._split_moved = False
        self.list_split.splitterMoved.connect(lambda *_: setattr(self, "_split_moved", True))
        list_page = QWidget()
        lv = QVBoxLayout(list_page)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addLayout(top)
        lv.addWidget(self.empty_label)
        lv.addWidget(self.list_split, 1)

        self.pages = QStackedWidget()
        self.compare_view = CompareView()
        self.compare_view.back_requested.connect(lambda: self.pages.setCurrentIndex(LIST))
        self.pages.addWidget(list_page)
        self.pages.addWidget(self.compare_view)
        QVBoxLayout(self).addWidget(self.pages)
        self._update()

    # -- content ------------------------------------------------------------------
    @property
    def root(self) -> Path:
        """The runs folder (the user's, unless given)."""
        return self._root or runs_dir()

    def set_dataset(self, root: Path | None) -> None:
        """The dataset open in the window: its runs come first (or alone)."""
        first = self.dataset is None and root is not None
        self.dataset = Path(root) if root is not None else None
        self.this_button.setEnabled(root is not None)
        if root is None:
            self.all_button.setChecked(True)
        elif first:
            self.this_button.setChecked(True)
        self.refresh()

    def set_current_run(self, run: Path | None) -> None:
        """The run whose model the window holds (deleting it asks more carefully)."""
        self.current_run = run

    def this_dataset_only(self) -> bool:
        """True when only the open dataset's runs are listed."""
        return self.dataset is not None and self.this_button.isChecked()

    def refresh(self) -> None:
        """Reads the runs folder again, keeping the selection."""
        selected = {r.path for r in self.selected()}
        records = list_run_records(self.root, self.dataset)
        n_all = len(records)
        mine = [r.path for r in records if r.dataset is not None and self.dataset is not None
                and same_folder(r.dataset, self.dataset)]
        if self.this_dataset_only():
            records = [r for r in records if r.path in set(mine)]
        self.model.set_records(records, mine if self.dataset is not None else None)
        selection = self.view.selectionModel()
        for row, r in enumerate(records):
            if r.path in selected:
                selection.select(self.model.index(row, 0),
                                 QItemSelectionModel.SelectionFlag.Select
                                 | QItemSelectionModel.SelectionFlag.Rows)
        if self.isVisible():
            self._select_newest()
        name = self.dataset.name if self.dataset else ""
        if not n_all:
            self.empty_label.setText("No runs yet. Open a dataset (Data tab) and train: each "
                                     "run appears here, to open, compare or train again.")
        elif not records:
            self.empty_label.setText(f"No runs of {name} yet. Train one (Train tab), or "
                                     f"choose All runs to see the other {n_all}.")
        self.empty_label.setVisible(not records)
        self.this_button.setText(f"This dataset ({len(mine)})" if self.dataset else
                                 "This dataset")
        self.all_button.setText(f"All runs ({n_all})")
        self._share_height()
        self._update()

    def _share_height(self) -> None:
        """Gives the table the height its rows need (up to 60 %), the preview the rest,
        until the user moves the divider."""
        total = sum(self.list_split.sizes())
        if self._split_moved or total <= 0:
            return
        need = (self.view.horizontalHeader().sizeHint().height() + 6
                + self.model.rowCount() * self.view.verticalHeader().defaultSectionSize())
        table = min(max(need, 120), int(total * 0.6))
        self.list_split.setSizes([table, total - table])

    def selected(self) -> list[RunRecord]:
        """The selected runs, in table order."""
        rows = sorted(i.row() for i in self.view.selectionModel().selectedRows())
        return [r for r in (self.model.record(row) for row in rows) if r is not None]

    def _select_newest(self) -> None:
        """Shows the newest run (of this dataset first) rather than an empty pane. Only
        while the tab is visible: the preview's plot costs the GUI thread a moment, which
        must not fall at the end of a training run."""
        selection = self.view.selectionModel()
        if self.model.rowCount() and not selection.hasSelection():
            selection.select(self.model.index(0, 0), QItemSelectionModel.SelectionFlag.Select
                             | QItemSelectionModel.SelectionFlag.Rows)

    def select_paths(self, paths: list[Path]) -> None:
        """Selects these runs (others are unselected)."""
        self.view.clearSelection()
        for p in paths:
            row = self.model.row_of(p)
            if row >= 0:
                self.view.selectionModel().select(
                    self.model.index(row, 0), QItemSelectionModel.SelectionFlag.Select
                    | QItemSelectionModel.SelectionFlag.Rows)

    def _update(self) -> None:
        sel = self.selected()
        one = sel[0] if len(sel) == 1 else None
        self.open_button.setEnabled(one is not None and one.has_model
                                    and one.state != "running")
        self.again_button.setEnabled(one is not None and (one.path / "config.json").is_file())
        self.compare_button.setEnabled(len(sel) >= 2)
        self.rename_button.setEnabled(one is not None)
        self.delete_button.setEnabled(bool(sel) and all(r.state != "running" for r in sel))
        self.folder_button.setEnabled(one is not None)
        for b, act in zip(self.buttons, self._actions, strict=True):
            act.setEnabled(b.isEnabled())
        self._preview(sel)

    def _preview(self, sel: list[RunRecord]) -> None:
        if len(sel) != 1:
            self.preview.show_hint(
                f"{len(sel)} runs selected: Compare shows them side by side." if sel else
                "Select a run to see it here; select several (Ctrl or Shift) to compare them.")
            return
        try:
            self.preview.show_run(load_details(sel[0].path))
        except TlguiError as exc:  # deleted or damaged since it was listed
            self.preview.show_hint(str(exc))

    def _sort(self, column: int) -> None:
        header = self.view.horizontalHeader()
        order = (Qt.SortOrder.AscendingOrder if header.sortIndicatorSection() == column
                 and header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
                 else Qt.SortOrder.DescendingOrder)
        header.setSortIndicatorShown(True)
        header.setSortIndicator(column, order)
        self.model.sort(column, order)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._share_height()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self.view.state() != QAbstractItemView.State.EditingState:
            self.refresh()  # runs may have ended, or been made by the CLI, meanwhile

    # -- actions ------------------------------------------------------------------
    def _double_clicked(self, index: QModelIndex) -> None:
        if index.column() != NAME:
            self._open()

    def _open(self) -> None:
        sel = self.selected()
        if len(sel) == 1 and sel[0].has_model:
            self.open_requested.emit(sel[0].path)

    def _train_again(self) -> None:
        sel = self.selected()
        if len(sel) == 1:
            self.train_again_requested.emit(sel[0].path)

    def _open_folder(self) -> None:
        sel = self.selected()
        if len(sel) == 1:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(sel[0].path)))

    def compare_selected(self) -> None:
        """Shows the comparison of the selected runs (two or more)."""
        sel = self.selected()
        if len(sel) < 2:
            return
        sel.sort(key=lambda r: (r.started_unix or 0.0, r.path.name))  # 1 is the oldest
        try:
            comparison = compare_runs([r.path for r in sel])
        except TlguiError as exc:
            self.error.emit("Cannot compare these runs", exc)
            return
        self.compare_view.show_comparison(comparison)
        self.pages.setCurrentIndex(COMPARE)

    def rename_selected(self) -> None:
        """Asks for a name and a note for the selected run; saves them when accepted."""
        sel = self.selected()
        if len(sel) != 1:
            return
        self.label_dialog = LabelDialog(sel[0], self)
        self.label_dialog.accepted.connect(lambda: self._save_label(sel[0].path))
        self.label_dialog.open()

    def _save_label(self, run: Path) -> None:
        dialog = self.label_dialog
        if dialog is None:
            return
        try:
            record = set_label(run, dialog.name.text(), dialog.note.toPlainText())
        except TlguiError as exc:
            self.error.emit("Cannot rename the run", exc)
            return
        self.model.replace(record)
        self._update()

    def delete_selected(self) -> None:
        """Deletes the selected run folders after asking (never a running run)."""
        sel = [r for r in self.selected() if r.state != "running"]
        if not sel:
            return
        names = "\n".join(f"  {r.path}" for r in sel[:8])
        more = f"\n  and {len(sel) - 8} more" if len(sel) > 8 else ""
        what = "this run folder" if len(sel) == 1 else f"these {len(sel)} run folders"
        warn = ""
        if self.current_run is not None and any(r.path == self.current_run for r in sel):
            warn = ("\n\nThe model open in the window comes from this run: it stays usable "
                    "until you open another, but Predict and Export cannot read it again.")
        if not dialogs.ask(self, "Delete runs" if len(sel) > 1 else "Delete the run",
                           f"Delete {what} with its model, history and evaluation?\n{names}"
                           f"{more}\n\nYour dataset is not touched.{warn}"):
            return
        for r in sel:
            try:
                delete_run(r.path, self.root)
            except TlguiError as exc:
                self.error.emit("Cannot delete the run", exc)
                break
        self.refresh()
