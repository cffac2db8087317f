"""A browsable grid of one class's images on the Data tab.

A ``QListView`` over a list of paths: only the cells being painted ask the thumbnail
cache for a picture, so a class of thousands of images, or a switch between 500
classes, costs a list assignment, never a decode of what is not on screen.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    QUrl,
)
from PySide6.QtGui import QColor, QDesktopServices, QPainter
from PySide6.QtWidgets import (
    QLabel,
    QListView,
    QStyle,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from tlgui.core.wording import plural
from tlgui.gui.thumbnails import ThumbnailCache, ThumbnailDelegateBase, draw_thumbnail

THUMB = 96
CELL = QSize(THUMB + 16, THUMB + 30)
PATH_ROLE = Qt.ItemDataRole.UserRole + 1
_Index = QModelIndex | QPersistentModelIndex


class PathListModel(QAbstractListModel):
    """Image files as rows: the name shows, the full path is the tooltip."""

    def __init__(self) -> None:
        super().__init__()
        self._paths: list[Path] = []

    def set_paths(self, paths: Sequence[Path]) -> None:
        self.beginResetModel()
        self._paths = list(paths)
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._paths)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._paths):
            return None
        path = self._paths[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return path.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return str(path)
        if role == PATH_ROLE:
            return path
        return None


class ThumbnailDelegate(ThumbnailDelegateBase):
    """A cell: the thumbnail (grey until decoded) and the file name below it."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        rect: QRect = option.rect  # type: ignore[attr-defined]
        painter.save()
        if option.state & QStyle.StateFlag.State_Selected:  # type: ignore[attr-defined]
            painter.fillRect(rect.adjusted(1, 1, -1, -1), QColor("#dbe8f7"))
        box = QRect(rect.x() + (rect.width() - THUMB) // 2, rect.y() + 4, THUMB, THUMB)
        draw_thumbnail(painter, self.cache, index.data(PATH_ROLE), box, inset=6)
        fm = painter.fontMetrics()
        text = QRect(rect.x() + 2, box.bottom() + 4, rect.width() - 4, fm.height())
        painter.setPen(QColor("#444444"))
        painter.drawText(text, Qt.AlignmentFlag.AlignHCenter,
                         fm.elidedText(str(index.data()), Qt.TextElideMode.ElideMiddle,
                                       text.width()))
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        return CELL


class ClassGrid(QWidget):
    """The images of the class chosen in the class table; double-click opens one."""

    def __init__(self, cache: ThumbnailCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Choose a class to see its images.")
        self.title.setObjectName("classGridTitle")
        self.model = PathListModel()
        self.view = QListView()
        self.view.setObjectName("classGrid")
        self.view.setModel(self.model)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setDragEnabled(False)
        self.view.setUniformItemSizes(True)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(400)
        self.view.setGridSize(CELL + QSize(4, 4))
        self.view.setItemDelegate(ThumbnailDelegate(cache, self))
        self.view.doubleClicked.connect(self.open_file)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.view, 1)
        cache.ready.connect(lambda _key: self.view.viewport().update())

    def show_class(self, name: str | None, paths: Sequence[Path]) -> None:
        """Shows ``paths`` as the images of class ``name`` (None: nothing chosen)."""
        self.model.set_paths(paths)
        self.view.scrollToTop()
        self.title.setText(
            f"<b>{html.escape(name)}</b>: {plural(len(paths), 'image')} · double-click one "
            "to open it" if name is not None else "Choose a class to see its images.")

    def open_file(self, index: QModelIndex) -> None:
        path = index.data(PATH_ROLE)
        if path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
