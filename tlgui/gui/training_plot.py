"""The live training plot: accuracy and loss of both phases on one epoch axis (pyqtgraph)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtGui import QFont, QImage
from PySide6.QtWidgets import QVBoxLayout, QWidget

from tlgui.core.atomic import atomic_path
from tlgui.core.events import EpochEnded

log = logging.getLogger(__name__)
TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#d62728"
SERIES = ("accuracy", "val_accuracy", "loss", "val_loss")
PHASE1_LABEL = "← phase 1: new classifier "
EMPTY_EPOCHS = 10
PHASE2_LABEL = " phase 2: fine-tuning →"


class TrainingPlot(QWidget):
    """Two linked plots (accuracy above, loss below), a phase boundary and the best epoch.

    Attributes:
        points: per series (``accuracy``, ``val_accuracy``, ``loss``, ``val_loss``) the
            (epoch, value) pairs shown.
        boundary: the x position of the phase 1 / phase 2 boundary, or None.
        best_epoch: the epoch marked as best, or None.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=True)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground("w")
        self.acc_plot = self.glw.addPlot(row=0, col=0)
        self.loss_plot = self.glw.addPlot(row=1, col=0)
        self.loss_plot.setXLink(self.acc_plot)
        for plot, name in ((self.acc_plot, "Accuracy"), (self.loss_plot, "Loss")):
            # Repainting axes and grid was most of an epoch's update (30-50 ms on a busy
            # 2-core machine, in the GUI thread): horizontal grid lines only, and each
            # axis cached as a picture until its range changes (8-15 ms).
            plot.showGrid(x=False, y=True, alpha=0.25)
            plot.setLabel("left", name)
            plot.getAxis("left").setWidth(64)
            for side in ("left", "bottom"):
                axis = plot.getAxis(side)
                axis.setCacheMode(axis.CacheMode.DeviceCoordinateCache)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
        self.loss_plot.setLabel("bottom", "Epoch")
        self.acc_plot.setYRange(0, 1.05, padding=0)
        # Accuracy climbs to the top right, loss falls to the bottom right: keep the
        # legends out of the way of the curves.
        self.acc_plot.addLegend(offset=(-10, -30))
        self.loss_plot.addLegend(offset=(-10, 10))
        train_pen = pg.mkPen(TRAIN_COLOR, width=2, style=pg.QtCore.Qt.PenStyle.DashLine)
        val_pen = pg.mkPen(VAL_COLOR, width=2.5)
        self.curves = {
            "accuracy": self.acc_plot.plot([], [], pen=train_pen, name="training",
                                           symbol="o", symbolSize=5, symbolBrush=TRAIN_COLOR),
            "val_accuracy": self.acc_plot.plot([], [], pen=val_pen, name="validation",
                                               symbol="o", symbolSize=6, symbolBrush=VAL_COLOR),
            "loss": self.loss_plot.plot([], [], pen=train_pen, name="training",
                                        symbol="o", symbolSize=5, symbolBrush=TRAIN_COLOR),
            "val_loss": self.loss_plot.plot([], [], pen=val_pen, name="validation",
                                            symbol="o", symbolSize=6, symbolBrush=VAL_COLOR),
        }
        self.points: dict[str, list[tuple[int, float]]] = {k: [] for k in SERIES}
        self.boundary: float | None = None
        self.best_epoch: int | None = None
        self._boundary_items: list[tuple[pg.PlotItem, pg.InfiniteLine]] = []
        self._best_items: list[object] = []
        # Loss values are small numbers: "Loss (x0.001)" with ticks 400-900 meant nothing
        # to a user, so no SI prefix on the axes.
        for plot in (self.acc_plot, self.loss_plot):
            plot.getAxis("left").enableAutoSIPrefix(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.glw)
        self.setMinimumHeight(320)
        self._set_epoch_axis(EMPTY_EPOCHS)
        self._make_boundary()

    @property
    def empty(self) -> bool:
        """True while no epoch is shown."""
        return not any(self.points.values())

    def _set_epoch_axis(self, last: int) -> None:
        """Shows epochs 1..``last`` with whole-epoch ticks (a tick at 0.3 means nothing)."""
        self.acc_plot.setXRange(0.5, max(last, 2) + 0.5, padding=0)
        major = max(1, math.ceil(last / 12))
        for plot in (self.acc_plot, self.loss_plot):
            plot.getAxis("bottom").setTickSpacing(major, major)

    def clear(self) -> None:
        """Empties the plot for a new run."""
        for key in SERIES:
            self.points[key] = []
            self.curves[key].setData([], [])
        for _plot, line in self._boundary_items:
            line.setVisible(False)
        self._remove_best()
        self.boundary = None
        self.best_epoch = None
        self._set_epoch_axis(EMPTY_EPOCHS)

    def add_epoch(self, event: EpochEnded) -> None:
        """Adds one epoch's figures (NaN values, e.g. without validation, are left out)."""
        for key in SERIES:
            value = float(getattr(event, key))
            if not math.isnan(value):
                self.points[key].append((event.epoch, value))
                xs, ys = zip(*self.points[key], strict=True)
                self.curves[key].setData(list(xs), list(ys))
        last = max(p[0] for pts in self.points.values() for p in pts) if any(
            self.points.values()) else 1
        self._set_epoch_axis(last)

    def show_history(self, history: list[dict[str, object]], best_epoch: int | None) -> None:
        """Draws a finished run from its history (an opened run)."""
        self.clear()
        phase2 = [h["epoch"] for h in history if h.get("phase") == 2]
        if phase2 and isinstance(phase2[0], int):
            self.mark_phase_start(2, phase2[0])
        for h in history:
            try:
                self.add_epoch(EpochEnded(int(h["phase"]), int(h["epoch"]),  # type: ignore[call-overload]
                                          *(float(h.get(k, math.nan))  # type: ignore[arg-type]
                                            for k in ("loss", "accuracy", "val_loss",
                                                      "val_accuracy")),
                                          float(h.get("seconds", 0.0))))  # type: ignore[arg-type]
            except (KeyError, TypeError, ValueError):
                continue
        if best_epoch is not None:
            self.set_best(best_epoch)

    def _make_boundary(self) -> None:
        """The phase boundary's lines, made once and hidden: making labelled lines when
        phase 2 starts took 40 ms in the GUI thread."""
        pen = pg.mkPen("#555555", width=1.5, style=pg.QtCore.Qt.PenStyle.DashDotLine)
        # Two lines on the same spot carry the labels either side of the boundary.
        for plot, label, anchor in ((self.acc_plot, PHASE2_LABEL, (0, 0.5)),
                                    (self.acc_plot, PHASE1_LABEL, (1, 0.5)),
                                    (self.loss_plot, None, (0, 0.5))):
            line = pg.InfiniteLine(pos=0, angle=90, pen=pen, movable=False,
                                   label=label, labelOpts={"position": 0.1, "color": "#333333",
                                                           "anchors": [anchor, anchor]})
            if label:
                line.label.setFont(_font(9))
            line.setVisible(False)
            plot.addItem(line)
            self._boundary_items.append((plot, line))

    def mark_phase_start(self, phase: int, first_epoch: int) -> None:
        """Shows the boundary where phase 2 (fine-tuning) begins."""
        if phase != 2 or first_epoch <= 1:
            return
        self.boundary = first_epoch - 0.5
        for _plot, line in self._boundary_items:
            line.setPos(self.boundary)
            line.setVisible(True)

    def set_best(self, epoch: int) -> None:
        """Marks the epoch whose weights the model keeps (the marker is made once, then
        moved: making it anew cost tens of ms in the GUI thread)."""
        self.best_epoch = epoch
        value = dict(self.points["val_accuracy"]).get(epoch)
        if value is None:
            value = dict(self.points["accuracy"]).get(epoch)
        if value is None:
            self._remove_best()
            return
        if not self._best_items:
            star = pg.ScatterPlotItem([], [], symbol="star", size=18,
                                      brush=pg.mkBrush("#ffbf00"), pen=pg.mkPen("#7a5c00"))
            text = pg.TextItem("", color="#7a5c00")
            text.setFont(_font(9))
            self.acc_plot.addItem(star)
            self.acc_plot.addItem(text)
            self._best_items = [star, text]
        star, text = self._best_items
        star.setData([epoch], [value])  # type: ignore[attr-defined]
        # Below the star near the top of the plot, above it otherwise.
        text.setAnchor((0.5, -0.4) if value > 0.8 else (0.5, 1.4))  # type: ignore[attr-defined]
        text.setText(f"best: epoch {epoch}, {value:.1%}")  # type: ignore[attr-defined]
        text.setPos(epoch, value)  # type: ignore[attr-defined]
        for item in self._best_items:
            item.setVisible(True)  # type: ignore[attr-defined]

    def _remove_best(self) -> None:
        for item in self._best_items:
            item.setVisible(False)  # type: ignore[attr-defined]

    def save_png(self, path: str | Path) -> Path:
        """Writes the plot as a PNG file (atomically) and returns the path."""
        return write_png(self.grab().toImage(), Path(path))

def write_png(image: QImage, path: Path) -> Path:
    """Saves a QImage as PNG atomically (any thread: QImage, unlike QPixmap, allows it)."""
    with atomic_path(path) as tmp:
        if not image.save(str(tmp), "PNG"):
            raise OSError(f"cannot write {path}")
    return path


def _font(points: int) -> QFont:
    font = QFont()
    font.setPointSize(points)
    return font
