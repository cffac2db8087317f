"""The Evaluate tab: confusion matrix, precision and recall per class, top confusions and
misclassified images.

Readable at 500 classes: the per-class table sorts by any column and a filter box keeps
the classes whose name matches; the matrix shows the first ``MATRIX_MAX`` classes in
that order (an "Other" column keeps each row's total); the top confusions list
the most frequent mistakes. Choosing a confusion (in the list or the matrix) shows its
images in the gallery below. Everything is an item model: nothing per cell is built.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from tlgui.core.confusions import top_confusions
from tlgui.core.intervals import describe_evaluation
from tlgui.core.metrics import Evaluation
from tlgui.core.wording import plural
from tlgui.gui.class_filter import ClassFilterProxy
from tlgui.gui.evaluation_models import (
    PAIR_ROLE,
    ClassMetricsModel,
    ConfusionModel,
    TopConfusionsModel,
    fit_class_columns,
)
from tlgui.gui.icons import icon
from tlgui.gui.thumbnails import ThumbnailCache

MAX_GALLERY = 300
FEW = 12  # up to this many classes: the whole matrix, names on both sides, label order
MATRIX_MAX = 18  # classes the matrix shows at once when there are more (fits 1280 px)
MISS_ROLE = Qt.ItemDataRole.UserRole + 10


def _table(model: Any, tip: str) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.verticalHeader().hide()
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 8)
    view.setToolTip(tip)
    return view


class EvaluatePanel(QWidget):
    """Filled from an ``Evaluation`` after training."""

    evaluate_requested = Signal()
    review_requested = Signal(int)

    def __init__(self, thumbnails: ThumbnailCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails
        self.ev: Evaluation | None = None
        self.pair: tuple[int, int | None] | None = None
        self._items: dict[str, QListWidgetItem] = {}
        self._texts: dict[str, str] = {}
        # What was decided about an image (``CorrectionStore.decision_text``).
        self.decision_text: Callable[[Path], str] = lambda _path: ""
        self.summary = QLabel("Train a model first: its results on the validation images "
                              "appear here.")
        self.summary.setWordWrap(True)
        self.test_line = QLabel()  # test/, measured once after training
        self.test_line.setWordWrap(True)
        self.test_line.hide()
        self.again_button = QPushButton(icon("evaluate"), "Evaluate again")
        self.again_button.clicked.connect(self.evaluate_requested.emit)
        self.again_button.setEnabled(False)
        self.mirror_box = QCheckBox("Average with the mirror image")
        self.mirror_box.setToolTip(
            "Test-time augmentation: classify each image as it is and mirrored left to "
            "right and average the two answers, as an export with the same option does. "
            "Twice the time.")
        # The run's epochs (``val_accuracy`` each): how much the choice of epoch flatters.
        self.history_source: Callable[[], list[dict[str, Any]]] = lambda: []
        # The run's head cross-validated over every photo (``cross_validation``), if any.
        self.cross_validation_source: Callable[[], Any] = lambda: None
        self.review_button = QPushButton(icon("audit"), "Review mistakes…")
        self.review_button.setToolTip("Look at each mistake large, next to the most similar "
                                      "images of both classes, and correct its label with "
                                      "the keyboard")
        self.review_button.setEnabled(False)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.review_button)
        top.addWidget(self.mirror_box)
        top.addWidget(self.again_button)

        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter classes by name…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setToolTip("Keeps the classes whose name holds every word typed, in "
                                    "the tables and the matrix")
        self.filter_edit.textChanged.connect(self.set_filter)
        self.filter_edit.setMinimumWidth(self.fontMetrics().horizontalAdvance("x" * 30))
        self.matrix_note = QLabel()
        self.matrix_note.setWordWrap(True)
        filters = QHBoxLayout()
        filters.addWidget(self.filter_edit)
        filters.addWidget(self.matrix_note, 1)

        self.confusion_model = ConfusionModel()
        self.confusion = QTableView()
        self.confusion.setModel(self.confusion_model)
        self.confusion.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion.setToolTip("Rows: the true class. Columns: what the model said. "
                                  "The diagonal counts the right answers. Click a cell to "
                                  "see its images below.")
        self.confusion.verticalHeader().setDefaultSectionSize(
            self.confusion.fontMetrics().height() + 8)
        self.confusion.clicked.connect(self._matrix_clicked)

        self.metrics_model = ClassMetricsModel()
        self.metrics_proxy = ClassFilterProxy()
        self.metrics_proxy.setSourceModel(self.metrics_model)
        self.metrics = _table(self.metrics_proxy,
                              "Precision: of the photos the model put in this class, the "
                              "share that belong there.\nRecall: of the photos of this "
                              "class, the share the model found.\nMistakes: photos of this "
                              "class put in another.\nClick a column title to sort; the "
                              "matrix follows this order.")
        self.metrics.setSortingEnabled(True)
        self.metrics.horizontalHeader().setSortIndicatorClearable(True)
        fit_class_columns(self.metrics, stretch=1)
        # A sort by the user; filtering and new results fill the matrix themselves.
        self.metrics_proxy.layoutChanged.connect(self._fill_matrix)

        self.top_model = TopConfusionsModel()
        self.top_proxy = ClassFilterProxy()
        self.top_proxy.setSourceModel(self.top_model)
        self.top = _table(self.top_proxy, "The most frequent mistakes, most images first. "
                                          "Double-click one to see its images below.")
        self.top.setSortingEnabled(True)
        fit_class_columns(self.top, stretch=2)
        self.top.activated.connect(self._confusion_chosen)
        self.top.doubleClicked.connect(self._confusion_chosen)

        self.cbox = QGroupBox("Confusion matrix (rows: true class, columns: predicted)")
        QVBoxLayout(self.cbox).addWidget(self.confusion)
        mbox = QGroupBox("Per class")
        QVBoxLayout(mbox).addWidget(self.metrics)
        self.top_box = QGroupBox("Top confusions")
        QVBoxLayout(self.top_box).addWidget(self.top)
        tables = QSplitter()
        tables.addWidget(self.cbox)
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
            lambda item: self.review_requested.emit(item.data(MISS_ROLE)))
        self.review_button.clicked.connect(self._review_current)
        self.show_all_button = QPushButton("Show all mistakes")
        self.show_all_button.clicked.connect(lambda: self.show_pair(None))
        self.show_all_button.hide()
        self.gallery_title = QLabel()
        self.gallery_box = QGroupBox()
        gv = QVBoxLayout(self.gallery_box)
        row = QHBoxLayout()
        row.addWidget(self.gallery_title, 1)
        row.addWidget(self.show_all_button)
        gv.addLayout(row)
        gv.addWidget(self.gallery)

        # The confusions beside the images they lead to.
        bottom = QSplitter()
        bottom.addWidget(self.top_box)
        bottom.addWidget(self.gallery_box)
        bottom.setStretchFactor(0, 2)
        bottom.setStretchFactor(1, 3)
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.addWidget(tables)
        self.split.addWidget(bottom)
        self.split.setStretchFactor(1, 1)
        v = QVBoxLayout(self)
        v.addLayout(top)
        v.addWidget(self.test_line)
        v.addLayout(filters)
        v.addWidget(self.split, 1)
        thumbnails.ready.connect(self._on_thumbnail)
        self._set_gallery_title()

    # -- filling ------------------------------------------------------------------
    def show_evaluation(self, ev: Evaluation) -> None:
        """Fills the tables and the gallery."""
        self.ev = ev
        n = len(ev.class_names)
        self.again_button.setEnabled(True)
        self.summary.setText(self._summary_text(ev))
        many = n > FEW
        if not many:  # a filter left from a bigger evaluation would hide classes unseen
            self.filter_edit.clear()
        self.filter_edit.setVisible(many)
        self.matrix_note.setVisible(many)
        self.metrics_proxy.set_names(ev.class_names)
        self.top_proxy.set_names(ev.class_names)
        self.top_model.set_confusions(ev.class_names, top_confusions(ev.confusion))
        self.top_box.setTitle(f"Top confusions ({len(self.top_model.rows):,})")
        self.metrics_model.set_evaluation(ev)
        # Both models come back in their own order; the views sort them again.
        # Many classes: the worst first; a few: in their own order, as the folders are.
        # (Column -1 is the source's order; descending would reverse it.)
        if many:
            self.metrics.sortByColumn(ClassMetricsModel.MISTAKES, Qt.SortOrder.DescendingOrder)
        else:
            self.metrics.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.top.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        mode = QHeaderView.ResizeMode.Stretch if not many else QHeaderView.ResizeMode.Fixed
        self.confusion.horizontalHeader().setSectionResizeMode(mode)
        self.confusion.verticalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.Stretch if not many else QHeaderView.ResizeMode.Fixed)
        self.show_pair(None)
        self._fill_matrix()
        self._fit_tables(n)

    def _summary_text(self, ev: Evaluation) -> str:
        if not ev.total:
            return f"No {html.escape(ev.split)} image could be read, so there is no figure."
        figure, caveat = describe_evaluation(int(np.trace(ev.confusion)), ev.total, ev.split,
                                             ev.mirror, self.history_source())
        cv = self.cross_validation_source()
        if cv is not None:
            caveat = f"{caveat} {cv.sentence()}".strip()
        head, _, rest = figure.partition(" of ")
        wrong = len(ev.misses)
        return (f"<b>{head}</b> of {html.escape(rest)}; "
                + (f"{plural(wrong, 'mistake')}." if wrong else "no mistakes.")
                + (f"<br><small>{html.escape(caveat)}</small>" if caveat else ""))

    def show_test(self, ev: Evaluation) -> None:
        """The figure on ``test/``, measured once after training, under the summary."""
        if not ev.total:
            self.test_line.hide()
            return
        figure, caveat = describe_evaluation(int(np.trace(ev.confusion)), ev.total, "test",
                                             ev.mirror)
        self.test_line.setText(f"<b>Test:</b> {html.escape(figure)}, measured once after "
                               f"training. <small>{html.escape(caveat)}</small>")
        self.test_line.show()

    def set_filter(self, text: str) -> None:
        """Keeps the classes whose name holds every word of ``text``."""
        self.metrics_proxy.set_text(text)
        self.top_proxy.set_text(text)
        self._fill_matrix()

    def shown_labels(self) -> list[int]:
        """The classes of the per-class table, in its order, as far as the matrix shows."""
        proxy = self.metrics_proxy
        rows = proxy.rowCount()
        if self.ev is not None and len(self.ev.class_names) <= FEW:
            limit = rows
        else:
            limit = min(rows, MATRIX_MAX)
        model = self.metrics_model
        return [model.item(proxy.mapToSource(proxy.index(r, 0)).row()) for r in range(limit)]

    def _fill_matrix(self, *_: object) -> None:
        ev = self.ev
        if ev is None:
            return
        labels = self.shown_labels()
        many = len(ev.class_names) > FEW
        self.confusion_model.set_classes(ev, labels, numbered=many)
        if many:
            # As narrow as the largest count shown (or the column numbers) allows.
            fm = self.confusion.fontMetrics()
            widest = int(np.asarray(ev.confusion)[labels].max()) if labels else 0
            digits = max(len(str(widest)), len(str(len(labels))))
            width = fm.horizontalAdvance("0" * digits) + 12
            header = self.confusion.horizontalHeader()
            header.setMinimumSectionSize(width)
            header.setDefaultSectionSize(width)
            for col in range(len(labels)):
                self.confusion.setColumnWidth(col, width)
            if self.confusion_model.has_other:
                other = fm.horizontalAdvance("Other") + 16
                self.confusion.setColumnWidth(len(labels), other)
        matching, n = self.metrics_proxy.rowCount(), len(ev.class_names)
        filtered = self.metrics_proxy.kept() is not None
        which = (f"the {matching:,} classes that match the filter (of {n:,})" if filtered
                 else f"{n:,} classes")
        if len(labels) < matching:
            which = f"the first {len(labels):,} of " + which.removeprefix("the ")
        self.matrix_note.setText(
            f"Matrix: {which}, in the order of the per-class table (click its column "
            "titles to sort); the other classes are counted under <i>Other</i>.")
        self.cbox.setTitle("Confusion matrix (rows: true class, columns: predicted"
                           + (", by the numbers of the rows)" if many else ")"))

    # -- choosing a confusion -----------------------------------------------------
    def _matrix_clicked(self, index: QModelIndex) -> None:
        true, predicted = self.confusion_model.pair(index)
        self.show_pair(None if predicted == true else (true, predicted))

    def _confusion_chosen(self, index: QModelIndex) -> None:
        pair = index.data(PAIR_ROLE)
        if pair is None:
            return
        self.show_pair(pair)
        labels = self.confusion_model.labels
        if pair[0] in labels and pair[1] in labels:  # its cell, when the matrix has it
            cell = self.confusion_model.index(labels.index(pair[0]), labels.index(pair[1]))
            self.confusion.setCurrentIndex(cell)
            self.confusion.scrollTo(cell)

    def show_pair(self, pair: tuple[int, int | None] | None) -> None:
        """Shows the mistakes of one confusion in the gallery (predicted None: any other
        class than those of the matrix; pair None: all mistakes)."""
        self.pair = pair
        self.gallery.clear()
        self._items, self._texts = {}, {}
        ev = self.ev
        if ev is None:
            self._set_gallery_title()
            return
        names = ev.class_names
        shown = set(self.confusion_model.labels)
        self.review_button.setEnabled(bool(ev.misses))
        found = 0
        for k, miss in enumerate(ev.misses):
            if pair is not None and (miss.true_label != pair[0] or (
                    miss.predicted_label != pair[1] if pair[1] is not None
                    else miss.predicted_label in shown)):
                continue
            found += 1
            if found > MAX_GALLERY:
                continue
            text = (f"{names[miss.true_label]} → {names[miss.predicted_label]}\n"
                    f"{miss.confidence:.0%} sure")
            tile = QListWidgetItem(text)
            key = str(miss.path)
            tile.setData(Qt.ItemDataRole.UserRole, key)
            tile.setData(MISS_ROLE, k)
            tile.setToolTip(f"{miss.path}\nTrue class: {names[miss.true_label]} "
                            f"({miss.true_probability:.0%})\nPredicted: "
                            f"{names[miss.predicted_label]} ({miss.confidence:.0%})")
            self.gallery.addItem(tile)
            self._items[key] = tile
            self._texts[key] = text
            pix = self.thumbnails.get(Path(key))
            if pix is not None:
                tile.setIcon(QIcon(pix))
        self.show_all_button.setVisible(pair is not None)
        self._set_gallery_title(found)
        self.refresh_decisions()

    def _set_gallery_title(self, found: int = 0) -> None:
        ev, pair = self.ev, self.pair
        if ev is None:
            text = "Misclassified images"
        elif pair is not None:
            said = ev.class_names[pair[1]] if pair[1] is not None else "other classes"
            text = (f"<b>{ev.class_names[pair[0]]} → {said}</b>: "
                    f"{plural(found, 'image')} (double-click to review)")
        elif ev.misses:
            text = (f"Misclassified images, worst first ({len(ev.misses):,}"
                    + (f", the first {MAX_GALLERY} shown" if found > MAX_GALLERY else "")
                    + "; double-click to review)")
        else:
            text = "Misclassified images: none"
        self.gallery_title.setText(text)

    def _review_current(self) -> None:
        item = self.gallery.currentItem() or self.gallery.item(0)
        self.review_requested.emit(item.data(MISS_ROLE) if item is not None else 0)

    def refresh_decisions(self) -> None:
        """Shows on each tile what was decided about its image."""
        for key, tile in self._items.items():
            decided = self.decision_text(Path(key))
            tile.setText(self._texts[key] + (f"\n✔ {decided}" if decided else ""))

    def _fit_tables(self, n: int) -> None:
        """Gives the tables the height their rows need (up to 12 classes) and the
        mistakes what is left, so a few classes never need scrolling."""
        if n > FEW:
            total = sum(self.split.sizes()) or self.height()
            self.split.setSizes([total * 3 // 5, total - total * 3 // 5])
            return
        for table in (self.confusion, self.metrics):
            table.resizeRowsToContents()
        rows = min(n, FEW)
        row_h = max(self.metrics.rowHeight(0) if n else 24, self.confusion.rowHeight(0)
                    if n else 24)
        needed = self.metrics.horizontalHeader().height() + rows * row_h + 70
        total = sum(self.split.sizes()) or self.height()
        self.split.setSizes([needed, max(120, total - needed)])

    def clear(self) -> None:
        self.summary.setText("Train a model first: its results on the validation images "
                             "appear here.")
        self.ev = None
        self.pair = None
        self.test_line.hide()
        self.metrics_model.set_evaluation(None)
        self.confusion_model.set_classes(None, [], numbered=False)
        self.top_model.set_confusions((), [])
        self.gallery.clear()
        self._items, self._texts = {}, {}
        self.show_all_button.hide()
        self._set_gallery_title()
        self.again_button.setEnabled(False)
        self.review_button.setEnabled(False)

    def _on_thumbnail(self, key: str) -> None:
        item = self._items.get(key)
        if item is not None:
            pix = self.thumbnails.get(key)
            if pix is not None and not pix.isNull():
                item.setIcon(QIcon(pix))
