"""What phase 2 fine-tunes: blocks of the backbone (plain view) or every layer (advanced).

Both views edit the same layer tree; "Fine-tune from" sets the start in one step, and the
recompile banner shows while the ticks differ from what the engine compiled.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QStackedWidget,
    QTableView,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from tlgui.core.layer_tree import backbone_choices, block_state, fine_tune_start
from tlgui.core.outcomes import ModelInfo
from tlgui.gui.block_list_model import BlockListModel, block_title
from tlgui.gui.icons import icon
from tlgui.gui.layer_tree_model import LayerTreeModel

RECOMPILE_TEXT = "Trainable layers changed: recompile before training"
VIEW_KEY = "layers/view"
PLAIN, ADVANCED = 0, 1
INTRO = ("Phase 1 trains only the new classifier. Phase 2 also adjusts the ticked parts of "
         "the pre-trained backbone to your images: the top blocks (at the end of the list) "
         "hold the most specific features; the first ones detect edges and colours and "
         "rarely need changing.")


class LayerTreePanel(QWidget):
    """Shows the model's blocks or layers and lets the user choose what phase 2 fine-tunes."""

    toggled = Signal(tuple, bool)
    block_toggled = Signal(int, bool)
    fine_tune_chosen = Signal(object)
    recompile_requested = Signal()
    rebuild_requested = Signal()

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.built: ModelInfo | None = None
        self.model = LayerTreeModel(on_toggle=lambda path, on: self.toggled.emit(path, on))
        self.blocks = BlockListModel(on_toggle=lambda b, on: self.block_toggled.emit(b, on))
        self.view = QTreeView()
        self.view.setModel(self.model)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        header = self.view.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.block_view = QTableView()
        self.block_view.setModel(self.blocks)
        self.block_view.verticalHeader().hide()
        self.block_view.setAlternatingRowColors(True)
        self.block_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.block_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        bheader = self.block_view.horizontalHeader()
        bheader.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            bheader.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.block_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.block_view.customContextMenuRequested.connect(self._block_menu)
        self.block_view.doubleClicked.connect(lambda index: self.fine_tune_from_block(index.row()))
        self.views = QStackedWidget()
        self.views.addWidget(self.block_view)
        self.views.addWidget(self.view)

        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        self.view_box = QComboBox()
        self.view_box.addItem("Blocks", PLAIN)
        self.view_box.addItem("All layers", ADVANCED)
        self.view_box.setToolTip("Blocks group the backbone's layers the way the network "
                                 "is built; the advanced view lists every Keras layer.")
        self.view_box.currentIndexChanged.connect(self._switch_view)
        self.fine_tune_box = QComboBox()
        self.fine_tune_box.setToolTip(
            "Fine-tune this part of the backbone and everything above it in phase 2.")
        self.fine_tune_box.activated.connect(
            lambda i: self.fine_tune_chosen.emit(self.fine_tune_box.itemData(i)))
        self.custom_label = QLabel()
        self.rebuild_button = QPushButton(icon("model"), "Rebuild")
        self.rebuild_button.setToolTip("Start again from the pre-trained weights, dropping "
                                       "what training has learned.")
        self.rebuild_button.clicked.connect(self.rebuild_requested.emit)
        row = QHBoxLayout()
        row.addWidget(QLabel("Fine-tune from:"))
        row.addWidget(self.fine_tune_box, 1)
        row.addWidget(QLabel("Show:"))
        row.addWidget(self.view_box)
        row.addWidget(self.rebuild_button)

        self.banner = QFrame()
        self.banner.setObjectName("recompileBanner")
        self.banner.setStyleSheet("QFrame#recompileBanner { background: #fff4d6; "
                                  "border: 1px solid #e0b000; border-radius: 4px; }")
        self.banner_label = QLabel(RECOMPILE_TEXT)
        self.recompile_button = QPushButton(icon("recompile"), "Recompile")
        self.recompile_button.setToolTip("Apply the ticks: training would ignore them until "
                                         "the model is compiled again (takes a second).")
        self.recompile_button.clicked.connect(self.recompile_requested.emit)
        b = QHBoxLayout(self.banner)
        b.addWidget(QLabel(pixmap=icon("warning").pixmap(20, 20)))
        b.addWidget(self.banner_label, 1)
        b.addWidget(self.recompile_button)
        self.banner.setVisible(False)

        self.placeholder = QLabel("The layers appear here once a dataset is open and the "
                                  "model is built.")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.counts_label = QLabel()
        self.counts_label.setWordWrap(True)
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(intro)
        v.addLayout(row)
        v.addWidget(self.custom_label)
        v.addWidget(self.banner)
        v.addWidget(self.placeholder)
        v.addWidget(self.views, 1)
        v.addWidget(self.counts_label)
        self.views.setVisible(False)
        saved = settings.value(VIEW_KEY) if settings is not None else None
        self.view_box.setCurrentIndex(ADVANCED if str(saved) == str(ADVANCED) else PLAIN)
        self._switch_view()

    # -- views --------------------------------------------------------------------
    @property
    def plain(self) -> bool:
        """True while the block view shows."""
        return self.view_box.currentData() == PLAIN

    def _switch_view(self) -> None:
        self.views.setCurrentIndex(int(self.view_box.currentData()))
        if self.settings is not None:
            self.settings.setValue(VIEW_KEY, int(self.view_box.currentData()))
        self._fill_fine_tune_box()
        self.sync(editable=self.model.editable)

    def _fill_fine_tune_box(self) -> None:
        self.fine_tune_box.clear()
        if self.built is None:
            return
        self.fine_tune_box.addItem("Nothing: keep the whole backbone frozen", None)
        tree = self.built.tree
        if self.plain:
            for b, block in enumerate(tree.blocks):
                if block_state(tree, b) != "none":
                    self.fine_tune_box.addItem(f"{block_title(tree, b)} and up", block.first)
        else:
            for index, name in backbone_choices(tree):
                self.fine_tune_box.addItem(f"{index}: {name}", index)

    def _block_menu(self, pos: QPoint) -> None:
        index = self.block_view.indexAt(pos)
        if not index.isValid() or not self.model.editable:
            return
        menu = QMenu(self)
        act = menu.addAction("Fine-tune from here (this block and all above it)")
        act.triggered.connect(lambda: self.fine_tune_from_block(index.row()))
        menu.popup(self.block_view.viewport().mapToGlobal(pos))

    def fine_tune_from_block(self, block: int) -> None:
        """Unfreezes the backbone from a block's first layer up."""
        if self.built is None or not self.model.editable:
            return
        self.fine_tune_chosen.emit(self.built.tree.blocks[block].first)

    def _block_start(self, start: int, contiguous: bool) -> tuple[int, bool]:
        """The first index of the block holding ``start``, and whether the ticks are
        exactly "this block and above"."""
        assert self.built is not None
        tree = self.built.tree
        block = next((b for b in tree.blocks if b.first <= start <= b.last), None)
        if block is None:
            return start, False
        before = [n for n in tree.walk() if n.backbone_index is not None and n.editable
                  and block.first <= n.backbone_index < start]
        return block.first, contiguous and not before

    # -- content ------------------------------------------------------------------
    def set_built(self, built: ModelInfo | None, message: str = "") -> None:
        """Shows a newly built model (None: nothing built, ``message`` says why)."""
        self.built = built
        self.model.set_tree(built.tree if built else None)
        self.blocks.set_tree(built.tree if built else None)
        self.views.setVisible(built is not None)
        self.placeholder.setVisible(built is None)
        if message:
            self.placeholder.setText(message)
        self._fill_fine_tune_box()
        if built is None:
            self.counts_label.clear()
            self.banner.setVisible(False)
            return
        self.view.expand(self.model.index_of(("backbone",)))
        self.sync(editable=True)

    def sync(self, editable: bool) -> None:
        """Re-reads the ticks: the view, the fine-tune start, counts and the banner."""
        if self.built is None:
            return
        self.model.editable = editable
        self.blocks.editable = editable
        self.fine_tune_box.setEnabled(editable)
        self.rebuild_button.setEnabled(editable)
        info = self.built
        # Only the view on screen repaints; the other one is refreshed when shown.
        (self.blocks if self.plain else self.model).refresh()
        start, contiguous = fine_tune_start(info.tree)
        if self.plain and start is not None:
            start, contiguous = self._block_start(start, contiguous)
        i = self.fine_tune_box.findData(start) if start is not None else 0
        self.custom_label.setText(
            "" if contiguous and i >= 0 else "(your own ticks: not one continuous range)")
        self.custom_label.setVisible(bool(self.custom_label.text()))
        self.fine_tune_box.setCurrentIndex(max(i, 0))
        trainable, total = info.param_counts()
        self.counts_label.setText(f"Phase 2 adjusts {trainable:,} of the model's {total:,} "
                                  "parameters.")
        self.banner.setVisible(info.needs_recompile)
        self.recompile_button.setEnabled(info.needs_recompile and editable)
