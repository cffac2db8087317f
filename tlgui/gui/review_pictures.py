"""The pictures of the review: the image under review (with its heat map) and the rows
of the most similar images of a class."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from tlgui.core.audit_findings import Nearest
from tlgui.core.heatmap import HeatMap
from tlgui.gui.heatmaps import HeatmapCache, HeatSource, draw_heat
from tlgui.gui.thumbnails import PLACEHOLDER, ThumbnailCache, draw_thumbnail


class ImageView(QWidget):
    """The image under review, fitted to the widget, with its heat map when asked."""

    def __init__(self, large: ThumbnailCache, heat: HeatmapCache | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.large, self.heat = large, heat
        self.path: Path | None = None
        self.source: HeatSource | None = None
        self.setMinimumSize(200, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        large.ready.connect(self._maybe_update)
        if heat is not None:
            heat.ready.connect(self._maybe_update)

    def show_path(self, path: Path | None, source: HeatSource | None) -> None:
        """Shows ``path``; with a heat map of ``source``'s model when it is not None."""
        self.path, self.source = path, source
        self.update()

    def heat_map(self) -> HeatMap | None:
        """The heat map drawn now (None while there is none)."""
        if self.heat is None or self.source is None or self.path is None:
            return None
        return self.heat.get(self.source, self.path)

    def _maybe_update(self, key: str) -> None:
        if self.path is not None and key == str(self.path):
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        box = self.rect().adjusted(2, 2, -2, -2)
        if self.path is not None:
            pix = self.large.get(self.path)
            if pix is None or pix.isNull():
                painter.fillRect(box, PLACEHOLDER)
                painter.drawText(box, Qt.AlignmentFlag.AlignCenter,
                                 "Loading…" if pix is None else "This file cannot be shown.")
            else:
                draw_heat(painter, self.heat, self.source, self.path, box, pix)
        painter.end()


class NearestStrip(QWidget):
    """A row of the images of one class that look most like the one under review."""

    def __init__(self, thumbnails: ThumbnailCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails
        self.nearest: Nearest | None = None
        self.title = ""
        side = thumbnails.size
        self.setMinimumHeight(side + 26)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        thumbnails.ready.connect(self._on_thumbnail)

    def _on_thumbnail(self, path: str) -> None:
        if self.nearest is not None and any(str(p) == path for p in self.nearest.paths):
            self.update()

    def show_nearest(self, nearest: Nearest | None, title: str) -> None:
        self.nearest, self.title = nearest, title
        self.setToolTip("\n".join(f"{p}  (similarity {s:.2f})" for p, s in
                                  zip(nearest.paths, nearest.similarity, strict=False))
                        if nearest else "")
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        fm = painter.fontMetrics()
        painter.setPen(QColor("#333333"))
        painter.drawText(QRect(0, 0, self.width(), fm.height() + 4),
                         Qt.AlignmentFlag.AlignVCenter, self.title)
        side = self.thumbnails.size
        y = fm.height() + 6
        if self.nearest is None:
            painter.setPen(QColor("#777777"))
            painter.drawText(QRect(0, y, self.width(), side), Qt.AlignmentFlag.AlignLeft,
                             "Looking for similar images…")
        elif not self.nearest.paths:
            painter.setPen(QColor("#777777"))
            painter.drawText(QRect(0, y, self.width(), side), Qt.AlignmentFlag.AlignLeft,
                             "No other image of this class.")
        else:
            for i, path in enumerate(self.nearest.paths):
                x = i * (side + 6)
                if x + side > self.width():
                    break
                draw_thumbnail(painter, self.thumbnails, path, QRect(x, y, side, side))
        painter.end()
