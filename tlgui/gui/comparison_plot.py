"""Several runs' validation curves on one epoch axis (pyqtgraph), one colour per run."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget


class ComparisonPlot(QWidget):
    """Validation accuracy (left) and loss (right) of several runs per epoch, with each
    run's start of fine-tuning as a dashed line in its colour. The window shows which
    colour is which run (a legend inside the plot would cover curves or be cut short).

    Attributes:
        points: per run name, per series (``val_accuracy``, ``val_loss``) the points shown.
        boundaries: per run name, the x position where its phase 2 starts (if it has one).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=True)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground("w")
        self.acc_plot = self.glw.addPlot(row=0, col=0)
        self.loss_plot = self.glw.addPlot(row=0, col=1)
        self.loss_plot.setXLink(self.acc_plot)
        for plot, name in ((self.acc_plot, "Validation accuracy"),
                           (self.loss_plot, "Validation loss")):
            plot.showGrid(x=False, y=True, alpha=0.25)
            plot.setLabel("left", name)
            left = plot.getAxis("left")
            left.setWidth(64)
            left.enableAutoSIPrefix(False)  # "Loss (x0.001)" means nothing to a user
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.setLabel("bottom", "Epoch (both phases)")
        self.acc_plot.setYRange(0, 1.05, padding=0)
        self.points: dict[str, dict[str, list[tuple[int, float]]]] = {}
        self.boundaries: dict[str, float] = {}
        self._items: list[tuple[Any, Any]] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.glw)

    def clear(self) -> None:
        """Removes every run."""
        for plot, item in self._items:
            plot.removeItem(item)
        self._items = []
        self.points = {}
        self.boundaries = {}

    def show_runs(self, runs: Sequence[tuple[str, str, str, Sequence[dict[str, Any]]]]) -> None:
        """Draws runs given as (name, colour, pyqtgraph symbol, history); the history is one
        dict per epoch with ``epoch``, ``phase``, ``val_accuracy`` and ``val_loss``.

        Runs with the same seed and phase 1 settings draw the same phase 1 curve: each run
        has its own symbol, and the first runs a wider line, so that none hides another.
        """
        self.clear()
        last = 1
        for i, (name, color, symbol, history) in enumerate(runs):
            width = 2.0 + 1.6 * (len(runs) - 1 - i) / max(1, len(runs) - 1)
            series: dict[str, list[tuple[int, float]]] = {"val_accuracy": [], "val_loss": []}
            for h in history:
                for key, pts in series.items():
                    value = _number(h.get(key))
                    epoch = h.get("epoch")
                    if value is not None and isinstance(epoch, int):
                        pts.append((epoch, value))
            self.points[name] = series
            for key, plot in (("val_accuracy", self.acc_plot), ("val_loss", self.loss_plot)):
                pts = series[key]
                curve = plot.plot([p[0] for p in pts], [p[1] for p in pts],
                                  pen=pg.mkPen(color, width=width), symbol=symbol,
                                  symbolSize=9, symbolBrush=None,
                                  symbolPen=pg.mkPen(color, width=1.5))
                curve.setToolTip(name)
                self._items.append((plot, curve))
                last = max([last, *(p[0] for p in pts)])
            starts = [h["epoch"] for h in history
                      if h.get("phase") == 2 and isinstance(h.get("epoch"), int)]
            if starts and min(starts) > 1:
                self.boundaries[name] = min(starts) - 0.5
                pen = pg.mkPen(color, width=1.2, style=pg.QtCore.Qt.PenStyle.DashLine)
                for plot in (self.acc_plot, self.loss_plot):
                    line = pg.InfiniteLine(pos=self.boundaries[name], angle=90, pen=pen,
                                           movable=False)
                    line.setToolTip(f"{name}: fine-tuning (phase 2) starts here")
                    plot.addItem(line)
                    self._items.append((plot, line))
        self.acc_plot.setXRange(0.5, max(last, 2) + 0.5, padding=0)
        major = max(1, math.ceil(last / 12))  # whole epochs only
        for plot in (self.acc_plot, self.loss_plot):
            plot.getAxis("bottom").setTickSpacing(major, major)
        self.loss_plot.enableAutoRange(axis="y")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None
