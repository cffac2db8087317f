"""A Qt table model over the run records: one row per run, the name editable in place."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor

from tlgui.core.run_catalog import RunError, RunRecord, format_duration, set_label

_Index = QModelIndex | QPersistentModelIndex
RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
STARTED, NAME, BACKBONE, SIZE, PHASE1, PHASE2, STATE, DURATION, DATASET = range(9)
STATE_COLORS = {"complete": "#1b7a2f", "cancelled": "#8a6d00", "incomplete": "#8a6d00",
                "failed": "#b00020", "unknown": "#b00020", "running": "#1f5fa8"}
OTHER_DATASET_COLOR = "#6b6b6b"
STATE_TIPS = {
    "complete": "Both phases ran to the end.",
    "cancelled": "Stopped by the user; the best finished epoch is kept.",
    "incomplete": "The program stopped while it trained (closed or crashed); the best "
                  "finished epoch is kept.",
    "failed": "Training stopped with an error.",
    "running": "Training now.",
    "unknown": "The run folder's status cannot be read.",
}


def _pct(x: float | None) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.1%}"


class RunTableModel(QAbstractTableModel):
    """Columns: started, name, backbone, image size, best accuracy of each phase, state,
    duration, dataset. Editing a name saves it in the run folder (``set_label``).

    Signals:
        label_failed(str): a name could not be saved; the message says why.
    """

    HEADERS = ("Started", "Name", "Backbone", "Size", "Phase 1", "Phase 2", "State", "Time",
               "Dataset")
    HEADER_TIPS = ("When the run started", "Your name for the run (double-click to edit), "
                   "else its folder", "The pre-trained network", "Image side in pixels",
                   "Best validation accuracy of phase 1 (new classifier)",
                   "Best validation accuracy of phase 2 (fine-tuning)",
                   "How the run ended", "How long it took", "The dataset it was trained on")
    RECORD_ROLE = Qt.ItemDataRole.UserRole + 1
    label_failed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.records: list[RunRecord] = []
        self._this: set[Path] | None = None

    def set_records(self, records: Sequence[RunRecord],
                    this_dataset: Sequence[Path] | None = None) -> None:
        """Shows these runs; when ``this_dataset`` (the open dataset's run folders) is
        given, the other runs are dimmed."""
        self.beginResetModel()
        self.records = list(records)
        self._this = set(this_dataset) if this_dataset is not None else None
        self.endResetModel()

    def _of_dataset(self, r: RunRecord) -> bool:
        return self._this is None or r.path in self._this

    def record(self, row: int) -> RunRecord | None:
        """The run of a row."""
        return self.records[row] if 0 <= row < len(self.records) else None

    def row_of(self, path: Path) -> int:
        """The row of a run folder, or -1."""
        return next((i for i, r in enumerate(self.records) if r.path == path), -1)

    # -- Qt model -----------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.records)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.HEADERS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.HEADER_TIPS[section]
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        return base | Qt.ItemFlag.ItemIsEditable if index.column() == NAME else base

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        r = self.record(index.row()) if index.isValid() else None
        if r is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(r, col)
        if role == Qt.ItemDataRole.EditRole:
            return r.label or r.path.name if col == NAME else self._text(r, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tip(r, col)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (SIZE, PHASE1, PHASE2, DURATION):
            return int(RIGHT)
        if role == Qt.ItemDataRole.ForegroundRole and col == STATE:
            return QBrush(QColor(STATE_COLORS.get(r.state, "#000000")))
        if role == Qt.ItemDataRole.ForegroundRole and not self._of_dataset(r):
            return QBrush(QColor(OTHER_DATASET_COLOR))  # another dataset's run: dimmed
        if role == self.RECORD_ROLE:
            return r
        return None

    def _text(self, r: RunRecord, col: int) -> str:
        if col == STARTED:
            return r.started[:16] if r.started else "?"
        if col == NAME:
            return r.name + (" ✎" if r.note else "")
        if col == BACKBONE:
            return r.backbone or "?"
        if col == SIZE:
            return f"{r.image_size} px" if r.image_size else "?"
        if col in (PHASE1, PHASE2):
            return _pct(r.phase_accuracy.get(1 if col == PHASE1 else 2))
        if col == STATE:
            return r.state if r.has_model or r.state == "running" else f"{r.state}, no model"
        if col == DURATION:
            return format_duration(r.duration_s) if r.state != "running" else "…"
        if col == DATASET:
            return r.dataset.name if r.dataset else "?"
        return ""

    def _tip(self, r: RunRecord, col: int) -> str:
        if col == NAME:
            lines = [r.name, f"Folder: {r.path}"]
            if r.note:
                lines += ["", r.note]
            return "\n".join(lines)
        if col == STATE:
            tip = STATE_TIPS.get(r.state, "")
            if not r.has_model:
                tip += " No epoch finished, so there is no model to open."
            return f"{tip}\n{r.reason}".strip() if r.reason else tip
        if col == DATASET:
            return str(r.dataset) if r.dataset else "Not recorded"
        if col == STARTED and r.started_unix:
            return time.strftime("%A %d %B %Y, %H:%M:%S", time.localtime(r.started_unix))
        if col == DURATION and r.epochs:
            return f"{r.epochs} epochs"
        p1, p2 = r.phase_accuracy.get(1), r.phase_accuracy.get(2)
        if col == PHASE2 and p1 is not None and p2 is not None and p2 <= p1:
            return ("Fine-tuning did not beat phase 1: the model keeps the weights of phase 1 "
                    f"({_pct(p1)}).")
        if col in (PHASE1, PHASE2) and not self._of_dataset(r):
            return f"A run of another dataset: {r.dataset}"
        return ""

    def setData(self, index: _Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        r = self.record(index.row()) if index.isValid() else None
        if r is None or index.column() != NAME or role != Qt.ItemDataRole.EditRole:
            return False
        text = str(value).strip()
        if text == r.path.name:
            text = ""  # typing the folder name back means "no name of my own"
        if text == r.label:
            return False
        try:
            self.records[index.row()] = set_label(r.path, text, r.note)
        except RunError as exc:
            self.label_failed.emit(str(exc))
            return False
        self.dataChanged.emit(index, index)
        return True

    def replace(self, record: RunRecord) -> None:
        """Shows a run's new name or note."""
        row = self.row_of(record.path)
        if row >= 0:
            self.records[row] = record
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.HEADERS) - 1))

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        def key(r: RunRecord) -> tuple[Any, ...]:
            if column == STARTED:
                return (r.started_unix or 0.0,)
            if column in (PHASE1, PHASE2):
                acc = r.phase_accuracy.get(1 if column == PHASE1 else 2)
                return (acc is not None, acc or 0.0)
            if column == SIZE:
                return (r.image_size or 0,)
            if column == DURATION:
                return (r.duration_s or 0.0,)
            return (self._text(r, column).lower(),)

        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        paths = [self.records[i.row()].path for i in old]
        self.records.sort(key=key, reverse=order == Qt.SortOrder.DescendingOrder)
        # The view keeps its selection through persistent indexes: move them with the rows.
        self.changePersistentIndexList(
            old, [self.index(self.row_of(p), i.column()) for p, i in zip(paths, old, strict=True)])
        self.layoutChanged.emit()
