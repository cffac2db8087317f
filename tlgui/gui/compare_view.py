"""Runs side by side: their curves on one plot, accuracy per phase and recall per class,
and the settings that differed."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPixmap, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tlgui.core.run_compare import MISSING, Comparison, format_value
from tlgui.gui.model_texts import SCHEDULES

if TYPE_CHECKING:
    from tlgui.gui.comparison_plot import ComparisonPlot

RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
# Distinct on white and for the common colour-vision deficiencies (Okabe-Ito, then tab10).
RUN_COLORS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#7f7f7f",
              "#9467bd", "#8c564b", "#bcbd22")
# Each run's point symbol in the plot (pyqtgraph's names) and the same shape in text.
RUN_SYMBOLS = (("o", "○"), ("s", "□"), ("t1", "△"), ("d", "◇"), ("star", "☆"),
               ("t", "▽"), ("p", "⬠"), ("h", "⬡"), ("+", "+"), ("x", "×"))
SETTING_NAMES = {
    "dataset": "Dataset", "classes": "Classes", "layers": "Trainable layers",
    "backbone": "Backbone", "image_size": "Image size", "weights": "Weights",
    "weights_dir": "Weights folder", "fine_tune_at": "Fine-tune from layer",
    "batch_size": "Batch size", "dropout": "Dropout", "label_smoothing": "Label smoothing",
    "class_weights": "Balance classes", "seed": "Seed",
    "augment.mode": "Augmentation", "augment.flip": "Mirror left-right",
    "augment.rotation": "Rotation (turns)", "augment.zoom": "Zoom", "augment.contrast": "Contrast",
    "augment.views": "Augmented views", "split.validation_fraction": "Validation share",
    "split.seed": "Split seed",
}
for _p in (1, 2):
    SETTING_NAMES.update({f"phase{_p}.epochs": f"Phase {_p} epochs",
                          f"phase{_p}.learning_rate": f"Phase {_p} learning rate",
                          f"phase{_p}.optimizer": f"Phase {_p} optimizer",
                          f"phase{_p}.schedule": f"Phase {_p} rate over the epochs",
                          f"phase{_p}.early_stopping_patience": f"Phase {_p} patience"})


def _pct(x: float | None) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.1%}"


def run_color(i: int) -> str:
    """The colour of the i-th compared run (the plot and the tables use the same)."""
    return RUN_COLORS[i % len(RUN_COLORS)]


def run_symbol(i: int) -> tuple[str, str]:
    """The i-th run's symbol: (pyqtgraph name, the character that looks like it)."""
    return RUN_SYMBOLS[i % len(RUN_SYMBOLS)]


def swatch(color: str, size: int = 12) -> QIcon:
    """A filled square of a run's colour, to match table columns with plot curves."""
    pix = QPixmap(size, size)
    pix.fill(QColor(color))
    return QIcon(pix)


def setting_text(key: str, value: Any) -> str:
    """A setting's value as shown: the dataset by its folder name."""
    if key == "dataset" and value is not MISSING:
        return Path(str(value)).name
    if key.endswith(".schedule"):  # in the Model tab's words
        return dict(SCHEDULES).get(str(value), format_value(value))
    return format_value(value)


class CompareView(QWidget):
    """Filled from a ``Comparison``; ``back_requested`` returns to the list of runs."""

    back_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._plot: ComparisonPlot | None = None
        self.comparison: Comparison | None = None
        self.colors: list[str] = []
        self.back_button = QPushButton("← All runs")
        self.back_button.setToolTip("Back to the list of runs")
        self.back_button.clicked.connect(self.back_requested.emit)
        self.title = QLabel()
        top = QHBoxLayout()
        top.addWidget(self.back_button)
        top.addWidget(self.title, 1)

        self.scores = self._table("Best validation accuracy of each phase, accuracy of the "
                                  "last evaluation, and recall per class: of the images of a "
                                  "class, the share the model found.")
        self.settings = self._table("Only the settings whose values differ between the runs.")
        scores_box = QGroupBox("Accuracy and recall per class")
        QVBoxLayout(scores_box).addWidget(self.scores)
        self.settings_box = QGroupBox("Settings that differ")
        QVBoxLayout(self.settings_box).addWidget(self.settings)
        tables = QSplitter()
        tables.addWidget(scores_box)
        tables.addWidget(self.settings_box)
        tables.setStretchFactor(0, 3)
        tables.setStretchFactor(1, 2)
        self.plot_box = QGroupBox("Validation accuracy and loss per epoch (a dashed line "
                                  "marks where a run's fine-tuning began)")
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.plot_holder = QVBoxLayout(self.plot_box)
        self.plot_holder.addWidget(self.legend)
        # Plots above, tables below: the curves get the width, which epochs need.
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.addWidget(self.plot_box)
        self.split.addWidget(tables)
        self.split.setChildrenCollapsible(False)
        self.split.setStretchFactor(0, 1)  # a taller window gives the plots the height
        self.split.setStretchFactor(1, 0)
        self._split_moved = False
        self.split.splitterMoved.connect(lambda *_: setattr(self, "_split_moved", True))
        v = QVBoxLayout(self)
        v.addLayout(top)
        v.addWidget(self.split, 1)

    @staticmethod
    def _table(tip: str) -> QTableWidget:
        table = QTableWidget()
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        table.setToolTip(tip)
        table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.verticalHeader().setDefaultAlignment(Qt.AlignmentFlag.AlignLeft
                                                   | Qt.AlignmentFlag.AlignVCenter)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        table.horizontalHeader().setMinimumSectionSize(60)
        return table

    @property
    def plot(self) -> ComparisonPlot:
        """The plot, created on first use (pyqtgraph loads then)."""
        if self._plot is None:
            from tlgui.gui.comparison_plot import ComparisonPlot

            self._plot = ComparisonPlot()
            self.plot_holder.addWidget(self._plot, 1)
        return self._plot

    def show_comparison(self, c: Comparison) -> None:
        """Shows the runs' curves, scores and differing settings."""
        self.comparison = c
        self.colors = [run_color(i) for i in range(len(c.runs))]
        names = [d.record.name for d in c.runs]
        self.title.setText(f"<b>Comparing {len(c.runs)} runs</b>")
        # Numbered columns stay readable for long names and many runs; the legend names them.
        self.legend.setText("&nbsp;&nbsp;&nbsp;&nbsp; ".join(
            f'<span style="color:{col}; font-size:14pt">■{run_symbol(i)[1]}</span>&nbsp;'
            f"<b>{i + 1}</b>&nbsp;{html.escape(n)}"
            for i, (n, col) in enumerate(zip(names, self.colors, strict=True))))
        self.plot.show_runs([(n, col, run_symbol(i)[0], d.history) for i, (n, col, d)
                             in enumerate(zip(names, self.colors, c.runs, strict=True))])
        rows: list[tuple[str, list[float | None]]] = [
            (f"Phase {p} best", [d.record.phase_accuracy.get(p) for d in c.runs])
            for p in c.phases]
        rows.append(("Evaluation", [d.evaluation.accuracy if d.evaluation else None
                                    for d in c.runs]))
        rows += [(f"Recall: {name}", [(d.recall or {}).get(name) for d in c.runs])
                 for name in c.class_names]
        self._fill(self.scores, [r[0] for r in rows],
                   [[_pct(x) for x in values] for _, values in rows],
                   best=[values for _, values in rows])
        self._fill(self.settings, [SETTING_NAMES.get(d.key, d.key) for d in c.differences],
                   [[setting_text(d.key, v) for v in d.values] for d in c.differences],
                   tips=[d.key for d in c.differences])
        self.settings_box.setTitle("Settings that differ" if c.differences else
                                   "Settings that differ: none, the runs used the same settings")
        self._split_moved = False
        self._share_height()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._share_height()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._share_height()

    def _share_height(self) -> None:
        """Gives the tables the height their rows need (up to half), the plots the rest,
        until the user moves the divider."""
        total = sum(self.split.sizes())
        if self._split_moved or total <= 0 or not self.isVisible():
            return
        need = 0
        for table in (self.scores, self.settings):
            table.resizeRowsToContents()
            need = max(need, table.horizontalHeader().sizeHint().height()
                       + table.verticalHeader().length())
        tables = min(need + 60, total // 2)  # 60: the group box's title and margins
        self.split.setSizes([total - tables, tables])

    def _fill(self, table: QTableWidget, row_names: list[str], cells: list[list[str]],
              best: list[list[float | None]] | None = None,
              tips: list[str] | None = None) -> None:
        c = self.comparison
        assert c is not None
        table.clear()
        table.setRowCount(len(row_names))
        table.setColumnCount(len(c.runs))
        for col, (d, color) in enumerate(zip(c.runs, self.colors, strict=True)):
            head = QTableWidgetItem(swatch(color), str(col + 1))
            head.setToolTip(f"{d.record.name}\n{d.path}")
            table.setHorizontalHeaderItem(col, head)
        for row, name in enumerate(row_names):
            head = QTableWidgetItem(name)
            if tips:
                head.setToolTip(tips[row])
            table.setVerticalHeaderItem(row, head)
            top = _best(best[row]) if best else None
            for col, text in enumerate(cells[row]):
                item = QTableWidgetItem(text)
                item.setTextAlignment(RIGHT)
                item.setToolTip(text)
                if top is not None and best and best[row][col] == top:
                    font = QFont()
                    font.setBold(True)
                    item.setFont(font)
                table.setItem(row, col, item)


def _best(values: list[float | None]) -> float | None:
    """The highest value of a row when at least two runs have one (marked in bold)."""
    known = [v for v in values if v is not None and not math.isnan(v)]
    return max(known) if len(known) >= 2 else None
