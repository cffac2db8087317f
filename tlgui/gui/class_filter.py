"""Sorting and filtering tables of classes: the Data and Evaluate tabs share it.

With 500 classes a user finds one by typing part of its name, or sorts by a column to
see the smallest or the worst. The models sort themselves from plain Python keys
(``SortedRowsModel``): a ``QSortFilterProxyModel`` sorting 500 rows asks ``data`` for
each comparison through PySide, a quarter of a second on a loaded machine. The proxy
only filters, with ``core.confusions.matching_classes`` so every table filters alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)

from tlgui.core.confusions import matching_classes

_Index = QModelIndex | QPersistentModelIndex


class HeadedTableModel(QAbstractTableModel):
    """A flat table whose columns are its ``HEADERS``."""

    HEADERS: tuple[str, ...] = ()

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None


class SortedRowsModel(HeadedTableModel):
    """A table whose items (classes, confusions) show in a sorted order.

    Subclasses keep their items in their own order and say, per item, its sort key
    for a column (``sort_keys``) and its classes (``classes_of``); ``item(row)`` is
    the item a shown row holds.
    """

    def __init__(self) -> None:
        super().__init__()
        self._order: list[int] = []

    def item_count(self) -> int:
        """Items held (rows shown)."""
        raise NotImplementedError

    def sort_keys(self, column: int) -> Sequence[Any] | None:
        """Each item's key for ``column`` (None: the column does not sort)."""
        raise NotImplementedError

    def classes_of(self, item: int) -> tuple[int, ...]:
        """The class labels an item concerns (the filter keeps it when one matches)."""
        raise NotImplementedError

    def item(self, row: int) -> int:
        """The item shown at ``row``."""
        return self._order[row]

    def row_of(self, item: int) -> int:
        """The row showing ``item``."""
        return self._order.index(item)

    def reset_order(self) -> None:
        """Items in their own order; call between begin- and endResetModel."""
        self._order = list(range(self.item_count()))

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._order)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        keys = self.sort_keys(column) if column >= 0 else None
        items = range(self.item_count())
        # sorted() is stable both ways: equal keys keep the items' own order.
        new = (list(items) if keys is None else
               sorted(items, key=keys.__getitem__,
                      reverse=order == Qt.SortOrder.DescendingOrder))
        self.layoutAboutToBeChanged.emit()
        where = {item: row for row, item in enumerate(new)}
        old = self.persistentIndexList()
        self.changePersistentIndexList(
            old, [self.index(where[self._order[p.row()]], p.column()) for p in old])
        self._order = new
        self.layoutChanged.emit()


class ClassFilterProxy(QSortFilterProxyModel):
    """Keeps the rows of a ``SortedRowsModel`` whose classes' names have every typed
    word (a confusion is kept when either of its classes matches); sorting is the
    model's own."""

    def __init__(self) -> None:
        super().__init__()
        self._text = ""
        self._names: Sequence[str] = ()
        self._keep: set[int] | None = None

    def set_names(self, names: Sequence[str]) -> None:
        self._names = names
        self._apply()

    def set_text(self, text: str) -> None:
        self._text = text
        self._apply()

    def kept(self) -> set[int] | None:
        """The labels that pass the filter (None: no filter, all pass)."""
        return self._keep

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        source = self.sourceModel()
        assert isinstance(source, SortedRowsModel)
        source.sort(column, order)

    def _apply(self) -> None:
        # Qt 6.10 replaced invalidateFilter (deprecated) by begin/endFilterChange; the
        # project still allows PySide6 6.7.
        modern = hasattr(self, "endFilterChange")
        if modern:
            self.beginFilterChange()
        self._keep = (set(matching_classes(self._names, self._text))
                      if self._text.strip() else None)
        if modern:
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        if self._keep is None:
            return True
        source = self.sourceModel()
        assert isinstance(source, SortedRowsModel)
        return any(c in self._keep for c in source.classes_of(source.item(source_row)))
