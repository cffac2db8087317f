"""The Evaluate tab: confusion matrix, precision and recall per class, misclassified images."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tlgui.gui.icons import icon
from tlgui.gui.thumbnails import ThumbnailCache

MAX_GALLERY = 300

RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


def plural(n: int, word: str) -> str:
    """``word`` for one, ``word + s`` otherwise."""
    return word if n == 1 else word + "s"


def _pct(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.1%}"


def _cell_color(share: float, diagonal: bool) -> QColor:
    """White to blue for right answers, white to red for mistakes."""
    base = (33, 102, 172) if diagonal else (203, 24, 29)
    s = max(0.0, min(1.0, share))
    return QColor(*(round(255 + (c - 255) * s * 0.85) for c in base))


class EvaluatePanel(QWidget):
    """Filled from an ``Evaluation`` after training."""

    evaluate_requested = Signal()
    review_requested = Signal(int)

    def __init__(self, thumbnails: ThumbnailCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails
        self._items: dict[str, QListWidgetItem] = {}
        self._texts: dict[str, str] = {}
        # What was decided about an image (``CorrectionStore.decision_text``).
        self.decision_text: Callable[[Path], str] = lambda _path: ""
        self.summary = QLabel("Train a model first: its results on the validation images "
                              "appear here.")
        self.summary.setWordWrap(True)
        self.again_button = QPushButton(icon("evaluate"), "Evaluate again")
        self.again_button.clicked.connect(self.evaluate_requested.emit)
        self.again_button.setEnabled(False)
        self.review_button = QPushButton(icon("audit"), "Review mistakes…")
        self.review_button.setToolTip("Look at each mistake large, next to the most similar "
                                      "images of both classes, and correct its label with "
                                      "the keyboard")
        self.review_button.setEnabled(False)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.review_button)
        top.addWidget(self.again_button)

        self.confusion = QTableWidget()
        self.confusion.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion.setToolTip("Rows: the true class. Columns: what the model said. "
                                  "The diagonal counts the right answers.")
        self.metrics = QTableWidget(0, 4)
        self.metrics.setHorizontalHeaderLabels(["Class", "Precision", "Recall", "Images"])
        self.metrics.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metrics.verticalHeader().hide()
        self.metrics.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.metrics.setToolTip("Precision: of the photos the model put in this class, the "
                                "share that belong there.\nRecall: of the photos of this "
                                "class, the share the model found.")
        cbox = QGroupBox("Confusion matrix (rows: true class, columns: predicted)")
        QVBoxLayout(cbox).addWidget(self.confusion)
        mbox = QGroupBox("Per class")
        QVBoxLayout(mbox).addWidget(self.metrics)
        tables = QSplitter()
        tables.addWidget(cbox)
        tables.addWidget(mbox)
        tables.setStretchFactor(0, 3)
        tables.setStretchFactor(1, 2)

        self.gallery = QListWidget()
        self.gallery.setViewMode(QListView.ViewMode.IconMode)
        self.gallery.setIconSize(QSize(thumbnails.size, thumbnails.size))
        self.gallery.setGridSize(QSize(thumbnails.size + 70, thumbnails.size + 64))
        self.gallery.setResizeMode(QListView.ResizeMode.Adjust)
        self.gallery.setMovement(QListView.Movement.Static)
        self.gallery.setWordWrap(True)
        self.gallery.setAcceptDrops(False)
        self.gallery.setDragEnabled(False)
        self.gallery.itemActivated.connect(
            lambda item: self.review_requested.emit(self.gallery.row(item)))
        self.review_button.clicked.connect(lambda: self.review_requested.emit(
            max(0, self.gallery.currentRow())))
        self.gallery_box = QGroupBox("Misclassified images, worst first (double-click to "
                                     "review)")
        QVBoxLayout(self.gallery_box).addWidget(self.gallery)

        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.addWidget(tables)
        self.split.addWidget(self.gallery_box)
        self.split.setStretchFactor(1, 1)
        for table in (self.confusion, self.metrics):
            table.verticalHeader().setDefaultSectionSize(
                table.fontMetrics().height() + 8)
        v = QVBoxLayout(self)
        v.addLayout(top)
        v.addWidget(self.split, 1)
        thumbnails.ready.connect(self._on_thumbnail)

    def show_evaluation(self, ev: Any) -> None:
        """Fills the tables and the gallery."""
        names = list(ev.class_names)
        n = len(names)
        self.again_button.setEnabled(True)
        wrong = len(ev.misses)
        self.summary.setText(
            f"<b>{ev.accuracy:.1%}</b> of {ev.total:,} {ev.split} images classified correctly; "
            + (f"{wrong:,} {plural(wrong, 'mistake')}." if wrong else "no mistakes."))
        self.confusion.setRowCount(n)
        self.confusion.setColumnCount(n)
        self.confusion.setHorizontalHeaderLabels(names)
        self.confusion.setVerticalHeaderLabels(names)
        for i in range(n):
            row_total = int(ev.confusion[i].sum()) or 1
            for j in range(n):
                count = int(ev.confusion[i, j])
                item = QTableWidgetItem(str(count))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setBackground(QBrush(_cell_color(count / row_total, i == j)))
                item.setToolTip(f"{count} '{names[i]}' images predicted as '{names[j]}'")
                self.confusion.setItem(i, j, item)
        mode = (QHeaderView.ResizeMode.Stretch if n <= 12
                else QHeaderView.ResizeMode.ResizeToContents)
        self.confusion.horizontalHeader().setSectionResizeMode(mode)
        self.confusion.verticalHeader().setSectionResizeMode(mode)
        self.metrics.setRowCount(n)
        for i, m in enumerate(ev.per_class):
            for j, text in enumerate((m.name, _pct(m.precision), _pct(m.recall), str(m.support))):
                item = QTableWidgetItem(text)
                if j:
                    item.setTextAlignment(RIGHT)
                self.metrics.setItem(i, j, item)
        self.gallery.clear()
        self._items, self._texts = {}, {}
        self.review_button.setEnabled(bool(ev.misses))
        for miss in ev.misses[:MAX_GALLERY]:
            text = (f"{names[miss.true_label]} → {names[miss.predicted_label]}\n"
                    f"{miss.confidence:.0%} sure")
            tile = QListWidgetItem(text)
            key = str(miss.path)
            tile.setData(Qt.ItemDataRole.UserRole, key)
            tile.setToolTip(f"{miss.path}\nTrue class: {names[miss.true_label]} "
                            f"({miss.true_probability:.0%})\nPredicted: "
                            f"{names[miss.predicted_label]} ({miss.confidence:.0%})")
            self.gallery.addItem(tile)
            self._items[key] = tile
            self._texts[key] = text
            pix = self.thumbnails.get(Path(key))
            if pix is not None:
                tile.setIcon(QIcon(pix))
        self.gallery_box.setTitle(
            f"Misclassified images, worst first ({len(ev.misses)}; double-click to review)"
            if ev.misses else "Misclassified images: none")
        self.refresh_decisions()
        self._fit_tables(n)

    def refresh_decisions(self) -> None:
        """Shows on each tile what was decided about its image."""
        for key, tile in self._items.items():
            decided = self.decision_text(Path(key))
            tile.setText(self._texts[key] + (f"\n✔ {decided}" if decided else ""))

    def _fit_tables(self, n: int) -> None:
        """Gives the tables the height their rows need (up to 12 classes) and the
        mistakes what is left, so a few classes never need scrolling."""
        for table in (self.confusion, self.metrics):
            table.resizeRowsToContents()
        rows = min(n, 12)
        row_h = max(self.metrics.rowHeight(0) if n else 24, self.confusion.rowHeight(0)
                    if n else 24)
        needed = self.metrics.horizontalHeader().height() + rows * row_h + 70
        total = sum(self.split.sizes()) or self.height()
        self.split.setSizes([needed, max(120, total - needed)])

    def clear(self) -> None:
        self.summary.setText("Train a model first: its results on the validation images "
                             "appear here.")
        self.confusion.setRowCount(0)
        self.metrics.setRowCount(0)
        self.gallery.clear()
        self._items, self._texts = {}, {}
        self.again_button.setEnabled(False)
        self.review_button.setEnabled(False)

    def _on_thumbnail(self, key: str) -> None:
        item = self._items.get(key)
        if item is not None:
            pix = self.thumbnails.get(key)
            if pix is not None and not pix.isNull():
                item.setIcon(QIcon(pix))
