"""The layer tree with its ticks, the "fine-tune from" control and the recompile banner."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from tlgui.core.layer_tree import backbone_choices, fine_tune_start
from tlgui.core.outcomes import ModelInfo
from tlgui.gui.icons import icon
from tlgui.gui.layer_tree_model import LayerTreeModel

RECOMPILE_TEXT = "Trainable layers changed: recompile before training"


class LayerTreePanel(QWidget):
    """Shows the model's layers and lets the user choose what phase 2 fine-tunes."""

    toggled = Signal(tuple, bool)
    fine_tune_chosen = Signal(object)
    recompile_requested = Signal()
    rebuild_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.built: ModelInfo | None = None
        self.model = LayerTreeModel(on_toggle=lambda path, on: self.toggled.emit(path, on))
        self.view = QTreeView()
        self.view.setModel(self.model)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        header = self.view.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)

        intro = QLabel("Ticked layers are fine-tuned in phase 2; phase 1 trains only the new "
                       "classifier. Untick layers to keep them as pre-trained.")
        intro.setWordWrap(True)
        self.fine_tune_box = QComboBox()
        self.fine_tune_box.setToolTip(
            "Fine-tune this backbone layer and every layer above it in phase 2. The lower "
            "layers detect simple edges and colours and rarely need changing.")
        self.fine_tune_box.activated.connect(
            lambda i: self.fine_tune_chosen.emit(self.fine_tune_box.itemData(i)))
        self.custom_label = QLabel()
        self.counts_label = QLabel()
        self.rebuild_button = QPushButton(icon("model"), "Rebuild model")
        self.rebuild_button.setToolTip("Start again from the pre-trained weights, dropping "
                                       "what training has learned.")
        self.rebuild_button.clicked.connect(self.rebuild_requested.emit)
        row = QHBoxLayout()
        row.addWidget(QLabel("Fine-tune from:"))
        row.addWidget(self.fine_tune_box, 1)
        row.addWidget(self.custom_label)
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
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(intro)
        v.addLayout(row)
        v.addWidget(self.banner)
        v.addWidget(self.placeholder)
        v.addWidget(self.view, 1)
        v.addWidget(self.counts_label)
        self.view.setVisible(False)

    def set_built(self, built: ModelInfo | None, message: str = "") -> None:
        """Shows a newly built model (None: nothing built, ``message`` says why)."""
        self.built = built
        self.model.set_tree(built.tree if built else None)
        self.view.setVisible(built is not None)
        self.placeholder.setVisible(built is None)
        if message:
            self.placeholder.setText(message)
        self.fine_tune_box.clear()
        if built is None:
            self.counts_label.clear()
            self.banner.setVisible(False)
            return
        self.fine_tune_box.addItem("Nothing: keep the whole backbone frozen", None)
        for index, name in backbone_choices(built.tree):
            self.fine_tune_box.addItem(f"{index}: {name}", index)
        self.view.expand(self.model.index_of(("backbone",)))
        for col, width in ((0, 260), (1, 150), (2, 120), (3, 90)):
            self.view.setColumnWidth(col, width)
        self.sync(editable=True)

    def sync(self, editable: bool) -> None:
        """Re-reads flags from the model: ticks, fine-tune start, counts and the banner."""
        if self.built is None:
            return
        self.model.set_editable(editable)
        self.fine_tune_box.setEnabled(editable)
        self.rebuild_button.setEnabled(editable)
        if not editable:  # training owns the Keras model now; read nothing from it
            return
        info = self.built
        self.model.refresh()
        start, contiguous = fine_tune_start(self.built.tree)
        i = self.fine_tune_box.findData(start) if start is not None else 0
        self.fine_tune_box.setCurrentIndex(max(i, 0))
        self.custom_label.setText("" if contiguous else "(with your own ticks)")
        trainable, total = info.param_counts()
        self.counts_label.setText(f"Trainable parameters: {trainable:,} of {total:,} "
                                  "(what phase 2 will adjust)")
        self.banner.setVisible(info.needs_recompile)
        self.recompile_button.setEnabled(info.needs_recompile)
