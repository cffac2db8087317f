"""Run folders written by hand, as training leaves them, so tests of listing and comparing
runs need no training."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tlgui.core.atomic import atomic_write_json
from tlgui.core.config import TrainConfig
from tlgui.core.metrics import Evaluation, evaluation_to_data, per_class_metrics

CLASSES = ("blue", "green", "red")


def make_evaluation(classes: Sequence[str], recalls: Sequence[float],
                    per_class: int = 10) -> Evaluation:
    """An evaluation whose class i has recall ``recalls[i]`` (misses go to the next class)."""
    n = len(classes)
    confusion = np.zeros((n, n), dtype=np.int64)
    for i, recall in enumerate(recalls):
        right = round(recall * per_class)
        confusion[i, i] = right
        confusion[i, (i + 1) % n] = per_class - right
    accuracy = float(np.trace(confusion) / confusion.sum())
    return Evaluation(tuple(classes), "validation", confusion,
                      per_class_metrics(confusion, list(classes)), accuracy, ())


def make_run(root: Path, name: str, dataset: Path, *,
             config: TrainConfig | None = None,
             classes: Sequence[str] = CLASSES,
             phases: Sequence[Sequence[float]] = ((0.55, 0.7, 0.76), (0.82, 0.88)),
             state: str = "complete",
             started_unix: float | None = None,
             recalls: Sequence[float] | None = None,
             model: bool = True,
             pid: int = 0,
             legacy: bool = False) -> Path:
    """Writes a run folder like ``RunFolder`` and training do.

    Args:
        root: the runs folder.
        name: the run folder's name.
        dataset: the dataset folder recorded in ``status.json``.
        config: its settings (default: tiny, no weights).
        classes: its class names.
        phases: validation accuracy per epoch, per phase.
        state: ``complete``, ``cancelled``, ``failed`` or ``running``.
        started_unix: start time (default: now).
        recalls: recall per class for an ``evaluation.json``; None writes none.
        model: write a (fake) ``model.keras``.
        pid: the process id recorded (``running`` runs of a live pid stay running).
        legacy: leave out ``duration_s`` and ``phase_accuracy`` as older runs did.
    """
    config = config or TrainConfig(weights="none", image_size=32)
    path = root / name
    path.mkdir(parents=True)
    atomic_write_json(path / "config.json", config.to_dict())
    atomic_write_json(path / "classes.json", list(classes))
    history, epoch = [], 1
    for phase, accs in enumerate(phases, 1):
        lr = config.phase1.learning_rate if phase == 1 else config.phase2.learning_rate
        for acc in accs:
            history.append({"epoch": epoch, "phase": phase, "loss": 1.3 - acc,
                            "accuracy": min(1.0, acc + 0.05), "val_loss": 1.4 - acc,
                            "val_accuracy": acc, "learning_rate": lr, "seconds": 3.0})
            epoch += 1
    atomic_write_json(path / "history.json", history)
    atomic_write_json(path / "layers.json", [[["backbone", "Conv1"], False]])
    t0 = time.time() if started_unix is None else started_unix
    status: dict[str, object] = {
        "state": state, "pid": pid, "dataset": str(dataset), "backbone": config.backbone,
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t0)), "started_unix": t0,
        "updated": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t0 + 60))}
    if state != "running" and not legacy:
        status["duration_s"] = 3.0 * len(history) + 4.5
    if state == "complete" and not legacy:
        status["phase_accuracy"] = {str(p): max(a) for p, a in enumerate(phases, 1) if a}
    if state == "failed":
        status["error"] = "Out of memory"
    atomic_write_json(path / "status.json", status)
    if model:
        (path / "model.keras").write_bytes(b"not really a model")
    if recalls is not None:
        atomic_write_json(path / "evaluation.json",
                          evaluation_to_data(make_evaluation(classes, recalls)))
    return path
