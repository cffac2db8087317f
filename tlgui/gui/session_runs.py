"""The session's runs: reopening one as it was, training again from its settings, and
what a run that stopped with its engine left behind.

A mixin of ``Session`` (it uses the session's signals, settings and jobs): the part of the
window's state that reads run folders.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlgui.core.errors import DatasetError
from tlgui.core.run_catalog import same_folder
from tlgui.core.runs import (
    EVALUATION_FILE,
    TEST_EVALUATION_FILE,
    load_config,
    load_layers,
    load_summary,
    read_json,
    run_dataset,
)
from tlgui.gui import jobs
from tlgui.gui.settings import LAST_RUN_KEY
from tlgui.gui.workers import start_job

if TYPE_CHECKING:
    from tlgui.core.outcomes import ModelInfo


class SessionRuns:
    """Opening runs and training again; mixed into ``Session``."""

    # Provided by Session.
    busy: str
    closing: bool
    current_run: Path | None
    settings: Any
    dataset: Any
    model: Any
    result: Any
    evaluation: Any
    engine: Any
    job: Any
    model_problem: str
    _rebuild_pending: bool
    status_message: Any
    error: Any
    config_loaded: Any
    run_opened: Any
    evaluation_ready: Any
    progress: Any

    def kept_after_crash(self) -> str:
        """What a run that stopped with its engine left behind, in words."""
        run = self.current_run
        if run is None:
            return "Nothing had been saved yet."
        if not (run / "model.keras").is_file():
            return f"No epoch had finished, so no model was saved (run folder {run})."
        try:
            history = read_json(run / "history.json")
            best = max(history, key=lambda h: (h.get("val_accuracy") or 0.0))
            return (f"The best finished epoch (epoch {best['epoch']}, validation accuracy "
                    f"{best['val_accuracy']:.1%}) is kept in {run}.")
        except (OSError, ValueError, TypeError, KeyError):
            return f"The best finished epoch is kept in {run}."

    def open_run(self, run: Path) -> None:
        """Restores a run: its model, settings, ticks, plot and evaluation (and dataset)."""
        if self.busy == "training" or self.closing:
            self.status_message.emit("Finish or cancel training before opening a run.")
            return
        try:
            config = load_config(run)
        except (OSError, ValueError, TypeError) as exc:
            self.error.emit("Cannot open the run", DatasetError(
                f"The run folder {run} has no readable settings (config.json): {exc}"))
            return
        self.config_loaded.emit(config)
        self._with_run_dataset(run, lambda: self._open_run(run))

    def _with_run_dataset(self, run: Path, then: Callable[[], None]) -> None:
        """Opens the run's dataset first when another one is open, then calls ``then``."""
        root = run_dataset(run)
        if root is not None and root.is_dir() and (
                self.dataset is None or not same_folder(root, self.dataset.root)):
            self.open_dataset(root, then=then)
            return
        if root is not None and not root.is_dir():
            self.status_message.emit(f"The dataset of {run.name} ({root}) is gone; the run "
                                     "still opens.")
        then()

    def _open_run(self, run: Path) -> None:
        if self.busy:
            self.status_message.emit(f"Wait: {self.busy}…")
            return
        self._rebuild_pending = False
        self._set_busy("opening")
        self.job = start_job(
            "open-run", functools.partial(jobs.open_run, self.engine, run),
            on_progress=self.progress.emit, on_success=lambda info: self._on_run_opened(run, info),
            on_failure=self._fail("Cannot open the run"), on_finish=self._after_open)

    def _on_run_opened(self, run: Path, info: ModelInfo) -> None:
        self._take_model(info)
        self.model_problem = ""
        self.result = load_summary(run)
        self.settings.setValue(LAST_RUN_KEY, str(run))
        self.evaluation = None
        from tlgui.core.metrics import evaluation_from_data

        with contextlib.suppress(OSError, ValueError):
            self.evaluation = evaluation_from_data(read_json(run / EVALUATION_FILE))
        self.run_opened.emit(self.result, info.config)
        if self.evaluation is not None:
            self.evaluation_ready.emit(self.evaluation)
        with contextlib.suppress(OSError, ValueError):
            test = evaluation_from_data(read_json(run / TEST_EVALUATION_FILE))
            if test.split == "test":
                self.test_ready.emit(test)  # measured once after that run's training
        self.status_message.emit(f"Opened run {run.name}")

    def _after_open(self) -> None:
        self._job_done()
        # An older run, or one stopped before its evaluation: evaluate it now.
        if self.evaluation is None and self.model is not None and self.model.trained \
                and self.dataset is not None \
                and tuple(self.model.class_names) == tuple(self.dataset.class_names):
            self.start_evaluation()

    def train_again(self, run: Path) -> None:
        """Loads a run's settings and ticks into a new model, ready to train."""
        if self.busy == "training" or self.closing:
            return
        try:
            config = load_config(run)
        except (OSError, ValueError, TypeError) as exc:
            self.error.emit("Cannot train again", DatasetError(
                f"The settings of the run {run.name} (config.json) cannot be read: {exc}"))
            return
        flags = load_layers(run) or None
        self.config_loaded.emit(config)

        def build() -> None:
            self.request_build(flags)
            self.status_message.emit(f"Settings of {run.name} loaded: press Train to train "
                                     "again with them.")

        self._with_run_dataset(run, build)
