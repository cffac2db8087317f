"""The window's state: the dataset, the model and its training, each changed by a worker.

The Keras model lives in the engine process; the session holds its description
(``ModelInfo``): the layer tree with the user's ticks, and the ticks it was last compiled
with. Ticking a layer edits the tree here at once; Recompile sends the ticks to the
engine. Only one job touches the model at a time (build, recompile, train, evaluate,
open a run); ``busy`` names it, and panels enable their buttons from
``train_block_reason``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QSettings, Signal

from tlgui.core import layer_tree
from tlgui.core.config import TrainConfig
from tlgui.core.events import RunStarted
from tlgui.engine import codec
from tlgui.engine.codec import EngineCrashed
from tlgui.gui import jobs
from tlgui.gui.corrections_store import CorrectionStore
from tlgui.gui.engine_settings import saved_devices
from tlgui.gui.session_evaluation import SessionEvaluation
from tlgui.gui.session_runs import SessionRuns
from tlgui.gui.settings import LAST_RUN_KEY, add_recent_dataset, save_ticks, saved_ticks
from tlgui.gui.workers import Job, start_job

if TYPE_CHECKING:
    from tlgui.core.dataset import Dataset
    from tlgui.core.metrics import Evaluation
    from tlgui.core.outcomes import ModelInfo, TrainSummary
    from tlgui.gui.engine_host import EngineHost

log = logging.getLogger(__name__)


def model_key(config: TrainConfig) -> tuple[Any, ...]:
    """The settings baked into a built model: a change means building it again."""
    return (config.backbone, config.image_size, config.weights, config.weights_dir,
            config.dropout, config.augment, config.seed)


class Session(SessionEvaluation, SessionRuns, QObject):
    """Dataset, model and training state shared by the panels."""

    dataset_changed = Signal(object)
    dataset_corrected = Signal(object)
    model_changed = Signal(object)
    model_state_changed = Signal()
    busy_changed = Signal(str)
    progress = Signal(object)
    training_started = Signal(object)
    training_event = Signal(object)
    training_finished = Signal(object, str)
    evaluation_ready = Signal(object)
    test_ready = Signal(object)  # test/ measured once after a training (an Evaluation)
    status_message = Signal(str)
    error = Signal(str, object)
    model_error = Signal(str)
    config_loaded = Signal(object)
    run_opened = Signal(object, object)

    def __init__(self, settings: QSettings, engine: EngineHost,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.engine = engine
        self.config_source: Callable[[], TrainConfig] = TrainConfig
        self.dataset: Dataset | None = None
        # The scan as found; ``dataset`` is it with the user's label corrections applied.
        self.raw_dataset: Dataset | None = None
        self.dataset_token = ""
        self.corrections = CorrectionStore(self)
        self.corrections.changed.connect(self._corrections_changed)
        self.corrections.error.connect(self.error)
        self.model: ModelInfo | None = None
        self.result: TrainSummary | None = None
        self.evaluation: Evaluation | None = None
        self.mirror_evaluation = False  # average each image with its mirror (the TTA box)
        # The run whose test/ is measured once, after its validation figure.
        self._measure_test: Path | None = None
        self._test_after: Path | None = None  # measured as soon as the job at hand ends
        self.evaluate_when_idle = False  # asked while busy (the mirror box): evaluate after
        self.busy = ""
        self.model_problem = ""
        self.job: Job | None = None
        self.current_run: Path | None = None
        self._scan_job: Job | None = None
        self._rebuild_pending = False
        self._build_flags: layer_tree.Flags | None = None
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
        if self.busy in ("building", "scanning") or self._rebuild_pending or self.model is None:
            return "Building the model…"
        if self.busy:
            return f"Wait: {self.busy}…"
        if tuple(self.model.class_names) != tuple(self.dataset.class_names):
            return "Building the model…"
        if model_key(self.config_source()) != model_key(self.model.config):
            return "Building the model…"
        if self.model.needs_recompile:
            return "Trainable layers changed: recompile before training (Model tab)."
        config = self.config_source()
        if config.phase2.epochs > 0 and self.model.first_trainable_backbone_index() is None:
            return ("No backbone layer is ticked for fine-tuning: tick some in the layer "
                    "tree, or set phase 2 epochs to 0.")
        return ""

    # -- dataset ------------------------------------------------------------------
    def open_dataset(self, path: Path, then: Callable[[], None] | None = None) -> None:
        """Scans a folder in the background; ``dataset_changed`` follows, then ``then``."""
        if self.busy == "training" or self.closing:
            self.status_message.emit("Finish or cancel training before opening another dataset.")
            return
        if self._scan_job is not None and self._scan_job.is_running():
            self._scan_job.cancel()
        self.status_message.emit(f"Scanning {path}…")
        split = self.config_source().split
        self._scan_job = start_job(
            "scan", functools.partial(jobs.scan_dataset, self.engine, Path(path), split),
            on_progress=self.progress.emit,
            on_success=lambda found: self._on_scanned(found, then),
            on_failure=self._fail("Cannot use this folder"))

    def _on_scanned(self, found: tuple[Dataset, str],
                    then: Callable[[], None] | None) -> None:
        raw, token = found
        self.raw_dataset, self.dataset_token = None, token
        dataset = self.corrections.apply(raw)
        self.raw_dataset, self.dataset = raw, dataset
        self.result = None
        self.evaluation = None
        add_recent_dataset(self.settings, str(dataset.root))
        n = len(dataset.train) + len(dataset.validation) + len(dataset.test)
        self.status_message.emit(f"{dataset.root.name}: {dataset.num_classes} classes, "
                                 f"{n} images")
        self.dataset_changed.emit(dataset)
        if then is not None:
            then()
        else:
            self.request_build()

    def _corrections_changed(self) -> None:
        """A label decision: the dataset shown and trained on follows it at once."""
        raw = self.raw_dataset
        if raw is None or self.corrections.root != raw.root.expanduser().absolute():
            return
        old = self.dataset
        self.dataset = self.corrections.apply(raw)
        self.dataset_corrected.emit(self.dataset)
        if old is None or old.class_names != self.dataset.class_names:
            self.request_build()

    def build_if_classes_changed(self) -> None:
        """Builds the model again only when its classes are not the dataset's."""
        if self.model is None or self.dataset is None or \
                tuple(self.model.class_names) != tuple(self.dataset.class_names):
            self.request_build()

    def dataset_ref(self) -> dict[str, Any] | None:
        """How an engine call names the dataset, corrections included (None: none open)."""
        if self.dataset is None:
            return None
        return codec.dataset_ref(self.dataset, self.dataset_token, self.config_source().split,
                                 self.corrections.ref_data())

    def claim(self, what: str) -> bool:
        """Marks the session busy with another panel's engine job (the audit), so that
        training waits for it; False when something else runs."""
        if self.busy or self.closing:
            return False
        self._set_busy(what)
        return True

    def release(self) -> None:
        """Ends what ``claim`` started."""
        self._job_done()

    # -- model --------------------------------------------------------------------
    def request_build(self, flags: layer_tree.Flags | None = None) -> None:
        """Builds the model for the dataset's classes and the current settings.

        Ticks come from ``flags`` when given (a run trained again), else from the model
        shown when the backbone stays the same, else from the last session's ticks for
        that backbone.
        """
        if flags is not None:
            self._build_flags = flags
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
        flags, self._build_flags = self._build_flags, None
        if flags is None and self.model is not None and self.model.backbone == config.backbone \
                and self.model.image_size == (config.image_size or self.model.image_size):
            flags = layer_tree.own_flags(self.model.tree)
        if flags is None:
            flags = saved_ticks(self.settings, config)
        self._set_busy("building")
        self.job = start_job(
            "build", functools.partial(jobs.build_model, self.engine, config,
                                       self.dataset.class_names, flags),
            on_progress=self.progress.emit, on_success=self._on_built,
            on_failure=self._on_build_failed, on_finish=self._job_done)

    def _take_model(self, info: ModelInfo) -> None:
        """Holds a model description from the engine.

        When it has the same layers as the one shown, the shown tree stays (with the
        new flags), so the layer view keeps what the user expanded and selected.
        """
        old = self.model
        if old is not None and layer_tree.same_layers(old.tree, info.tree):
            layer_tree.apply_own_flags(old.tree, layer_tree.own_flags(info.tree))
            info.tree = old.tree
            self.model = info
            self.model_state_changed.emit()
            return
        self.model = info
        self.model_changed.emit(info)

    def _on_built(self, info: ModelInfo) -> None:
        self.result = None
        self._take_model(info)
        self.status_message.emit(f"{info.backbone} ready: {info.image_size} px, "
                                 f"{len(info.class_names)} classes")

    def _on_build_failed(self, exc: BaseException) -> None:
        from tlgui.gui.dialogs import error_text

        self.model = None
        self.model_problem = error_text(exc)
        self.model_error.emit(self.model_problem)
        self.model_changed.emit(None)

    def _job_done(self) -> None:
        self.job = None
        self._set_busy("")
        if self._rebuild_pending:
            # A new model: nothing trained to evaluate.
            self.evaluate_when_idle, self._test_after = False, None
            self.request_build()
        self.model_state_changed.emit()
        self._after_job()

    def ticks_changed(self) -> None:
        """Remembers the ticks for the next session and tells the panels."""
        if self.model is not None:
            save_ticks(self.settings, self.model.config, layer_tree.own_flags(self.model.tree))
        self.model_state_changed.emit()

    def set_trainable(self, path: tuple[str, ...], trainable: bool) -> None:
        """A layer tick changed (the engine learns of it at the next recompile)."""
        if self.model is None or self.busy:
            return
        layer_tree.set_trainable(self.model.tree, path, trainable)
        self.ticks_changed()

    def set_block_trainable(self, block: int, trainable: bool) -> None:
        """A block tick of the plain layer view changed."""
        if self.model is None or self.busy:
            return
        layer_tree.set_block_trainable(self.model.tree, block, trainable)
        self.ticks_changed()

    def set_fine_tune_at(self, index: int | None) -> None:
        """Unfreezes the backbone from ``index`` up (None freezes all of it)."""
        if self.model is None or self.busy:
            return
        layer_tree.set_fine_tune_at(self.model.tree, index)
        self.ticks_changed()

    def recompile(self) -> None:
        """Compiles the engine's model with the current ticks (clears the recompile gate)."""
        if self.model is None or self.busy:
            return
        config = self.config_source()
        flags = layer_tree.own_flags(self.model.tree)
        self._set_busy("recompiling")
        self.job = start_job(
            "recompile", functools.partial(jobs.recompile, self.engine, flags, config.phase2,
                                           config.label_smoothing),
            on_success=self._on_recompiled, on_failure=self._fail("Recompiling failed"),
            on_finish=self._job_done)

    def _on_recompiled(self, flags: layer_tree.Flags) -> None:
        if self.model is not None:
            self.model.compiled_flags = flags

    # -- training -----------------------------------------------------------------
    def start_training(self) -> bool:
        """Starts both phases; returns False (and says why) when it cannot."""
        reason = self.train_block_reason()
        if reason or self.closing:
            self.status_message.emit(reason)
            return False
        assert self.dataset is not None and self.model is not None
        config = self.config_source()
        self.current_run = None
        self._measure_test = self._test_after = None
        self._set_busy("training")
        self.training_started.emit(config)
        self.job = start_job(
            "train", functools.partial(jobs.train, self.engine, self.dataset, self.dataset_token,
                                       config, layer_tree.own_flags(self.model.tree),
                                       self.model.compiled_flags,
                                       corrections=self.corrections.ref_data(),
                                       devices=saved_devices(self.settings)),
            on_progress=self._on_training_event, on_success=self._on_trained,
            on_failure=self._on_train_failed, on_cancel=self._on_train_cancelled,
            on_finish=self._on_train_finish)
        return True

    def _on_training_event(self, event: object) -> None:
        if isinstance(event, RunStarted):
            self.current_run = Path(event.path)
        self.training_event.emit(event)

    def cancel_training(self) -> None:
        """Stops training within one batch; the best finished epoch is kept."""
        if self.busy == "training" and self.job is not None:
            self.status_message.emit("Cancelling…")
            self.job.cancel()

    def _take_result(self, summary: TrainSummary | None, info: ModelInfo | None) -> None:
        self.result = summary
        if info is not None:
            self._take_model(info)
        if summary is not None and summary.problems and self.dataset is not None:
            self.dataset = self.dataset.without(summary.problems)
            if self.raw_dataset is not None:
                self.raw_dataset = self.raw_dataset.without(summary.problems)

    def _on_trained(self, outcome: tuple[TrainSummary, ModelInfo]) -> None:
        self._take_result(*outcome)
        if self.result is not None and self.result.run is not None:
            self.settings.setValue(LAST_RUN_KEY, str(self.result.run))
        self.training_finished.emit(self.result, "succeeded")

    def _on_train_cancelled(self) -> None:
        assert self.job is not None
        partial = self.job.worker.partial
        if isinstance(partial, jobs.TrainingCancelled):
            self._take_result(partial.result, partial.model)
        else:
            self.result = None
        self.training_finished.emit(self.result, "cancelled")

    def _on_train_failed(self, exc: BaseException) -> None:
        self.result = None
        self.training_finished.emit(None, "failed")
        if isinstance(exc, EngineCrashed):
            exc = EngineCrashed(f"{exc} {self.kept_after_crash()}")
        self.error.emit("Training failed", exc)

    def _on_train_finish(self) -> None:
        done = self.result is not None and self.result.trained
        self._job_done()
        if done:
            both = self.dataset is not None and bool(self.dataset.test) \
                and bool(self.dataset.validation)
            self._measure_test = self.model.run if both and self.model is not None else None
            self.start_evaluation()
