"""The Data tab: open a folder of class folders, see classes, split, warnings and problems."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from tlgui.core.wording import plural
from tlgui.gui.class_filter import ClassFilterProxy
from tlgui.gui.class_grid import ClassGrid
from tlgui.gui.class_table import (
    STRIP_SIZE,
    ClassTableModel,
    ProblemTableModel,
    ThumbStripDelegate,
)
from tlgui.gui.icons import icon
from tlgui.gui.thumbnails import ThumbnailCache

if TYPE_CHECKING:
    from tlgui.core.dataset import Dataset

CLASS_COLUMN_MAX = 220
FEW_CLASSES = 12  # more than this: a filter box above the class table
WARNING_LINES = 5  # lines of warnings shown before they scroll
EMPTY_WIDTH = 640


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
        self.class_proxy = ClassFilterProxy()
        self.class_proxy.setSourceModel(self.class_model)
        self.class_filter = QLineEdit()
        self.class_filter.setPlaceholderText("Filter classes by name…")
        self.class_filter.setClearButtonEnabled(True)
        self.class_filter.setToolTip("Keeps the classes whose name holds every word typed")
        self.class_filter.textChanged.connect(self.class_proxy.set_text)
        self.class_filter.hide()
        self.class_view = QTableView()
        self.class_view.setModel(self.class_proxy)
        self.class_view.setSortingEnabled(True)
        self.class_view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.class_view.setItemDelegateForColumn(4, ThumbStripDelegate(self.thumbnails, self))
        self.class_view.verticalHeader().setDefaultSectionSize(STRIP_SIZE + 8)
        self.class_view.verticalHeader().hide()
        header = self.class_view.horizontalHeader()
        # Fixed widths measured once: resizing to contents asks every row of 500 for its
        # size at each layout.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        header.setSortIndicatorClearable(True)
        self.class_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.class_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.class_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.class_view.setToolTip("Select a class to see all its images on the right. "
                                   "Click a column title to sort.")
        self.class_view.selectionModel().currentRowChanged.connect(
            lambda current, _previous: self.show_class(current.row()))
        classes = QWidget()
        cv = QVBoxLayout(classes)
        cv.setContentsMargins(0, 0, 0, 0)
        cv.addWidget(self.class_filter)
        cv.addWidget(self.class_view, 1)
        self.class_grid = ClassGrid(self.thumbnails)

        self.warnings_label = QLabel()
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setObjectName("warnings")
        self.warnings_label.setStyleSheet(
            "QLabel#warnings { background: #fff4d6; border: 1px solid #e0b000; "
            "border-radius: 4px; padding: 6px; }")
        # 500 classes can bring a warning each: they scroll, the class table keeps its room.
        self.warnings_area = QScrollArea()
        self.warnings_area.setWidget(self.warnings_label)
        self.warnings_area.setWidgetResizable(True)
        self.warnings_area.setFrameShape(QFrame.Shape.NoFrame)
        self.warnings_area.setMaximumHeight(self.fontMetrics().lineSpacing() * WARNING_LINES + 16)

        self.problems_model = ProblemTableModel()
        self.problems_table = QTableView()
        self.problems_table.setModel(self.problems_model)
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
        split.addWidget(classes)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        v = QVBoxLayout(page)
        v.addLayout(top)
        v.addWidget(self.summary_label)
        v.addWidget(self.split_label)
        v.addWidget(self.warnings_area)
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
        index = rows[0] if rows else self.problems_model.index(0, 0)
        if not index.isValid():
            return
        path = Path(index.data(ProblemTableModel.PATH_ROLE))
        folder = path if path.is_dir() else path.parent
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def add_banner(self, widget: QWidget) -> None:
        """Shows ``widget`` (the pending label corrections) above the class table."""
        layout = self.details.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.insertWidget(layout.count() - 1, widget)

    # -- display ------------------------------------------------------------------
    def _fit_columns(self, ds: Dataset) -> None:
        """Widths from the longest name and the largest count, not from every row."""
        fm = self.class_view.fontMetrics()
        header = self.class_view.horizontalHeader()
        longest = max(ds.class_names, key=fm.horizontalAdvance, default="")
        name_width = max(fm.horizontalAdvance(longest),
                         fm.horizontalAdvance(ClassTableModel.HEADERS[0])) + 24
        self.class_view.setColumnWidth(0, min(max(name_width, 80), CLASS_COLUMN_MAX))
        digits = fm.horizontalAdvance(f"{self.class_model.widest_count():,}")
        for col in (1, 2, 3):
            title = fm.horizontalAdvance(ClassTableModel.HEADERS[col])
            # Room for the sort arrow next to the title.
            self.class_view.setColumnWidth(col, max(digits, title) + 32)
        header.setMinimumSectionSize(40)

    def show_corrected(self, ds: Dataset) -> None:
        """The same dataset with other labels: counts change, the chosen class stays."""
        chosen = self.class_view.currentIndex().siblingAtColumn(0).data()
        self.show_dataset(ds, keep_order=True)
        if chosen in ds.class_names:
            source = self.class_model.index(
                self.class_model.row_of(ds.class_names.index(chosen)), 0)
            row = self.class_proxy.mapFromSource(source).row()
            if row >= 0:
                self.class_view.selectRow(row)

    def show_class(self, row: int) -> None:
        """Shows the images of the class in ``row`` of the table as shown (-1: none)."""
        index = self.class_proxy.index(row, 4)
        if not index.isValid():
            self.class_grid.show_class(None, [])
            return
        self.class_grid.show_class(self.class_proxy.index(row, 0).data(),
                                   index.data(ClassTableModel.EXAMPLES_ROLE))

    def show_dataset(self, ds: Dataset, keep_order: bool = False) -> None:
        """Fills the details page (``keep_order``: the same classes, as sorted and
        filtered before)."""
        self.stack.setCurrentIndex(1)
        self.path_label.setText(f"<b>{ds.root.name}</b> &nbsp; <small>{ds.root}</small>")
        n_train, n_val, n_test = len(ds.train), len(ds.validation), len(ds.test)
        self.summary_label.setText(
            f"{plural(ds.num_classes, 'class', 'classes')} · "
            f"{plural(n_train + n_val + n_test, 'usable image')} · "
            f"{n_train:,} for training, {n_val:,} for validation"
            + (f", {n_test:,} for testing" if n_test else "")
            + (f" · {plural(len(ds.problems), 'file')} skipped" if ds.problems else ""))
        if ds.layout == "split_folders" and ds.validation_held_back:
            share = n_val / max(1, n_train + n_val)
            self.split_label.setText(
                f"Split: train/ and test/ folders, no validation/: {share:.0%} of each class "
                "in train/ is held back for validation, always the same way for the same "
                "files; test/ is kept apart.")
        elif ds.layout == "split_folders":
            self.split_label.setText("Split: the folder's own train/ and validation/ folders.")
        else:
            share = n_val / max(1, n_train + n_val)
            self.split_label.setText(
                f"Split: {share:.0%} of each class is held back, at random but always the "
                "same way for the same files, to check the model on images it has never "
                "seen; the rest train it.")
        many = len(ds.class_names) > FEW_CLASSES
        if not keep_order:
            self.class_filter.clear()
            self.class_view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.class_filter.setVisible(many)
        self.class_proxy.set_names(ds.class_names)
        self.class_model.set_dataset(ds)
        if keep_order:  # the model comes back in folder order: sorted as the user left it
            header = self.class_view.horizontalHeader()
            self.class_model.sort(header.sortIndicatorSection(), header.sortIndicatorOrder())
        self._fit_columns(ds)
        if self.class_proxy.rowCount():
            self.class_view.selectRow(0)
        self.show_class(0 if self.class_proxy.rowCount() else -1)
        self.warnings_area.setVisible(bool(ds.warnings))
        many_warnings = len(ds.warnings) > WARNING_LINES
        self.warnings_label.setText(
            (f"<b>{len(ds.warnings)} warnings</b> (scroll to read them all)<br>"
             if many_warnings else "") + "<br>".join(f"⚠ {w}" for w in ds.warnings))
        self.problems_model.set_problems(ds.root, ds.problems)
        # Wide enough for the first rows' paths, measured on those only.
        fm = self.problems_table.fontMetrics()
        widest = max((fm.horizontalAdvance(self.problems_model.shown_path(r))
                      for r in range(min(50, len(ds.problems)))), default=0)
        self.problems_table.setColumnWidth(0, min(max(widest + 16, 120), 480))
        self.problems_box.setTitle(f"Skipped files ({len(ds.problems):,})")
        self.problems_box.setVisible(bool(ds.problems))
