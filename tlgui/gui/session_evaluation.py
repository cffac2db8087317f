"""The session's evaluations: the validation figure with its caveats, the mirror box, and
``test/`` measured once after training.

A mixin of ``Session`` (it uses the session's signals, engine and jobs).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlgui.core.events import StageProgress
from tlgui.gui import jobs
from tlgui.gui.workers import start_job

if TYPE_CHECKING:
    from tlgui.core.intervals import CrossValidation
    from tlgui.core.metrics import Evaluation


class SessionEvaluation:
    """Evaluating the session's model; mixed into ``Session``."""

    # Provided by Session.
    busy: str
    closing: bool
    dataset: Any
    dataset_token: str
    model: Any
    result: Any
    evaluation: Any
    engine: Any
    job: Any
    corrections: Any
    config_source: Any
    mirror_evaluation: bool
    evaluate_when_idle: bool
    _measure_test: Path | None
    _test_after: Path | None
    progress: Any
    evaluation_ready: Any
    test_ready: Any

    def validation_history(self) -> list[dict[str, Any]]:
        """The epochs of the model's run (``val_accuracy`` each), or [] when unknown."""
        if self.model is None:
            return []
        if self.result is not None and self.result.run == self.model.run:
            return list(self.result.history)
        if self.model.run is None:
            return []
        from tlgui.core.runs import read_json

        try:
            history = read_json(self.model.run / "history.json")
        except (OSError, ValueError):
            return []
        return [h for h in history if isinstance(h, dict)] if isinstance(history, list) else []

    def cross_validation(self) -> CrossValidation | None:
        """The model's run's head cross-validated over every photo, when it was measured."""
        if self.model is None or self.model.run is None:
            return None
        from tlgui.core.intervals import CrossValidation
        from tlgui.core.runs import read_json

        try:
            status = read_json(self.model.run / "status.json")
        except (OSError, ValueError):
            return None
        return CrossValidation.from_dict(status.get("cross_validation")) \
            if isinstance(status, dict) else None

    def start_evaluation(self, part: str | None = None) -> None:
        """Classifies the validation images (or ``part``: ``test``) with the trained model."""
        if self.model is None or self.dataset is None or self.busy or self.closing:
            return
        if part is None:
            self.evaluate_when_idle = False
        self._set_busy("evaluating")
        self.progress.emit(StageProgress("predict", 0, 0, "Evaluating…"))
        self.job = start_job(
            "evaluate", functools.partial(jobs.evaluate, self.engine, self.dataset,
                                          self.dataset_token, self.config_source().split,
                                          self.model.run,
                                          corrections=self.corrections.ref_data(),
                                          mirror=self.mirror_evaluation, part=part),
            on_progress=self.progress.emit, on_success=self._on_evaluated,
            on_failure=self._fail("Evaluation failed"), on_finish=self._job_done)

    def _on_evaluated(self, evaluation: Evaluation) -> None:
        if evaluation.split == "test" and self.dataset is not None and self.dataset.validation:
            self.test_ready.emit(evaluation)  # beside the validation figure, not instead
            return
        self.evaluation = evaluation
        self.evaluation_ready.emit(evaluation)
        run, self._measure_test = self._measure_test, None
        if run is not None and self.model is not None and self.model.run == run:
            self._test_after = run  # once this job has ended (``_after_job``)

    def _after_job(self) -> None:
        """Work asked for while a job ran, started now that none does: test/ measured once
        after training (it chose nothing), then an evaluation the mirror box asked for."""
        if self.busy or self.closing or self.model is None:
            return
        run, self._test_after = self._test_after, None
        if run is not None and self.model.run == run and self.dataset is not None \
                and self.dataset.test:
            self.start_evaluation("test")
        elif self.evaluate_when_idle and self.model.trained:
            self.start_evaluation()
