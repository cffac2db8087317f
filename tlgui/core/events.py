"""Frozen events that long-running core work reports through ``report(event)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """Base class of everything passed to a ``report`` callback."""


@dataclass(frozen=True)
class StageProgress(Event):
    """Progress of a stage that is not an epoch: scanning, decoding, features, export.

    Attributes:
        stage: ``scan``, ``decode``, ``features``, ``export`` or ``predict``.
        done: items finished so far.
        total: items in all (0 when unknown).
        message: a short human-readable line.
    """

    stage: str
    done: int
    total: int
    message: str = ""


@dataclass(frozen=True)
class PhaseStarted(Event):
    """A training phase begins. ``first_epoch`` is global across both phases (1-based)."""

    phase: int
    epochs: int
    first_epoch: int
    learning_rate: float
    trainable_params: int


@dataclass(frozen=True)
class BatchProgress(Event):
    """Throttled progress inside an epoch.

    Attributes:
        phase: 1 or 2.
        epoch: global epoch, 1-based.
        batch: batches done in this epoch.
        batches: batches per epoch.
        eta_s: estimated seconds until the phase ends.
        loss: running training loss.
    """

    phase: int
    epoch: int
    batch: int
    batches: int
    eta_s: float
    loss: float


@dataclass(frozen=True)
class EpochEnded(Event):
    """One epoch done; ``epoch`` is global across both phases (1-based)."""

    phase: int
    epoch: int
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float


@dataclass(frozen=True)
class PhaseEnded(Event):
    """A phase ended: normally, by early stopping, or cancelled.

    Attributes:
        best_epoch: global epoch whose weights the model holds now.
        best_val_accuracy: validation accuracy of that epoch.
    """

    phase: int
    best_epoch: int
    best_val_accuracy: float
    seconds: float
    stopped_early: bool


@dataclass(frozen=True)
class RunStarted(Event):
    """A run folder was created; what training saves goes there (``path``)."""

    path: str


@dataclass(frozen=True)
class Notice(Event):
    """Something the user should read: a warning or a fallback that was taken."""

    level: str
    message: str


Report = Callable[[Event], None]


def ignore(event: Event) -> None:
    """A ``report`` callback that drops every event."""
    del event
