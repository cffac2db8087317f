"""A Qt item model over core's layer tree: ticks switch training of backbone layers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from tlgui.core.layer_tree import LayerNode, set_trainable

_Index = QModelIndex | QPersistentModelIndex
_STATES = {"checked": Qt.CheckState.Checked, "unchecked": Qt.CheckState.Unchecked,
           "partial": Qt.CheckState.PartiallyChecked}


class LayerTreeModel(QAbstractItemModel):
    """Columns: layer (with its tick), type (with a short note), output shape, parameters.

    Four columns fit a 1024 px window beside the settings; the full note is the tooltip.

    Args:
        on_toggle: called with (path, trainable) when the user ticks or unticks a layer;
            it changes the flags in the tree, then ``refresh`` repaints.
    """

    HEADERS = ("Layer", "Type", "Output shape", "Parameters")
    NODE_ROLE = Qt.ItemDataRole.UserRole + 1

    def __init__(self, on_toggle: Callable[[tuple[str, ...], bool], None] | None = None) -> None:
        super().__init__()
        self.root: LayerNode | None = None
        self._previous: LayerNode | None = None
        self.on_toggle = on_toggle
        self.editable = True

    # -- content ------------------------------------------------------------------
    def set_tree(self, root: LayerNode | None) -> None:
        self.beginResetModel()
        # Indexes point at nodes without holding them: keep the last tree alive so that an
        # index a view has not dropped yet never points at freed memory.
        self._previous = self.root
        self.root = root
        self.endResetModel()

    def refresh(self) -> None:
        """Repaints every row after the flags in the tree changed."""
        if self.root is not None:
            self._changed_below(QModelIndex(), self.root)

    def set_editable(self, editable: bool) -> None:
        """Allows or blocks ticking (blocked while training runs)."""
        if editable != self.editable and self.root is not None:
            self.editable = editable
            self._changed_below(QModelIndex(), self.root)
        self.editable = editable

    def _changed_below(self, parent: QModelIndex, node: LayerNode) -> None:
        if not node.children:
            return
        last = len(node.children) - 1
        self.dataChanged.emit(self.index(0, 0, parent),
                              self.index(last, len(self.HEADERS) - 1, parent))
        for row, child in enumerate(node.children):
            if child.children:
                self._changed_below(self.index(row, 0, parent), child)

    def node(self, index: _Index) -> LayerNode | None:
        """The node of an index (the root for an invalid index)."""
        if index.isValid():
            return index.internalPointer()  # type: ignore[no-any-return]
        return self.root

    def index_of(self, path: tuple[str, ...]) -> QModelIndex:
        """The index of the layer at ``path`` (column 0)."""
        index = QModelIndex()
        node = self.root
        for name in path:
            if node is None:
                return QModelIndex()
            row = next((i for i, c in enumerate(node.children) if c.name == name), None)
            if row is None:
                return QModelIndex()
            index = self.index(row, 0, index)
            node = node.children[row]
        return index

    # -- QAbstractItemModel -------------------------------------------------------
    def index(self, row: int, column: int, parent: _Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        node = self.node(parent)
        if node is None or not self.hasIndex(row, column, parent):
            return QModelIndex()
        return self.createIndex(row, column, node.children[row])

    def parent(self, index: _Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not index.isValid():
            return QModelIndex()
        node: LayerNode = index.internalPointer()
        up = node.parent
        if up is None or up is self.root:
            return QModelIndex()
        return self.createIndex(up.row(), 0, up)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid() and parent.column() > 0:
            return 0
        node = self.node(parent)
        return 0 if node is None else len(node.children)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return len(self.HEADERS)

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        node: LayerNode = index.internalPointer()
        if index.column() == 0 and node.editable and self.editable:
            flags |= Qt.ItemFlag.ItemIsUserCheckable
        return flags

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        node: LayerNode = index.internalPointer()
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            note = _short_note(node)
            return (node.name, f"{node.type_name} · {note}" if note else node.type_name,
                    node.output_shape, f"{node.params:,}" if node.params else "–")[col]
        if role == Qt.ItemDataRole.CheckStateRole and col == 0 and node.editable:
            return _STATES[node.check_state()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(node)
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and not node.trainable and node.params:
            return QBrush(QColor("#777777"))
        if role == Qt.ItemDataRole.FontRole and node.children and col == 0:
            font = QFont()
            font.setBold(True)
            return font
        if role == self.NODE_ROLE:
            return node
        return None

    def setData(self, index: _Index, value: Any,
                role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.CheckStateRole or not index.isValid():
            return False
        node: LayerNode = index.internalPointer()
        if not (node.editable and self.editable and index.column() == 0):
            return False
        state = value.value if hasattr(value, "value") else int(value)
        trainable = state == Qt.CheckState.Checked.value
        if self.on_toggle is not None:
            self.on_toggle(node.path, trainable)
        elif self.root is not None:  # nobody listening: edit the tree itself
            set_trainable(self.root, node.path, trainable)
            self._changed_below(QModelIndex(), self.root)
        return True

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None


def _short_note(node: LayerNode) -> str:
    if node.is_batchnorm:
        return "inference mode"
    if node.path == ("classifier",):
        return "new classifier: always trains"
    if node.path == ("backbone",):
        return "pre-trained on ImageNet"
    return ""


def _tooltip(node: LayerNode) -> str:
    lines = [f"{node.name} ({node.type_name})"]
    if node.note:
        lines.append(node.note)
    if node.editable:
        lines.append("Ticked: its weights are adjusted in phase 2 (fine-tuning)."
                     if node.trainable else "Unticked: its weights stay as pre-trained.")
    elif node.params and node.path != ("classifier",):
        lines.append("Nothing to train here.")
    return "\n".join(lines)
