"""The selected run at a glance, below the list: its curves, settings and scores per class."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from tlgui.core.run_catalog import format_duration
from tlgui.core.run_compare import RunDetails
from tlgui.gui.compare_view import run_color
from tlgui.gui.evaluation_models import ClassMetricsModel, fit_class_columns

if TYPE_CHECKING:
    from tlgui.gui.comparison_plot import ComparisonPlot

HINT, RUN = range(2)


def _pct(x: float | None) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.1%}"


class RunPreview(QStackedWidget):
    """A hint, or one run: validation curves, a summary and precision/recall per class."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._plot: ComparisonPlot | None = None
        self.details: RunDetails | None = None
        self.hint = QLabel()
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # A model, sortable: a run of 500 classes is 500 rows, not 2,000 items.
        self.class_model = ClassMetricsModel()
        self.classes = QTableView()
        self.classes.setModel(self.class_model)
        self.classes.setSortingEnabled(True)
        self.classes.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.classes.verticalHeader().hide()
        self.classes.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.classes.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.classes.horizontalHeader().setSortIndicatorClearable(True)
        fit_class_columns(self.classes, stretch=1)
        self.classes.verticalHeader().setDefaultSectionSize(
            self.classes.fontMetrics().height() + 6)
        self.classes.setToolTip("From the run's last evaluation. Precision: of the photos "
                                "put in this class, the share that belong there. Recall: of "
                                "the photos of this class, the share found.")
        self.plot_holder = QVBoxLayout()
        self.plot_holder.setContentsMargins(0, 0, 0, 0)
        plot_area = QWidget()
        plot_area.setLayout(self.plot_holder)
        side = QWidget()
        sv = QVBoxLayout(side)
        sv.setContentsMargins(0, 0, 0, 0)
        sv.addWidget(self.summary)
        sv.addWidget(self.classes, 1)
        split = QSplitter()
        self.split = split
        split.addWidget(plot_area)
        split.addWidget(side)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        side.setMinimumWidth(380)
        page = QWidget()
        row = QHBoxLayout(page)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(split)
        self.addWidget(self.hint)
        self.addWidget(page)

    @property
    def plot(self) -> ComparisonPlot:
        """The curves, created on first use (pyqtgraph loads then)."""
        if self._plot is None:
            from tlgui.gui.comparison_plot import ComparisonPlot

            self._plot = ComparisonPlot()
            self.plot_holder.addWidget(self._plot)
            # The splitter shared the width out while the plot's side was empty: half
            # each now (setSizes shares the space in these proportions).
            self.split.setSizes([1000, 1000])
        return self._plot

    def show_hint(self, text: str) -> None:
        """Shows a line of text instead of a run."""
        self.details = None
        self.hint.setText(text)
        self.setCurrentIndex(HINT)

    def show_run(self, d: RunDetails) -> None:
        """Shows one run."""
        self.details = d
        r = d.record
        self.plot.show_runs([(r.name, run_color(0), "o", d.history)])
        cfg = d.config
        p1, p2 = cfg.get("phase1", {}), cfg.get("phase2", {})
        phases = ", ".join(f"phase {p} {_pct(a)}" for p, a in sorted(r.phase_accuracy.items()))
        lines = [f"<b>{html.escape(r.name)}</b> · {html.escape(r.state)} · "
                 f"{html.escape(r.started)} · {format_duration(r.duration_s)}"]
        if r.note:
            lines.append(f"<i>{html.escape(r.note)}</i>".replace("\n", "<br>"))
        lines.append(f"Dataset: {html.escape(str(r.dataset or '?'))}")
        self.summary.setToolTip(f"Run folder: {r.path}")
        if isinstance(p1, dict) and isinstance(p2, dict):
            lines.append(f"{html.escape(r.backbone)}, {r.image_size} px · phase 1: "
                         f"{p1.get('epochs', '?')} epochs at {p1.get('learning_rate', '?')} · "
                         f"phase 2: {p2.get('epochs', '?')} epochs at "
                         f"{p2.get('learning_rate', '?')}")
        lines.append(f"Best validation accuracy: {phases or 'no epoch finished'}")
        if d.evaluation is not None:
            ev = d.evaluation
            lines.append(f"Evaluation: {_pct(ev.accuracy)} of {ev.total} {ev.split} images")
        elif d.evaluation_problem:
            lines.append(html.escape(d.evaluation_problem))
        if r.reason:
            lines.append(f"<span style='color:#b00020'>{html.escape(r.reason)}</span>")
        self.summary.setText("<br>".join(lines))
        per_class = d.evaluation.per_class if d.evaluation else ()
        self.class_model.set_evaluation(d.evaluation)
        header = self.classes.horizontalHeader()
        self.class_model.sort(header.sortIndicatorSection(), header.sortIndicatorOrder())
        self.classes.setVisible(bool(per_class))
        self.setCurrentIndex(RUN)
