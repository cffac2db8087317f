"""The Data tab: open a folder of class folders, see classes, split, warnings and problems."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import QDesktopServices, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QStyleOptionViewItem,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from tlgui.core.wording import plural
from tlgui.gui.class_grid import ClassGrid
from tlgui.gui.icons import icon
from tlgui.gui.thumbnails import ThumbnailCache, ThumbnailDelegateBase, draw_thumbnail

if TYPE_CHECKING:
    from tlgui.core.dataset import Dataset

STRIP_SIZE = 64
CLASS_COLUMN_MAX = 220
STRIP_MIN = 3  # thumbnails the examples column asks room for; it shows as many as fit
EMPTY_WIDTH = 640
_ModelIndex = QModelIndex | QPersistentModelIndex


class ClassTableModel(QAbstractTableModel):
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
            total, train, val = ds.counts("all"), ds.counts("train"), ds.counts("validation")
            # One pass over the samples (train first), not one per class: 500 classes of
            # 100,000 files stay instant.
            files: list[list[Path]] = [[] for _ in ds.class_names]
            for sample in (*ds.train, *ds.validation, *ds.test):
                files[sample.label].append(sample.path)
            for name, paths in zip(ds.class_names, files, strict=True):
                self._rows.append((name, total[name], train[name], val[name], paths))
        self.endResetModel()

    def rowCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def data(self, index: _ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = self._rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole and col < 4:
            return row[col] if col == 0 else f"{row[col]:,}"
        if role == Qt.ItemDataRole.TextAlignmentRole and 0 < col < 4:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == self.EXAMPLES_ROLE and col == 4:
            return row[4]
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
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


class DatasetPanel(QWidget):
    """Empty state with instructions, then the scanned dataset."""

    open_requested = Signal(Path)
    sample_requested = Signal()

    def __init__(self, thumbnails: ThumbnailCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails
        self.stack = QStackedWidget()
        self.stack.addWidget(self._empty_page())
        self.details = self._details_page()
        self.stack.addWidget(self.details)
        layout = QVBoxLayout(self)
        layout.addWidget(self.stack)
        thumbnails.ready.connect(lambda _key: self.class_view.viewport().update())

    # -- pages --------------------------------------------------------------------
    def _empty_page(self) -> QWidget:
        page = QWidget()
        art = QLabel(pixmap=icon("app").pixmap(96, 96))
        art.setAlignment(Qt.AlignmentFlag.AlignCenter)
        title = QLabel("<h2>Drop a folder of class folders here</h2>")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label = QLabel(
            "Put the photos of each class in its own sub-folder, named after the class "
            "(for example <i>flowers/roses</i>, <i>flowers/tulips</i>), then drop the top "
            "folder on this window, or open it.")
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setObjectName("emptyState")
        self.empty_label.setMinimumHeight(self.empty_label.heightForWidth(EMPTY_WIDTH))
        open_btn = QPushButton(icon("open"), "Open a dataset folder…")
        open_btn.clicked.connect(self.choose_folder)
        sample_btn = QPushButton(icon("sample"), "Get a sample data set…")
        sample_btn.clicked.connect(self.sample_requested.emit)
        buttons = QHBoxLayout()
        buttons.addStretch()
        buttons.addWidget(open_btn)
        buttons.addWidget(sample_btn)
        buttons.addStretch()
        self.recent_list = QListWidget()
        self.recent_list.setMaximumHeight(140)
        self.recent_list.itemActivated.connect(
            lambda item: self.open_requested.emit(Path(item.text())))
        self.recent_box = QGroupBox("Recent datasets (double-click to open)")
        QVBoxLayout(self.recent_box).addWidget(self.recent_list)
        # A fixed-width column keeps the instructions readable on wide windows.
        column = QWidget()
        column.setFixedWidth(EMPTY_WIDTH)
        v = QVBoxLayout(column)
        v.addWidget(art)
        v.addWidget(title)
        v.addWidget(self.empty_label)
        v.addLayout(buttons)
        v.addSpacing(20)
        v.addWidget(self.recent_box)
        row = QHBoxLayout()
        row.addStretch()
        row.addWidget(column)
        row.addStretch()
        outer = QVBoxLayout(page)
        outer.addStretch()
        outer.addLayout(row)
        outer.addStretch()
        return page

    def _details_page(self) -> QWidget:
        page = QWidget()
        self.path_label = QLabel()
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        open_btn = QPushButton(icon("open"), "Open…")
        open_btn.clicked.connect(self.choose_folder)
        self.recent_button = QToolButton()
        self.recent_button.setText("Recent")
        self.recent_button.setIcon(icon("recent"))
        self.recent_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.recent_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.recent_menu = QMenu(self)
        self.recent_button.setMenu(self.recent_menu)
        sample_btn = QPushButton(icon("sample"), "Sample data…")
        sample_btn.clicked.connect(self.sample_requested.emit)
        top = QHBoxLayout()
        top.addWidget(self.path_label, 1)
        top.addWidget(open_btn)
        top.addWidget(self.recent_button)
        top.addWidget(sample_btn)
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.split_label = QLabel()
        self.split_label.setWordWrap(True)

        self.class_model = ClassTableModel()
        self.class_view = QTableView()
        self.class_view.setModel(self.class_model)
        self.class_view.setItemDelegateForColumn(4, ThumbStripDelegate(self.thumbnails, self))
        self.class_view.verticalHeader().setDefaultSectionSize(STRIP_SIZE + 8)
        self.class_view.verticalHeader().hide()
        header = self.class_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.class_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.class_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.class_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.class_view.setToolTip("Select a class to see all its images on the right.")
        self.class_view.selectionModel().currentRowChanged.connect(
            lambda current, _previous: self.show_class(current.row()))
        self.class_grid = ClassGrid(self.thumbnails)

        self.warnings_label = QLabel()
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setObjectName("warnings")
        self.warnings_label.setStyleSheet(
            "QLabel#warnings { background: #fff4d6; border: 1px solid #e0b000; "
            "border-radius: 4px; padding: 6px; }")

        self.problems_table = QTableWidget(0, 2)
        self.problems_table.setHorizontalHeaderLabels(["Skipped file", "Why"])
        self.problems_table.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.Interactive)
        self.problems_table.horizontalHeader().setStretchLastSection(True)
        self.problems_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.problems_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.problems_table.verticalHeader().hide()
        self.reveal_button = QPushButton(icon("reveal"), "Show in folder")
        self.reveal_button.setToolTip("Open the folder holding the selected file in your file "
                                      "manager, to fix or remove it.")
        self.reveal_button.clicked.connect(self.reveal_selected)
        self.problems_box = QGroupBox("Skipped files")
        pv = QVBoxLayout(self.problems_box)
        pv.addWidget(self.problems_table)
        row = QHBoxLayout()
        row.addStretch()
        row.addWidget(self.reveal_button)
        pv.addLayout(row)

        # The class table on the left keeps its height (6 classes fit at 1024x700); the
        # chosen class's images and the skipped files share the right.
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.class_grid)
        right.addWidget(self.problems_box)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.class_view)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        v = QVBoxLayout(page)
        v.addLayout(top)
        v.addWidget(self.summary_label)
        v.addWidget(self.split_label)
        v.addWidget(self.warnings_label)
        v.addWidget(split, 1)
        return page

    # -- actions ------------------------------------------------------------------
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of class folders")
        if folder:
            self.open_requested.emit(Path(folder))

    def set_recent(self, paths: list[str]) -> None:
        self.recent_list.clear()
        self.recent_menu.clear()
        for p in paths:
            self.recent_list.addItem(QListWidgetItem(icon("open"), p))
            action = self.recent_menu.addAction(p)
            action.triggered.connect(lambda _=False, p=p: self.open_requested.emit(Path(p)))
        self.recent_box.setVisible(bool(paths))
        self.recent_button.setEnabled(bool(paths))

    def reveal_selected(self) -> None:
        rows = self.problems_table.selectionModel().selectedRows()
        row = rows[0].row() if rows else 0
        item = self.problems_table.item(row, 0)
        if item is None:
            return
        path = Path(item.data(Qt.ItemDataRole.UserRole))
        folder = path if path.is_dir() else path.parent
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def add_banner(self, widget: QWidget) -> None:
        """Shows ``widget`` (the pending label corrections) above the class table."""
        layout = self.details.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.insertWidget(layout.count() - 1, widget)

    # -- display ------------------------------------------------------------------
    def show_corrected(self, ds: Dataset) -> None:
        """The same dataset with other labels: counts change, the chosen class stays."""
        row = self.class_view.currentIndex().row()
        self.show_dataset(ds)
        if 0 <= row < len(ds.class_names):
            self.class_view.selectRow(row)

    def show_class(self, row: int) -> None:
        """Shows the images of the class in ``row`` of the table (-1: none)."""
        index = self.class_model.index(row, 4)
        if not index.isValid():
            self.class_grid.show_class(None, [])
            return
        self.class_grid.show_class(self.class_model.index(row, 0).data(),
                                   index.data(ClassTableModel.EXAMPLES_ROLE))

    def show_dataset(self, ds: Dataset) -> None:
        """Fills the details page."""
        self.stack.setCurrentIndex(1)
        self.path_label.setText(f"<b>{ds.root.name}</b> &nbsp; <small>{ds.root}</small>")
        n_train, n_val, n_test = len(ds.train), len(ds.validation), len(ds.test)
        self.summary_label.setText(
            f"{plural(ds.num_classes, 'class', 'classes')} · "
            f"{plural(n_train + n_val + n_test, 'usable image')} · "
            f"{n_train:,} for training, {n_val:,} for validation"
            + (f", {n_test:,} for testing" if n_test else "")
            + (f" · {plural(len(ds.problems), 'file')} skipped" if ds.problems else ""))
        if ds.layout == "split_folders":
            self.split_label.setText("Split: the folder's own train/ and validation/ folders.")
        else:
            share = n_val / max(1, n_train + n_val)
            self.split_label.setText(
                f"Split: {share:.0%} of each class is held back, at random but always the "
                "same way for the same files, to check the model on images it has never "
                "seen; the rest train it.")
        self.class_model.set_dataset(ds)
        name_width = self.class_view.horizontalHeader().sectionSizeHint(0)
        self.class_view.setColumnWidth(0, min(max(name_width, 80), CLASS_COLUMN_MAX))
        if ds.class_names:
            self.class_view.selectRow(0)
        self.show_class(0 if ds.class_names else -1)
        self.warnings_label.setVisible(bool(ds.warnings))
        self.warnings_label.setText("<br>".join(f"⚠ {w}" for w in ds.warnings))
        self.problems_table.setRowCount(len(ds.problems))
        for i, p in enumerate(ds.problems):
            try:
                shown = str(p.path.relative_to(ds.root))
            except ValueError:
                shown = str(p.path)
            item = QTableWidgetItem(shown)
            item.setData(Qt.ItemDataRole.UserRole, str(p.path))
            item.setToolTip(str(p.path))
            self.problems_table.setItem(i, 0, item)
            self.problems_table.setItem(i, 1, QTableWidgetItem(p.reason))
        self.problems_table.resizeColumnToContents(0)
        self.problems_box.setTitle(f"Skipped files ({len(ds.problems)})")
        self.problems_box.setVisible(bool(ds.problems))
