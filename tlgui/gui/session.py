"""The window's state: the dataset, the model and its training, each changed by a worker.

Only one job touches the model at a time (build, recompile, train, evaluate); ``busy``
names it, and panels enable their buttons from ``train_block_reason``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QSettings, Signal

from tlgui.core.config import TrainConfig
from tlgui.core.events import StageProgress
from tlgui.gui import jobs
from tlgui.gui.settings import add_recent_dataset
from tlgui.gui.workers import Job, start_job

if TYPE_CHECKING:
    from tlgui.core.dataset import Dataset
    from tlgui.core.training import TrainResult

log = logging.getLogger(__name__)


def model_key(config: TrainConfig) -> tuple[Any, ...]:
    """The settings baked into a built model: a change means building it again."""
    return (config.backbone, config.image_size, config.weights, config.weights_dir,
            config.dropout, config.augment, config.seed)


class Session(QObject):
    """Dataset, model and training state shared by the panels."""

    dataset_changed = Signal(object)
    model_changed = Signal(object)
    model_state_changed = Signal()
    busy_changed = Signal(str)
    progress = Signal(object)
    training_started = Signal(object)
    training_event = Signal(object)
    training_finished = Signal(object, str)
    evaluation_ready = Signal(object)
    status_message = Signal(str)
    error = Signal(str, object)
    model_error = Signal(str)

    def __init__(self, settings: QSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.config_source: Callable[[], TrainConfig] = TrainConfig
        self.dataset: Dataset | None = None
        self.built: jobs.BuiltModel | None = None
        self.result: TrainResult | None = None
        self.evaluation: Any = None
        self.busy = ""
        self.model_problem = ""
        self.job: Job | None = None
        self._scan_job: Job | None = None
        self._rebuild_pending = False
        self.closing = False

    # -- state --------------------------------------------------------------------
    def close(self) -> None:
        """Starts nothing new from now on and cancels what runs."""
        self.closing = True
        self._rebuild_pending = False
        for job in (self.job, self._scan_job):
            if job is not None and job.is_running():
                job.cancel()

    def _set_busy(self, what: str) -> None:
        self.busy = what
        self.busy_changed.emit(what)

    def _fail(self, title: str) -> Callable[[BaseException], None]:
        def show(exc: BaseException) -> None:
            self.error.emit(title, exc)
        return show

    def train_block_reason(self) -> str:
        """Why Train is disabled now, or "" when training can start."""
        if self.busy == "training":
            return "Training is running."
        if self.dataset is None:
            return "Open a dataset first (Data tab)."
        if self.model_problem:
            return "The model cannot be built: see the Model tab."
        if self.busy in ("building", "scanning") or self._rebuild_pending or self.built is None:
            return "Building the model…"
        if self.busy:
            return f"Wait: {self.busy}…"
        if model_key(self.config_source()) != model_key(self.built.config):
            return "Building the model…"
        if self.built.cm.needs_recompile:
            return "Trainable layers changed: recompile before training (Model tab)."
        config = self.config_source()
        if config.phase2.epochs > 0 and self.built.cm.first_trainable_backbone_index() is None:
            return ("No backbone layer is ticked for fine-tuning: tick some in the layer "
                    "tree, or set phase 2 epochs to 0.")
        return ""

    # -- dataset ------------------------------------------------------------------
    def open_dataset(self, path: Path) -> None:
        """Scans a folder in the background; ``dataset_changed`` follows."""
        if self.busy == "training" or self.closing:
            self.status_message.emit("Finish or cancel training before opening another dataset.")
            return
        if self._scan_job is not None and self._scan_job.is_running():
            self._scan_job.cancel()
        self.status_message.emit(f"Scanning {path}…")
        split = self.config_source().split
        self._scan_job = start_job(
            "scan", functools.partial(jobs.scan_dataset, Path(path), split),
            on_progress=self.progress.emit, on_success=self._on_scanned,
            on_failure=self._fail("Cannot use this folder"))

    def _on_scanned(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.result = None
        self.evaluation = None
        add_recent_dataset(self.settings, str(dataset.root))
        n = len(dataset.train) + len(dataset.validation) + len(dataset.test)
        self.status_message.emit(f"{dataset.root.name}: {dataset.num_classes} classes, "
                                 f"{n} images")
        self.dataset_changed.emit(dataset)
        self.request_build()

    # -- model --------------------------------------------------------------------
    def request_build(self) -> None:
        """Builds the model for the dataset's classes and the current settings."""
        if self.dataset is None or self.closing:
            return
        if self.busy:
            self._rebuild_pending = True
            self.model_state_changed.emit()
            return
        self._rebuild_pending = False
        self.model_problem = ""
        self.model_error.emit("")
        config = self.config_source()
        self._set_busy("building")
        self.job = start_job(
            "build", functools.partial(jobs.build_model, config, self.dataset.class_names),
            on_progress=self.progress.emit, on_success=self._on_built,
            on_failure=self._on_build_failed, on_finish=self._job_done)

    def _on_built(self, built: jobs.BuiltModel) -> None:
        self.built = built
        self.status_message.emit(f"{built.cm.backbone_name} ready: {built.cm.image_size} px, "
                                 f"{len(built.cm.class_names)} classes")
        self.model_changed.emit(built)

    def _on_build_failed(self, exc: BaseException) -> None:
        from tlgui.gui.dialogs import error_text

        self.built = None
        self.model_problem = error_text(exc)
        self.model_error.emit(self.model_problem)
        self.model_changed.emit(None)

    def _job_done(self) -> None:
        self.job = None
        self._set_busy("")
        if self._rebuild_pending:
            self.request_build()
        self.model_state_changed.emit()

    def set_trainable(self, path: tuple[str, ...], trainable: bool) -> None:
        """A layer tick changed."""
        if self.built is None or self.busy:
            return
        self.built.cm.set_trainable(path, trainable)
        self.model_state_changed.emit()

    def set_fine_tune_at(self, index: int | None) -> None:
        """Unfreezes the backbone from ``index`` up (None freezes all of it)."""
        if self.built is None or self.busy:
            return
        if index is None:
            self.built.cm.freeze_backbone()
        else:
            self.built.cm.set_fine_tune_at(index)
        self.model_state_changed.emit()

    def recompile(self) -> None:
        """Compiles the model with its current flags (clears the recompile gate)."""
        if self.built is None or self.busy:
            return
        config = self.config_source()
        self._set_busy("recompiling")
        self.job = start_job(
            "recompile", functools.partial(jobs.recompile, self.built.cm, config.phase2,
                                           config.label_smoothing),
            on_failure=self._fail("Recompiling failed"), on_finish=self._job_done)

    # -- training -----------------------------------------------------------------
    def start_training(self) -> bool:
        """Starts both phases; returns False (and says why) when it cannot."""
        reason = self.train_block_reason()
        if reason or self.closing:
            self.status_message.emit(reason)
            return False
        assert self.dataset is not None and self.built is not None
        config = self.config_source()
        self._set_busy("training")
        self.training_started.emit(config)
        self.job = start_job(
            "train", functools.partial(jobs.train, self.dataset, config, self.built.cm),
            on_progress=self.training_event.emit, on_success=self._on_trained,
            on_failure=self._on_train_failed, on_cancel=self._on_train_cancelled,
            on_finish=self._on_train_finish)
        return True

    def cancel_training(self) -> None:
        """Stops training within one batch; the best finished epoch is kept."""
        if self.busy == "training" and self.job is not None:
            self.status_message.emit("Cancelling…")
            self.job.cancel()

    def _on_trained(self, result: TrainResult) -> None:
        self.result = result
        if result.dataset is not None:
            self.dataset = result.dataset
        self.training_finished.emit(result, "succeeded")

    def _on_train_cancelled(self) -> None:
        assert self.job is not None
        self.result = self.job.worker.partial
        self.training_finished.emit(self.result, "cancelled")

    def _on_train_failed(self, exc: BaseException) -> None:
        self.training_finished.emit(None, "failed")
        self.error.emit("Training failed", exc)

    def _on_train_finish(self) -> None:
        done = self.result is not None and bool(self.result.history)
        self._job_done()
        if done:
            self.start_evaluation()

    # -- evaluation ---------------------------------------------------------------
    def start_evaluation(self) -> None:
        """Classifies the validation images with the trained model."""
        if self.built is None or self.dataset is None or self.busy or self.closing:
            return
        self._set_busy("evaluating")
        self.progress.emit(StageProgress("predict", 0, 0, "Evaluating…"))
        self.job = start_job(
            "evaluate", functools.partial(jobs.evaluate, self.built.cm, self.dataset),
            on_progress=self.progress.emit, on_success=self._on_evaluated,
            on_failure=self._fail("Evaluation failed"), on_finish=self._job_done)

    def _on_evaluated(self, evaluation: Any) -> None:
        self.evaluation = evaluation
        self.evaluation_ready.emit(evaluation)
