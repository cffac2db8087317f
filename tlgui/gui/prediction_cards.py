"""The Predict tab's cards: one per dropped item, waiting, being classified or classified.

Every dropped file or folder shows as a card at once, whatever the state of the model,
so nothing waits where the user cannot see it; Clear removes them all. A classified
file's card says its class, or "unsure" with the best guess when the top probability is
below the user's threshold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
)
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QResizeEvent
from PySide6.QtWidgets import (
    QApplication,
    QListView,
    QStyle,
    QStyleOptionViewItem,
    QWidget,
)

from tlgui.core.prediction import Prediction, is_unsure
from tlgui.core.wording import plural
from tlgui.gui.heatmaps import HeatmapCache, HeatSource, draw_heat
from tlgui.gui.thumbnails import ThumbnailCache, ThumbnailDelegateBase, draw_thumbnail

CARD = QSize(340, 118)  # the smallest card; cards widen to fill the row
MAX_CARD_WIDTH = 560
GAP = 6
CARD_ROLE = Qt.ItemDataRole.UserRole + 1
VERDICT_ROLE = Qt.ItemDataRole.UserRole + 2
_Index = QModelIndex | QPersistentModelIndex

WAITING, CLASSIFYING, RESULT, NOTE = "waiting", "classifying", "result", "note"
# What each kind of verdict looks like: (text colour, card background, card border).
STYLE = {
    "sure": ("#1b5e20", "#f7f7f7", "#cccccc"),
    "unsure": ("#8a4b00", "#fff4d6", "#e0a000"),
    "error": ("#a00000", "#fbeeee", "#d9a0a0"),
    "waiting": ("#555555", "#f0f0f0", "#bbbbbb"),
    "note": ("#6b4e00", "#f6f1e4", "#c9b98f"),
}


@dataclass
class Card:
    """One dropped item.

    Attributes:
        path: the file or folder.
        state: ``waiting``, ``classifying``, ``result`` or ``note``.
        prediction: the result (``result`` cards).
        note: why nothing came of it (``note`` cards: a folder without images...).
        is_folder: a dropped folder (shown with a folder picture).
    """

    path: Path
    state: str
    prediction: Prediction | None = None
    note: str = ""
    is_folder: bool = False


def verdict(card: Card, threshold: float, waiting_text: str) -> tuple[str, str]:
    """(kind, text) a card shows under the file name; kind picks the colours."""
    if card.state == WAITING:
        return "waiting", waiting_text
    if card.state == CLASSIFYING:
        return "waiting", "Classifying…"
    if card.state == NOTE or card.prediction is None:
        return "note", card.note
    pred = card.prediction
    if pred.error is not None:
        return "error", f"Could not be read: {pred.error}"
    label, prob = pred.top[0]
    if is_unsure(pred, threshold):
        return "unsure", f"Unsure: best guess {label} {prob:.0%}"
    return "sure", f"{label} {prob:.0%}"


def summary_text(predictions: Sequence[Prediction], threshold: float,
                 empty: Sequence[Path] = ()) -> str:
    """What one batch of drops gave, e.g. "Classified 8 images; 1 could not be read
    (see its card)." Files that could not be read are not counted as classified."""
    failed = sum(p.error is not None for p in predictions)
    done = len(predictions) - failed
    unsure = sum(is_unsure(p, threshold) for p in predictions)
    parts: list[str] = []
    if done:
        parts.append(f"Classified {plural(done, 'image')}"
                     + (f" ({unsure} unsure, below {threshold:.0%})" if unsure else ""))
    if failed:
        where = "see its card" if failed == 1 else "see their cards"
        what = str(failed) if done else plural(failed, "file")
        parts.append(f"{what} could not be read ({where})")
    if empty:
        names = ", ".join(f"'{p.name}'" for p in empty[:3]) + (" …" if len(empty) > 3 else "")
        parts.append(f"no images in {names}")
    if not parts:
        return "Nothing to classify."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


class CardModel(QAbstractListModel):
    """The cards, in the order the items were dropped."""

    def __init__(self) -> None:
        super().__init__()
        self._cards: list[Card] = []
        self.threshold = 0.5
        self.waiting_text = "Waiting for a model"

    # -- Qt model -------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._cards)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._cards):
            return None
        card = self._cards[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return card.path.name or str(card.path)
        if role == CARD_ROLE:
            return card
        if role == VERDICT_ROLE:
            return verdict(card, self.threshold, self.waiting_text)
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [str(card.path), verdict(card, self.threshold, self.waiting_text)[1]]
            pred = card.prediction
            if pred is not None and len(pred.top) > 1:
                lines.append(", ".join(f"{c} {p:.0%}" for c, p in pred.top))
            return "\n".join(lines)
        return None

    # -- contents -------------------------------------------------------------------
    @property
    def cards(self) -> list[Card]:
        """The cards (read only)."""
        return list(self._cards)

    def predictions(self) -> list[Prediction]:
        """The classified files' results, in card order."""
        return [c.prediction for c in self._cards if c.prediction is not None]

    def count(self, state: str) -> int:
        """How many cards are in this state."""
        return sum(c.state == state for c in self._cards)

    def waiting_paths(self) -> list[Path]:
        """The items not classified yet, in drop order."""
        return [c.path for c in self._cards if c.state == WAITING]

    def add_waiting(self, paths: Iterable[Path]) -> list[Path]:
        """Adds a waiting card per item not already waiting; returns those added."""
        waiting = {c.path for c in self._cards if c.state in (WAITING, CLASSIFYING)}
        new = [Card(p, WAITING, is_folder=p.is_dir()) for p in dict.fromkeys(paths)
               if p not in waiting]
        if new:
            self.beginInsertRows(QModelIndex(), len(self._cards),
                                 len(self._cards) + len(new) - 1)
            self._cards += new
            self.endInsertRows()
        return [c.path for c in new]

    def mark_classifying(self, paths: Iterable[Path]) -> None:
        """Waiting cards of these items are being classified now."""
        chosen = set(paths)
        for card in self._cards:
            if card.state == WAITING and card.path in chosen:
                card.state = CLASSIFYING
        self._changed()

    def finish(self, paths: Sequence[Path], predictions: Sequence[Prediction],
               notes: dict[Path, str]) -> None:
        """Replaces the cards of classified items by one card per file found.

        Args:
            paths: the items that were classified.
            predictions: the results, in the order the items were expanded.
            notes: items that gave no file, with why (a folder without images).
        """
        done = set(paths)
        rows = [i for i, c in enumerate(self._cards)
                if c.state == CLASSIFYING and c.path in done]
        at = rows[0] if rows else len(self._cards)
        keep_before = [c for i, c in enumerate(self._cards[:at]) if i not in rows]
        keep_after = [c for i, c in enumerate(self._cards) if i >= at and i not in rows]
        new = [Card(p.path, RESULT, p) for p in predictions]
        new += [Card(path, NOTE, note=text, is_folder=path.is_dir())
                for path, text in notes.items()]
        self.beginResetModel()
        self._cards = keep_before + new + keep_after
        self.endResetModel()

    def fail(self, paths: Iterable[Path], reason: str) -> None:
        """Cards being classified that failed as a whole become notes saying why."""
        chosen = set(paths)
        for card in self._cards:
            if card.state == CLASSIFYING and card.path in chosen:
                card.state, card.note = NOTE, f"Not classified: {reason}"
        self._changed()

    def set_threshold(self, threshold: float) -> None:
        """Below this top probability (0-1) a result is unsure."""
        self.threshold = threshold
        self._changed()

    def set_waiting_text(self, text: str) -> None:
        """What waiting cards say (no model yet, or the model is loading)."""
        self.waiting_text = text
        self._changed()

    def clear(self) -> None:
        """Removes every card."""
        self.beginResetModel()
        self._cards = []
        self.endResetModel()

    def _changed(self) -> None:
        if self._cards:
            self.dataChanged.emit(self.index(0), self.index(len(self._cards) - 1))


def counts_text(model: CardModel) -> str:
    """The line above the cards: how many are classified, unsure, unreadable, waiting."""
    preds = model.predictions()
    failed = sum(p.error is not None for p in preds)
    unsure = sum(is_unsure(p, model.threshold) for p in preds)
    parts = []
    if preds:
        parts.append(f"{plural(len(preds) - failed, 'image')} classified")
    if unsure:
        parts.append(f"{unsure} unsure")
    if failed:
        parts.append(f"{failed} could not be read")
    waiting = model.count(WAITING) + model.count(CLASSIFYING)
    if waiting:
        parts.append(f"{waiting} waiting")
    return " · ".join(parts)


class CardDelegate(ThumbnailDelegateBase):
    """Paints a card: thumbnail, file name, verdict and the top classes as bars."""

    def __init__(self, cache: ThumbnailCache, parent: QWidget) -> None:
        super().__init__(cache, parent)
        self.size = QSize(CARD)
        # Heat maps over the thumbnails: the cache is the window's, the source the model.
        self.heat: HeatmapCache | None = None
        self.heat_source: HeatSource | None = None

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        card: Card = index.data(CARD_ROLE)
        kind, text = index.data(VERDICT_ROLE)
        ink, background, border = STYLE[kind]
        rect: QRect = option.rect.adjusted(3, 3, -3, -3)  # type: ignore[attr-defined]
        painter.save()
        selected = option.state & QStyle.StateFlag.State_Selected  # type: ignore[attr-defined]
        painter.fillRect(rect, QColor("#dbe8f7") if selected else QColor(background))
        painter.setPen(QColor(border))
        painter.drawRect(rect)
        if kind == "unsure":  # a stripe down the left edge: unsure cards stand out
            painter.fillRect(QRect(rect.x(), rect.y(), 5, rect.height() + 1), QColor(border))
        side = rect.height() - 10
        thumb = QRect(rect.x() + 8, rect.y() + 5, side, side)
        self._thumbnail(painter, card, thumb)
        x = thumb.right() + 8
        width = rect.right() - x - 4
        fm = painter.fontMetrics()
        line_h = fm.height() + 2
        painter.setPen(QColor("#333333"))
        name = card.path.name + ("/" if card.is_folder else "")
        painter.drawText(QRect(x, rect.y() + 4, width, line_h), Qt.AlignmentFlag.AlignVCenter,
                         fm.elidedText(name, Qt.TextElideMode.ElideMiddle, width))
        y = rect.y() + 6 + line_h
        font = painter.font()
        font.setBold(kind in ("sure", "unsure"))
        font.setItalic(kind == "waiting")
        painter.setFont(font)
        painter.setPen(QColor(ink))
        pred = card.prediction
        if kind in ("sure", "unsure") and pred is not None:
            painter.drawText(QRect(x, y, width, line_h), Qt.AlignmentFlag.AlignVCenter,
                             _fitted(painter.fontMetrics(), text, pred, kind, width))
            font.setBold(False)
            painter.setFont(font)
            self._bars(painter, pred, QRect(x, y + line_h + 2, width, rect.bottom() - y - line_h),
                       kind)
        else:
            painter.drawText(QRect(x, y, width, rect.bottom() - y - 2),
                             Qt.TextFlag.TextWordWrap, text)
        painter.restore()

    def _thumbnail(self, painter: QPainter, card: Card, box: QRect) -> None:
        if card.is_folder:  # drawn at its own size: a scaled-up icon looks blurred
            icon = QApplication.style().standardIcon(QStyle.StandardPixmap.SP_DirIcon)
            folder = icon.pixmap(QSize(48, 48))
            painter.drawPixmap(box.x() + (box.width() - folder.width()) // 2,
                               box.y() + (box.height() - folder.height()) // 2, folder)
            return
        pix = self.cache.get(card.path) if self.heat_source is not None else None
        if pix is not None and not pix.isNull() and card.state == RESULT:
            draw_heat(painter, self.heat, self.heat_source, card.path, box, pix)
            return
        draw_thumbnail(painter, self.cache, card.path, box)

    def _bars(self, painter: QPainter, pred: Prediction, area: QRect, kind: str) -> None:
        fm = painter.fontMetrics()
        row_h = min(fm.height() + 2, max(1, area.height() // 3))
        label_w = int(area.width() * 0.42)
        y = area.y()
        for rank, (cls, prob) in enumerate(pred.top[:3]):
            painter.setPen(QColor("#333333") if rank == 0 else QColor("#666666"))
            painter.drawText(QRect(area.x(), y, label_w, row_h), Qt.AlignmentFlag.AlignVCenter,
                             fm.elidedText(str(cls), Qt.TextElideMode.ElideRight, label_w))
            bar = QRect(area.x() + label_w + 4, y + 3, area.width() - label_w - 48, row_h - 6)
            painter.fillRect(bar, QColor("#e6e6e6"))
            top = "#e0a000" if kind == "unsure" else "#2e7d32"
            painter.fillRect(QRect(bar.x(), bar.y(), int(bar.width() * float(prob)),
                                   bar.height()),
                             QColor(top) if rank == 0 else QColor("#90a4ae"))
            painter.drawText(QRect(bar.right() + 4, y, 44, row_h),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                             f"{float(prob):.0%}")
            y += row_h + 1

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        return self.size


def _fitted(fm: QFontMetrics, text: str, pred: Prediction, kind: str, width: int) -> str:
    """The verdict, shortened to fit: the percentage always shows, the class name gives."""
    if fm.horizontalAdvance(text) <= width:
        return text
    label, prob = pred.top[0]
    head, tail = ("Unsure: ", f"? {prob:.0%}") if kind == "unsure" else ("", f" {prob:.0%}")
    room = width - fm.horizontalAdvance(head + tail)
    return head + fm.elidedText(label, Qt.TextElideMode.ElideRight, max(room, 0)) + tail


class CardGrid(QListView):
    """The cards in rows that fill the width: no strip of empty space at the right."""

    def __init__(self, model: CardModel, cache: ThumbnailCache,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setAcceptDrops(False)
        self.setDragEnabled(False)
        self.cards = CardDelegate(cache, self)
        self.setItemDelegate(self.cards)
        self._fit(CARD.width() + GAP)

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._fit(self.viewport().width())
        super().resizeEvent(event)

    def _fit(self, width: int) -> None:
        # The view wraps a row early, as if a scroll bar took its width: leave that room.
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        usable = width - 2 * GAP - bar
        columns = max(1, usable // (CARD.width() + GAP))
        card_w = min(MAX_CARD_WIDTH, max(CARD.width(), usable // columns - GAP))
        if card_w != self.cards.size.width():
            self.cards.size = QSize(card_w, CARD.height())
            self.setGridSize(self.cards.size + QSize(GAP, GAP))
