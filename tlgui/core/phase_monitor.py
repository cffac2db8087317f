"""The Keras callback of a training phase: events, best weights, early stop, cancel."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from tlgui.core.errors import Cancelled
from tlgui.core.events import BatchProgress, EpochEnded, Report

BATCH_EVENT_INTERVAL_S = 0.1


class PhaseMonitor(keras.callbacks.Callback):  # type: ignore[misc]
    """Keras callback: events, best weights, early stopping and cancel within a batch."""

    def __init__(self, trainer: Any, phase: int, first_epoch: int, epochs: int,
                 patience: int | None, report: Report, cancel: threading.Event,
                 history: list[dict[str, Any]], on_best: Any,
                 rate: Callable[[int], float]) -> None:
        super().__init__()
        self.trainer = trainer
        self.phase, self.first_epoch, self.epochs = phase, first_epoch, epochs
        self.patience, self.report, self.cancel = patience, report, cancel
        self.history, self.on_best, self.rate = history, on_best, rate
        self.lr = rate(0)
        self.best: tuple[float, float] | None = None
        self.best_epoch = 0
        self.best_weights: list[np.ndarray] | None = None
        self.wait = 0
        self.stopped_early = False
        self.batches = 0
        self.t_phase = time.monotonic()
        self.t_epoch = self.t_phase
        self.last_event = 0.0
        self.batches_done_in_phase = 0

    def start_from(self, best: tuple[float, float], epoch: int) -> None:
        """Counts the trainer's current weights as the best so far, scored ``best``.

        Phase 2 starts from phase 1's best: an epoch must beat it to replace the weights,
        so fine-tuning that only hurts leaves the model as phase 1 made it.
        """
        self.best, self.best_epoch = best, epoch
        self.best_weights = [v.numpy() for v in self.trainer.trainable_weights]

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.t_epoch = time.monotonic()
        # Set every epoch, not only when it changes: an out-of-memory retry fits the same
        # optimizer again, which still holds the rate of the epoch that failed.
        self.lr = self.rate(epoch)
        self.trainer.optimizer.learning_rate = self.lr

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.cancel.is_set():
            raise Cancelled("Training cancelled.")
        self.batches_done_in_phase += 1
        now = time.monotonic()
        if now - self.last_event >= BATCH_EVENT_INTERVAL_S:
            self.last_event = now
            per_batch = (now - self.t_phase) / self.batches_done_in_phase
            remaining = self.epochs * self.batches - self.batches_done_in_phase
            loss = float((logs or {}).get("loss", float("nan")))
            self.report(BatchProgress(self.phase, self.first_epoch + self._epoch_index(),
                                      batch + 1, self.batches, per_batch * remaining, loss))

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.cancel.is_set():
            raise Cancelled("Training cancelled.")

    def _epoch_index(self) -> int:
        return self.batches_done_in_phase // max(self.batches, 1)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        global_epoch = self.first_epoch + epoch
        row = {
            "epoch": global_epoch, "phase": self.phase,
            "loss": float(logs.get("loss", np.nan)),
            "accuracy": float(logs.get("accuracy", np.nan)),
            "val_loss": float(logs.get("val_loss", np.nan)),
            "val_accuracy": float(logs.get("val_accuracy", np.nan)),
            "learning_rate": self.lr,
            "seconds": time.monotonic() - self.t_epoch,
        }
        self.history.append(row)
        self.report(EpochEnded(self.phase, global_epoch, row["loss"], row["accuracy"],
                               row["val_loss"], row["val_accuracy"], row["seconds"]))
        has_val = not np.isnan(row["val_accuracy"])
        # Best = highest validation accuracy, ties broken by lower validation loss.
        score = (row["val_accuracy"], -row["val_loss"]) if has_val else (0.0, -row["loss"])
        if self.best is None or score > self.best:
            self.best, self.best_epoch, self.wait = score, global_epoch, 0
            self.best_weights = [v.numpy() for v in self.trainer.trainable_weights]
            self.on_best(global_epoch)
        else:
            self.wait += 1
            if self.patience is not None and self.wait >= self.patience:
                self.stopped_early = True
                self.trainer.stop_training = True

    def restore_best(self) -> None:
        if self.best_weights is not None:
            for var, value in zip(self.trainer.trainable_weights, self.best_weights,
                                  strict=True):
                var.assign(value)
