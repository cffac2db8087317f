"""A run's training curves drawn straight onto a QImage, in any thread.

The run folder's ``training_plot.png`` is drawn here rather than grabbed from the live
plot: grabbing a hidden pyqtgraph widget renders it whole in the GUI thread (125 ms on a
busy 2-core machine, a visible stall at the end of every run), while QPainter on a QImage
may run in a worker thread.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen

from tlgui.core.atomic import atomic_path

TRAIN = QColor("#1f77b4")
VAL = QColor("#d62728")
GRID = QColor("#e6e6e6")
TEXT = QColor("#333333")
SERIES = (("accuracy", "val_accuracy", "Accuracy"), ("loss", "val_loss", "Loss"))


def _values(history: Sequence[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    out = []
    for h in history:
        v, e = h.get(key), h.get("epoch")
        if isinstance(v, (int, float)) and isinstance(e, int) and not math.isnan(v):
            out.append((e, float(v)))
    return out


def render_history(history: Sequence[dict[str, Any]], best_epoch: int | None,
                   width: int = 1200, height: int = 800) -> QImage:
    """Accuracy above, loss below, epochs across, the phase boundary and the kept epoch."""
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    epochs = [e for e, _ in _values(history, "loss")] or [1]
    last = max(max(epochs), 2)
    phase2 = [h["epoch"] for h in history if h.get("phase") == 2 and isinstance(h.get("epoch"),
                                                                                 int)]
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    font = QFont()
    font.setPointSize(10)
    painter.setFont(font)
    left, right, gap = 80.0, 30.0, 40.0
    panel_h = (height - 3 * gap) / 2
    for i, (train_key, val_key, title) in enumerate(SERIES):
        top = gap + i * (panel_h + gap)
        box = QRectF(left, top, width - left - right, panel_h)
        train, val = _values(history, train_key), _values(history, val_key)
        ys = [v for _, v in train + val] or [0.0, 1.0]
        lo, hi = (0.0, 1.0) if i == 0 else (min(ys), max(ys))
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        if i == 1:
            pad = (hi - lo) * 0.05
            lo, hi = max(0.0, lo - pad), hi + pad

        def point(e: float, v: float, box: QRectF = box, lo: float = lo,
                  hi: float = hi) -> QPointF:
            x = box.left() + (e - 0.5) / last * box.width()
            y = box.bottom() - (v - lo) / (hi - lo) * box.height()
            return QPointF(x, y)

        painter.setPen(QPen(GRID, 1))
        for k in range(5):
            v = lo + (hi - lo) * k / 4
            p = point(0.5, v)
            painter.drawLine(QPointF(box.left(), p.y()), QPointF(box.right(), p.y()))
            painter.setPen(TEXT)
            painter.drawText(QRectF(0, p.y() - 10, left - 8, 20),
                             int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                             f"{v:.2f}")
            painter.setPen(QPen(GRID, 1))
        painter.setPen(QPen(TEXT, 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(box)
        painter.drawText(QRectF(left, top - gap + 8, 300, gap - 8),
                         int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), title)
        step = max(1, math.ceil(last / 12))
        for e in range(1, last + 1, step):
            p = point(e, lo)
            painter.drawText(QRectF(p.x() - 20, box.bottom() + 2, 40, 16),
                             int(Qt.AlignmentFlag.AlignHCenter), str(e))
        if phase2:
            x = point(phase2[0] - 0.5, lo).x()
            painter.setPen(QPen(QColor("#555555"), 1.5, Qt.PenStyle.DashDotLine))
            painter.drawLine(QPointF(x, box.top()), QPointF(x, box.bottom()))
        for series, color, style in ((train, TRAIN, Qt.PenStyle.DashLine),
                                     (val, VAL, Qt.PenStyle.SolidLine)):
            painter.setPen(QPen(color, 2.5, style))
            pts = [point(e, v) for e, v in series]
            for a, b in itertools.pairwise(pts):
                painter.drawLine(a, b)
            painter.setBrush(color)
            for p in pts:
                painter.drawEllipse(p, 3, 3)
        if i == 0 and best_epoch is not None:
            best = dict(val).get(best_epoch)
            if best is not None:
                p = point(best_epoch, best)
                painter.setPen(QPen(QColor("#7a5c00"), 1.5))
                painter.setBrush(QColor("#ffbf00"))
                painter.drawEllipse(p, 8, 8)
                painter.drawText(QRectF(p.x() - 150, p.y() + 10, 300, 20),
                                 int(Qt.AlignmentFlag.AlignHCenter),
                                 f"kept: epoch {best_epoch}, {best:.1%}")
        # Accuracy climbs to the top right, loss falls to the bottom right.
        legend_y = box.bottom() - 50 if i == 0 else box.top() + 10
        for text, color in (("training", TRAIN), ("validation", VAL)):
            painter.setPen(QPen(color, 2.5))
            painter.drawLine(QPointF(box.right() - 130, legend_y + 8),
                             QPointF(box.right() - 100, legend_y + 8))
            painter.setPen(TEXT)
            painter.drawText(QRectF(box.right() - 95, legend_y, 90, 18),
                             int(Qt.AlignmentFlag.AlignLeft), text)
            legend_y += 20
    painter.setPen(TEXT)
    painter.drawText(QRectF(left, height - gap + 12, width - left - right, 20),
                     int(Qt.AlignmentFlag.AlignHCenter), "Epoch")
    painter.end()
    return image


def save_history_png(history: Sequence[dict[str, Any]], best_epoch: int | None,
                     path: Path) -> Path:
    """Draws and writes the curves as a PNG, atomically."""
    image = render_history(history, best_epoch)
    with atomic_path(path) as tmp:
        if not image.save(str(tmp), "PNG"):
            raise OSError(f"cannot write {path}")
    return path
