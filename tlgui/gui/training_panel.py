"""The Train tab: start and cancel, progress with phase, epoch, batch and ETA, the live plot."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tlgui.core.config import TrainConfig
from tlgui.core.events import (
    BatchProgress,
    EpochEnded,
    Notice,
    PhaseEnded,
    PhaseStarted,
    StageProgress,
)
from tlgui.core.runs import kept_epoch
from tlgui.gui.icons import icon

if TYPE_CHECKING:
    from tlgui.core.outcomes import TrainSummary
    from tlgui.gui.training_plot import TrainingPlot

log = logging.getLogger(__name__)
PLOT_FILE = "training_plot.png"
STAGE_WORDS = {
    "decode": "reading and resizing the images (once; later runs reuse them)",
    "features": "computing the frozen layers' features (once for the whole phase)",
    "build": "building the model",
    "scan": "scanning the folder",
}


def save_plot_later(result: TrainSummary, path: Path) -> None:
    """Draws the run's curves into ``path`` in a worker (never stalls the window)."""
    from tlgui.gui.plot_image import save_history_png
    from tlgui.gui.workers import start_job

    kept = kept_epoch(result.history)
    history = list(result.history)

    def write(report: object, cancel: object) -> Path:
        return save_history_png(history, int(kept["epoch"]) if kept else None, path)

    start_job("save-plot", write,
              on_failure=lambda exc: log.warning("cannot save the plot in %s: %s", path, exc))


def _pct(value: object) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) and value == value else "–"


def format_eta(seconds: float) -> str:
    """``75`` -> ``1:15``; hours when needed."""
    s = max(0, round(seconds))
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


class TrainingPanel(QWidget):
    """Buttons, progress, the plot and a log of what happened."""

    start_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._plot: TrainingPlot | None = None
        self.config = TrainConfig()
        self.phase_info: dict[int, PhaseStarted] = {}
        self.phase = 0
        self.stage_t0 = time.monotonic()
        self.stage_done0 = 0
        self._stage_key: tuple[str, str] | None = None
        self.run_folder: Path | None = None
        self.start_button = QPushButton(icon("train"), "Train")
        self.start_button.setToolTip("Train phase 1, then phase 2, with the settings of the "
                                     "Model tab. The model keeps the best epoch.")
        self.start_button.clicked.connect(self.start_requested.emit)
        self.cancel_button = QPushButton(icon("cancel"), "Cancel")
        self.cancel_button.setToolTip("Stop after the current batch; the best finished epoch "
                                      "is kept.")
        self.cancel_button.clicked.connect(self.cancel_requested.emit)
        self.cancel_button.setEnabled(False)
        self.reason_label = QLabel()
        self.reason_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("%p %")
        self.progress_label = QLabel("Not started.")
        self.save_button = QPushButton(icon("save"), "Save plot as PNG…")
        self.save_button.clicked.connect(self.choose_png)
        self.save_button.setEnabled(False)
        self.open_run_button = QPushButton(icon("open"), "Open run folder")
        self.open_run_button.clicked.connect(self._open_run)
        self.open_run_button.setEnabled(False)
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumHeight(110)
        self.log_view.setPlaceholderText("Phases, epochs and notices appear here.")

        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.reason_label, 1)
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.open_run_button)
        self.plot_holder = QVBoxLayout()
        v = QVBoxLayout(self)
        v.addLayout(buttons)
        v.addWidget(self.progress)
        v.addWidget(self.progress_label)
        v.addLayout(self.plot_holder, 1)
        v.addWidget(self.summary_label)
        v.addWidget(self.log_view)

    @property
    def plot(self) -> TrainingPlot:
        """The plot, created on first use (pyqtgraph is imported then, not at start-up)."""
        if self._plot is None:
            from tlgui.gui.training_plot import TrainingPlot

            self._plot = TrainingPlot()
            self.plot_holder.addWidget(self._plot)
        return self._plot

    # -- state --------------------------------------------------------------------
    def set_state(self, running: bool, reason: str) -> None:
        """Enables Train/Cancel; ``reason`` says why Train is disabled."""
        self.start_button.setEnabled(not running and not reason)
        self.cancel_button.setEnabled(running)
        self.reason_label.setText("" if running else reason)

    def training_started(self, config: TrainConfig) -> None:
        self.config = config
        self.phase_info = {}
        self.phase = 0
        self._stage_key = None
        self.stage_t0 = time.monotonic()
        self.plot.clear()
        self.summary_label.clear()
        self.log_view.clear()
        self.progress.setRange(0, 0)
        self.progress_label.setText("Preparing · building the model and reading the images…")
        self.open_run_button.setEnabled(False)
        self.save_button.setEnabled(False)

    @property
    def phases(self) -> int:
        """How many phases the run has."""
        return sum(1 for pc in (self.config.phase1, self.config.phase2) if pc.epochs > 0) or 1

    def _where(self) -> str:
        """``Phase 1 of 2`` or ``Preparing`` (before the first phase)."""
        return f"Phase {self.phase} of {self.phases}" if self.phase else "Preparing"

    def handle_event(self, event: Any) -> None:
        """Shows one event from the training worker."""
        if isinstance(event, StageProgress):
            self._show_stage(event)
        elif isinstance(event, PhaseStarted):
            self.phase_info[event.phase] = event
            self.phase = event.phase
            self.plot.mark_phase_start(event.phase, event.first_epoch)
            what = "new classifier" if event.phase == 1 else "fine-tuning"
            # Right away: the first batch of a phase can take a while to come.
            self.progress.setRange(0, 0)
            self.progress_label.setText(f"{self._where()} ({what}) · epoch 1 of {event.epochs} "
                                        "· starting, estimating the time left…")
            self._log(f"Phase {event.phase} ({what}): up to {event.epochs} epochs, learning "
                      f"rate {event.learning_rate:g}, {event.trainable_params:,} trainable "
                      "parameters")
        elif isinstance(event, BatchProgress):
            self._show_batch(event)
        elif isinstance(event, EpochEnded):
            self.plot.add_epoch(event)
            self.save_button.setEnabled(True)
            self._log(f"Epoch {event.epoch} (phase {event.phase}): accuracy "
                      f"{event.accuracy:.1%}, validation accuracy {event.val_accuracy:.1%}, "
                      f"loss {event.loss:.3f}, validation loss {event.val_loss:.3f}, "
                      f"{event.seconds:.1f} s")
        elif isinstance(event, PhaseEnded):
            self.plot.set_best(event.best_epoch)
            how = "stopped early" if event.stopped_early else "done"
            self._log(f"Phase {event.phase} {how} in {event.seconds:.0f} s; best epoch "
                      f"{event.best_epoch} ({event.best_val_accuracy:.1%} validation accuracy)")
        elif isinstance(event, Notice):
            self._log(f"{event.level}: {event.message}")

    def _show_stage(self, e: StageProgress) -> None:
        now = time.monotonic()
        if (e.stage, e.message) != self._stage_key:
            self._stage_key = (e.stage, e.message)
            self.stage_t0, self.stage_done0 = now, e.done
        if e.total:
            self.progress.setRange(0, e.total)
            self.progress.setValue(e.done)
        # The frozen-feature pass is phase 1's first step.
        if e.stage == "features" and not self.phase:
            self.phase = 1
        what = STAGE_WORDS.get(e.stage, e.message or e.stage)
        if e.stage == "features" and self.phase == 2:
            what = "computing the mirrored and altered views of the training photos"
        count = f" {e.done:,}/{e.total:,}" if e.total else ""
        self.progress_label.setText(f"{self._where()} · {what}{count} · "
                                    f"{self._stage_eta(e, now)}")

    def _stage_eta(self, e: StageProgress, now: float) -> str:
        done = e.done - self.stage_done0
        spent = now - self.stage_t0
        if not e.total or done <= 0 or spent < 0.5:
            return "estimating the time left…"
        left = (e.total - e.done) * spent / done
        return f"about {format_eta(left)} left in this step"

    def _show_batch(self, e: BatchProgress) -> None:
        info = self.phase_info.get(e.phase)
        epochs = info.epochs if info else 1
        first = info.first_epoch if info else e.epoch
        in_phase = e.epoch - first
        self.phase = e.phase
        self.progress.setRange(0, max(1, epochs * e.batches))
        self.progress.setValue(in_phase * e.batches + e.batch)
        self.progress_label.setText(
            f"{self._where()} · epoch {in_phase + 1} of {epochs} · batch "
            f"{e.batch}/{e.batches} · loss {e.loss:.3f} · about {format_eta(e.eta_s)} left "
            "in this phase")

    def training_finished(self, result: TrainSummary | None, outcome: str) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if outcome == "succeeded" else 0)
        if outcome == "failed":
            self.progress_label.setText("Training failed: see the message.")
            return
        if result is None or not result.trained:
            # Nothing to export or to open: say so instead of promising a model.
            self.progress_label.setText("Cancelled before the first epoch finished: nothing "
                                        "was trained, so there is no model to use or export.")
            self.open_run_button.setEnabled(False)
            self.save_button.setEnabled(not self.plot.empty)
            return
        self.progress_label.setText("Cancelled: the model keeps the best finished epoch."
                                    if outcome == "cancelled" else "Training finished.")
        self.show_result(result)
        if result.run is not None:
            save_plot_later(result, result.run / PLOT_FILE)

    def show_result(self, result: TrainSummary) -> None:
        """The summary line and buttons for a run's result (also an opened run's)."""
        kept = kept_epoch(result.history)
        if kept is not None:
            self.plot.set_best(int(kept["epoch"]))
            times = ", ".join(f"phase {p} {s:.0f} s" for p, s in result.phase_seconds.items())
            self.summary_label.setText(
                f"The model keeps epoch {kept['epoch']} (phase {kept['phase']}): validation "
                f"accuracy {float(kept['val_accuracy']):.1%}."
                + (f" Time: {times}." if times else ""))
        self.run_folder = result.run
        self.open_run_button.setEnabled(result.run is not None)
        self.save_button.setEnabled(not self.plot.empty)

    def show_run(self, result: TrainSummary, config: TrainConfig) -> None:
        """Shows an opened run: its plot, summary and log, as when it ended."""
        self.config = config
        kept = kept_epoch(result.history)
        self.plot.show_history(result.history, int(kept["epoch"]) if kept else None)
        self.log_view.clear()
        for h in result.history:
            self._log(f"Epoch {h.get('epoch')} (phase {h.get('phase')}): validation accuracy "
                      f"{_pct(h.get('val_accuracy'))}")
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        name = result.run.name if result.run else "run"
        self.progress_label.setText(f"Opened run {name}" + (" (cancelled)" if result.cancelled
                                                          else ""))
        self.show_result(result)

    def _log(self, text: str) -> None:
        self.log_view.appendPlainText(text)

    def choose_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the plot", "training_plot.png",
                                              "PNG image (*.png)")
        if path:
            self.plot.save_png(path if path.lower().endswith(".png") else path + ".png")

    def _open_run(self) -> None:
        if self.run_folder is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.run_folder)))
