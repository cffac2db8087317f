"""The Data tab's tables: one row per class with its counts and a strip of examples, and
the skipped files.

A model, not a widget per row: 500 classes of 100,000 files cost one pass over the
samples; the strip's delegate decodes only the thumbnails of the rows on screen.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
)
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QStyleOptionViewItem

from tlgui.gui.class_filter import HeadedTableModel, SortedRowsModel
from tlgui.gui.thumbnails import ThumbnailDelegateBase, draw_thumbnail

if TYPE_CHECKING:
    from tlgui.core.dataset import Dataset, Problem

STRIP_SIZE = 64
STRIP_MIN = 3  # thumbnails the examples column asks room for; it shows as many as fit
_ModelIndex = QModelIndex | QPersistentModelIndex


class ClassTableModel(SortedRowsModel):
    """One row per class: counts per split and its files (the strip shows the first)."""

    HEADERS = ("Class", "Images", "Training", "Validation", "Examples")
    EXAMPLES_ROLE = Qt.ItemDataRole.UserRole + 1

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[tuple[str, int, int, int, list[Path]]] = []

    def set_dataset(self, ds: Dataset | None) -> None:
        self.beginResetModel()
        self._rows = []
        if ds is not None:
            n = len(ds.class_names)
            train, val, total = [0] * n, [0] * n, [0] * n
            # One pass over the samples (train first), not one per class and split: 500
            # classes of 100,000 files stay instant.
            files: list[list[Path]] = [[] for _ in range(n)]
            for counts, samples in ((train, ds.train), (val, ds.validation), (None, ds.test)):
                for sample in samples:
                    files[sample.label].append(sample.path)
                    total[sample.label] += 1
                    if counts is not None:
                        counts[sample.label] += 1
            for i, name in enumerate(ds.class_names):
                self._rows.append((name, total[i], train[i], val[i], files[i]))
        self.reset_order()
        self.endResetModel()

    def item_count(self) -> int:
        return len(self._rows)

    def classes_of(self, item: int) -> tuple[int, ...]:
        return (item,)

    def sort_keys(self, column: int) -> list[Any] | None:
        if column == 0:
            return [row[0].casefold() for row in self._rows]
        return [row[column] for row in self._rows] if 0 < column < 4 else None

    def widest_count(self) -> int:
        """The largest number the count columns show."""
        return max((row[1] for row in self._rows), default=0)

    def data(self, index: _ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = self._rows[self.item(index.row())], index.column()
        if role == Qt.ItemDataRole.DisplayRole and col < 4:
            return row[col] if col == 0 else f"{row[col]:,}"
        if role == Qt.ItemDataRole.TextAlignmentRole and 0 < col < 4:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == self.EXAMPLES_ROLE and col == 4:
            return row[4]
        if role == Qt.ItemDataRole.ToolTipRole and col == 0:
            return row[0]
        return None


class ThumbStripDelegate(ThumbnailDelegateBase):
    """Paints a row of thumbnails, asking the cache for those it lacks."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _ModelIndex) -> None:
        super().paint(painter, option, index)
        paths = index.data(ClassTableModel.EXAMPLES_ROLE) or []
        rect: QRect = option.rect  # type: ignore[attr-defined]
        x = rect.x() + 4
        for path in paths:  # as many as fit the column; only those are decoded
            if x + STRIP_SIZE > rect.right():
                break
            cell = QRect(x, rect.y() + (rect.height() - STRIP_SIZE) // 2, STRIP_SIZE, STRIP_SIZE)
            draw_thumbnail(painter, self.cache, path, cell, inset=2)
            x += STRIP_SIZE + 4

    def sizeHint(self, option: QStyleOptionViewItem, index: _ModelIndex) -> QSize:
        return QSize(STRIP_MIN * (STRIP_SIZE + 4) + 4, STRIP_SIZE + 8)


class ProblemTableModel(HeadedTableModel):
    """The skipped files: where (relative to the dataset) and why.

    A model, so that a folder with 20,000 stray files costs a list, not 40,000 items
    made on the GUI thread; paths are made relative only for the rows painted.
    """

    HEADERS = ("Skipped file", "Why")
    PATH_ROLE = Qt.ItemDataRole.UserRole

    def __init__(self) -> None:
        super().__init__()
        self._root: Path | None = None
        self._problems: tuple[Problem, ...] = ()

    def set_problems(self, root: Path, problems: tuple[Problem, ...]) -> None:
        self.beginResetModel()
        self._root, self._problems = root, problems
        self.endResetModel()

    def rowCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._problems)

    def shown_path(self, row: int) -> str:
        path = self._problems[row].path
        try:
            return str(path.relative_to(self._root)) if self._root else str(path)
        except ValueError:
            return str(path)

    def data(self, index: _ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        problem, col = self._problems[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.shown_path(index.row()) if col == 0 else problem.reason
        if role == Qt.ItemDataRole.ToolTipRole:
            return str(problem.path) if col == 0 else problem.reason
        if role == self.PATH_ROLE:
            return str(problem.path)
        return None
