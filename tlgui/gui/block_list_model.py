"""The plain layer view: the backbone's blocks, each with a tick for fine-tuning.

A domain expert cannot judge 154 raw Keras layers; a block (the layers between two
points where one tensor links the network, so a residual connection is never split) is
the unit fine-tuning is chosen by. The ticks edit the same layer tree as the full view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from tlgui.core.layer_tree import LayerNode, block_layers, block_params, block_state

_Index = QModelIndex | QPersistentModelIndex
_STATES = {"checked": Qt.CheckState.Checked, "unchecked": Qt.CheckState.Unchecked,
           "partial": Qt.CheckState.PartiallyChecked}


def block_title(root: LayerNode, block: int) -> str:
    """A block's name as shown: ``Block 3``, ``Stem (first layers)``, ``Top (last layers)``."""
    name = root.blocks[block].name
    if name == "stem":
        return "Stem (first layers)"
    if name == "top":
        return "Top (last layers)"
    return name.replace("_", " ").capitalize()


class BlockListModel(QAbstractTableModel):
    """Rows: the backbone's blocks, bottom of the network first.

    Args:
        on_toggle: called with (block index, trainable) when the user ticks a block.
    """

    HEADERS = ("Block", "Layers", "Parameters", "Fine-tuned in phase 2")
    BLOCK_ROLE = Qt.ItemDataRole.UserRole + 1

    def __init__(self, on_toggle: Callable[[int, bool], None] | None = None) -> None:
        super().__init__()
        self.root: LayerNode | None = None
        self.on_toggle = on_toggle
        self.editable = True

    def set_tree(self, root: LayerNode | None) -> None:
        self.beginResetModel()
        self.root = root
        self.endResetModel()

    def refresh(self) -> None:
        """Repaints the rows after the flags in the tree changed."""
        if self.rowCount():
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(self.rowCount() - 1, len(self.HEADERS) - 1))

    def set_editable(self, editable: bool) -> None:
        self.editable = editable
        self.refresh()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() or self.root is None else len(self.root.blocks)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == 0 and self.editable and self.root is not None and \
                block_state(self.root, index.row()) != "none":
            flags |= Qt.ItemFlag.ItemIsUserCheckable
        return flags

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self.root is None:
            return None
        row, col = index.row(), index.column()
        block = self.root.blocks[row]
        state = block_state(self.root, row)
        if role == Qt.ItemDataRole.DisplayRole:
            layers = block_layers(self.root, row)
            if col == 0:
                return block_title(self.root, row)
            if col == 1:
                return f"{len(layers)} ({block.first}–{block.last})"
            if col == 2:
                params = block_params(self.root, row)
                return f"{params:,}" if params else "–"
            return {"checked": "yes", "partial": "some layers", "unchecked": "no",
                    "none": "nothing to train"}[state]
        if role == Qt.ItemDataRole.CheckStateRole and col == 0 and state != "none":
            return _STATES[state]
        if role == Qt.ItemDataRole.ToolTipRole:
            names = [n.name for n in block_layers(self.root, row)]
            shown = ", ".join(names[:8]) + (" …" if len(names) > 8 else "")
            return (f"Backbone layers {block.first} to {block.last}: {shown}\n"
                    "Ticked: phase 2 adjusts these layers to your images.")
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (1, 2):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == self.BLOCK_ROLE:
            return row
        return None

    def setData(self, index: _Index, value: Any,
                role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.CheckStateRole or not index.isValid() or index.column() != 0:
            return False
        if not self.flags(index) & Qt.ItemFlag.ItemIsUserCheckable:
            return False
        state = value.value if hasattr(value, "value") else int(value)
        on = state == Qt.CheckState.Checked.value
        if self.on_toggle is not None:
            self.on_toggle(index.row(), on)
        self.refresh()
        return True

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None
