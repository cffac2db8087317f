"""Item models of the Evaluate tab: per-class measures, the confusion matrix, top confusions.

Models, not ``QTableWidget`` items: a view asks only for the cells it paints, so 500
classes cost three small arrays, never 250,000 items. The per-class table is sorted
by the models themselves and filtered through ``class_filter.ClassFilterProxy``; the
matrix shows the classes in that order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QHeaderView, QTableView

from tlgui.core.confusions import Confusion, mistakes_per_class
from tlgui.core.metrics import Evaluation
from tlgui.gui.class_filter import SortedRowsModel

PAIR_ROLE = Qt.ItemDataRole.UserRole + 3
RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
CENTER = int(Qt.AlignmentFlag.AlignCenter)
_Index = QModelIndex | QPersistentModelIndex


def pct(x: float) -> str:
    """A share as a percentage; a dash when there is none (NaN)."""
    return "–" if math.isnan(x) else f"{x:.1%}"


def cell_color(share: float, diagonal: bool) -> QColor:
    """White to blue for right answers, white to red for mistakes."""
    base = (33, 102, 172) if diagonal else (203, 24, 29)
    s = max(0.0, min(1.0, share))
    return QColor(*(round(255 + (c - 255) * s * 0.85) for c in base))


class ClassMetricsModel(SortedRowsModel):
    """One row per class: precision, recall, images and mistakes."""

    HEADERS = ("Class", "Precision", "Recall", "Images", "Mistakes")
    CLASS, PRECISION, RECALL, IMAGES, MISTAKES = range(5)

    def __init__(self) -> None:
        super().__init__()
        self.ev: Evaluation | None = None
        self._mistakes = np.zeros(0, dtype=np.int64)

    def set_evaluation(self, ev: Evaluation | None) -> None:
        self.beginResetModel()
        self.ev = ev
        self._mistakes = (mistakes_per_class(ev.confusion) if ev is not None
                          else np.zeros(0, dtype=np.int64))
        self.reset_order()
        self.endResetModel()

    def item_count(self) -> int:
        return 0 if self.ev is None else len(self.ev.class_names)

    def classes_of(self, item: int) -> tuple[int, ...]:
        return (item,)

    def sort_keys(self, column: int) -> list[Any] | None:
        if self.ev is None or column >= len(self.HEADERS):
            return None
        if column == self.CLASS:
            return [name.casefold() for name in self.ev.class_names]
        if column == self.MISTAKES:
            return [int(x) for x in self._mistakes]
        if column == self.IMAGES:
            return [m.support for m in self.ev.per_class]
        attr = "precision" if column == self.PRECISION else "recall"
        # A class with nothing to measure sorts below every measured one.
        return [-1.0 if math.isnan(v) else v
                for v in (getattr(m, attr) for m in self.ev.per_class)]

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self.ev is None:
            return None
        row, col = self.item(index.row()), index.column()
        m = self.ev.per_class[row]
        values: tuple[Any, ...] = (m.name, m.precision, m.recall, m.support,
                                   int(self._mistakes[row]))
        if role == Qt.ItemDataRole.DisplayRole:
            if col in (self.PRECISION, self.RECALL):
                return pct(values[col])
            return values[col] if col == self.CLASS else f"{values[col]:,}"
        if role == Qt.ItemDataRole.TextAlignmentRole and col:
            return RIGHT
        if role == Qt.ItemDataRole.ToolTipRole and col == self.CLASS:
            return m.name
        return None


class ConfusionModel(QAbstractTableModel):
    """The matrix restricted to chosen classes, in the chosen order.

    Rows and columns are the same classes; a last "Other" column counts what
    the row's images were predicted as outside them, so each row still adds up.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ev: Evaluation | None = None
        self.labels: list[int] = []
        self._totals = np.zeros(0, dtype=np.int64)
        self.numbered = False

    def set_classes(self, ev: Evaluation | None, labels: Sequence[int],
                    numbered: bool) -> None:
        """Shows the rows and columns of ``labels``; ``numbered``: columns by position."""
        self.beginResetModel()
        self.ev = ev
        self.labels = list(labels)
        self.numbered = numbered
        self._totals = (np.asarray(ev.confusion).sum(axis=1) if ev is not None
                        else np.zeros(0, dtype=np.int64))
        self.endResetModel()

    @property
    def has_other(self) -> bool:
        return self.ev is not None and len(self.labels) < len(self.ev.class_names)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.labels)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.labels) + int(self.has_other)

    def pair(self, index: _Index) -> tuple[int, int | None]:
        """(true label, predicted label); None for the "Other classes" column."""
        col = index.column()
        return (self.labels[index.row()],
                self.labels[col] if col < len(self.labels) else None)

    def count(self, index: _Index) -> int:
        assert self.ev is not None
        true, predicted = self.pair(index)
        row = np.asarray(self.ev.confusion[true])
        if predicted is None:
            return int(row.sum() - row[self.labels].sum())
        return int(row[predicted])

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self.ev is None:
            return None
        true, predicted = self.pair(index)
        if role == Qt.ItemDataRole.DisplayRole:
            count = self.count(index)
            # Many classes: a blank for no image, so the counts that matter stand out.
            return "" if count == 0 and self.numbered and predicted != true else str(count)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return CENTER
        if role == Qt.ItemDataRole.BackgroundRole:
            share = self.count(index) / max(1, int(self._totals[true]))
            return QBrush(cell_color(share, predicted == true))
        if role == Qt.ItemDataRole.ToolTipRole:
            names = self.ev.class_names
            said = names[predicted] if predicted is not None else "one of the other classes"
            return f"{self.count(index)} '{names[true]}' images predicted as '{said}'"
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if self.ev is None or role not in (Qt.ItemDataRole.DisplayRole,
                                           Qt.ItemDataRole.ToolTipRole):
            return None
        names = self.ev.class_names
        if section >= len(self.labels):
            return ("Other" if role == Qt.ItemDataRole.DisplayRole else
                    "Other classes: images of the row's class predicted as a class not "
                    "shown here")
        name = names[self.labels[section]]
        if role == Qt.ItemDataRole.ToolTipRole or not self.numbered:
            return name
        # Many columns: numbers keep them narrow; the rows say which class each is.
        return (str(section + 1) if orientation == Qt.Orientation.Horizontal
                else f"{section + 1}  {name}")


class TopConfusionsModel(SortedRowsModel):
    """The most frequent mistakes: true class, predicted class, images, share."""

    HEADERS = ("True class", "Predicted as", "Images", "Share of class")

    def __init__(self) -> None:
        super().__init__()
        self.names: tuple[str, ...] = ()
        self.rows: list[Confusion] = []

    def set_confusions(self, names: tuple[str, ...], rows: list[Confusion]) -> None:
        self.beginResetModel()
        self.names, self.rows = names, rows
        self.reset_order()
        self.endResetModel()

    def item_count(self) -> int:
        return len(self.rows)

    def classes_of(self, item: int) -> tuple[int, ...]:
        c = self.rows[item]
        return (c.true_label, c.predicted_label)

    def sort_keys(self, column: int) -> list[Any] | None:
        if column == 0:
            return [self.names[c.true_label].casefold() for c in self.rows]
        if column == 1:
            return [self.names[c.predicted_label].casefold() for c in self.rows]
        if column == 2:
            return [c.count for c in self.rows]
        return [c.share for c in self.rows] if column == 3 else None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        c, col = self.rows[self.item(index.row())], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (self.names[c.true_label] if col == 0 else
                    self.names[c.predicted_label] if col == 1 else
                    f"{c.count:,}" if col == 2 else pct(c.share))
        if role == PAIR_ROLE:
            return (c.true_label, c.predicted_label)
        if role == Qt.ItemDataRole.TextAlignmentRole and col >= 2:
            return RIGHT
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"{c.count} of the {self.names[c.true_label]} images "
                    f"({pct(c.share)}) were predicted as {self.names[c.predicted_label]}. "
                    "Double-click to see them.")
        return None


def fit_class_columns(view: QTableView, stretch: int) -> None:
    """The first ``stretch`` (name) columns share the width; the numbers get what their
    title and a sort arrow need, measured once (not from every one of 500 rows)."""
    header = view.horizontalHeader()
    model = view.model()
    fm = view.fontMetrics()
    for col in range(model.columnCount()):
        if col < stretch:
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Stretch)
            continue
        title = str(model.headerData(col, Qt.Orientation.Horizontal))
        header.setSectionResizeMode(col, QHeaderView.ResizeMode.Fixed)
        view.setColumnWidth(col, max(fm.horizontalAdvance(title),
                                     fm.horizontalAdvance("100.0%")) + 28)
