"""How well a classifier did: confusion, precision, recall and misses, from plain numbers.

Plain numpy on labels and probabilities, with no model behind it, so that the window and
the run folders can hold and show an evaluation; ``evaluate.evaluate_model`` runs a
model and hands its output here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ClassMetrics:
    """Precision and recall of one class.

    Attributes:
        name: the class.
        precision: of the images predicted as this class, the share that are (NaN if none).
        recall: of the images of this class, the share found (NaN if none).
        support: images of this class in the evaluated split.
    """

    name: str
    precision: float
    recall: float
    support: int


@dataclass(frozen=True)
class Miss:
    """A misclassified image.

    Attributes:
        path: the image file.
        true_label: index of its class.
        predicted_label: index of the class the model chose.
        confidence: probability the model gave to its (wrong) choice.
        true_probability: probability the model gave to the right class.
    """

    path: Path
    true_label: int
    predicted_label: int
    confidence: float
    true_probability: float


@dataclass(frozen=True)
class Evaluation:
    """Results on one split.

    Attributes:
        class_names: the classes in label order.
        split: ``validation`` or ``test``.
        confusion: counts [true class, predicted class].
        per_class: precision and recall per class.
        accuracy: share of images classified correctly.
        misses: misclassified images, worst first.
        mirror: each image's answer was averaged with its mirror's (test-time
            augmentation, ``mirror_tta``).
    """

    class_names: tuple[str, ...]
    split: str
    confusion: np.ndarray
    per_class: tuple[ClassMetrics, ...]
    accuracy: float
    misses: tuple[Miss, ...]
    mirror: bool = False

    @property
    def total(self) -> int:
        """Number of images evaluated."""
        return int(self.confusion.sum())


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts of (true, predicted) label pairs.

    Args:
        y_true: true labels, ints in ``[0, num_classes)``.
        y_pred: predicted labels, same length.
        num_classes: matrix side.

    Returns:
        int64 array [num_classes, num_classes]; rows are true classes.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.shape} true labels vs {y_pred.shape} predictions")
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(out, (y_true, y_pred), 1)
    return out


def per_class_metrics(confusion: np.ndarray,
                      class_names: tuple[str, ...] | list[str]) -> tuple[ClassMetrics, ...]:
    """Precision, recall and support per class from a confusion matrix."""
    out = []
    for i, name in enumerate(class_names):
        tp = float(confusion[i, i])
        predicted = float(confusion[:, i].sum())
        actual = float(confusion[i, :].sum())
        out.append(ClassMetrics(
            name=name,
            precision=tp / predicted if predicted else float("nan"),
            recall=tp / actual if actual else float("nan"),
            support=int(actual),
        ))
    return tuple(out)


def misclassified(paths: list[Path], y_true: np.ndarray, probs: np.ndarray) -> tuple[Miss, ...]:
    """The wrong predictions, worst first.

    Worst means the least probability given to the right class; ties go to the more
    confident wrong choice.
    """
    pred = probs.argmax(axis=1)
    misses = []
    for i in np.flatnonzero(pred != y_true):
        misses.append(Miss(
            path=paths[i],
            true_label=int(y_true[i]),
            predicted_label=int(pred[i]),
            confidence=float(probs[i, pred[i]]),
            true_probability=float(probs[i, y_true[i]]),
        ))
    return worst_first(misses)


def worst_first(misses: list[Miss]) -> tuple[Miss, ...]:
    """Misses sorted worst first: the least probability given to the right class, ties to
    the more confident wrong choice, then in the order given (the sort is stable)."""
    return tuple(sorted(misses, key=lambda m: (m.true_probability, -m.confidence)))


def summarize(paths: list[Path], y_true: np.ndarray, probs: np.ndarray,
              class_names: tuple[str, ...], split: str = "validation") -> Evaluation:
    """Builds an ``Evaluation`` from true labels and predicted probabilities.

    Args:
        paths: the image files, in the order of ``y_true``.
        y_true: true labels.
        probs: predicted probabilities [n, classes].
        class_names: the classes.
        split: the name of the evaluated split.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64).reshape(len(y_true), len(class_names))
    pred = probs.argmax(axis=1) if len(y_true) else np.zeros(0, dtype=np.int64)
    confusion = confusion_matrix(y_true, pred, len(class_names))
    accuracy = float((pred == y_true).mean()) if len(y_true) else float("nan")
    return Evaluation(class_names, split, confusion, per_class_metrics(confusion, class_names),
                      accuracy, misclassified(paths, y_true, probs))


def evaluation_to_data(ev: Evaluation) -> dict[str, Any]:
    """An evaluation as data (also what a run folder's evaluation.json holds)."""
    return {"class_names": list(ev.class_names), "split": ev.split,
            "confusion": np.asarray(ev.confusion).astype(int).tolist(),
            "per_class": [[m.name, m.precision, m.recall, m.support] for m in ev.per_class],
            "accuracy": ev.accuracy,
            "misses": [[str(m.path), m.true_label, m.predicted_label, m.confidence,
                        m.true_probability] for m in ev.misses],
            "mirror": ev.mirror}


def _fraction(value: Any, what: str) -> float:
    """A share in [0, 1] (NaN allowed: nothing to measure), from a file that may be crafted."""
    v = float(value)
    if not (math.isnan(v) or 0.0 <= v <= 1.0):
        raise ValueError(f"{what} {v!r} is not between 0 and 1")
    return v


def _count(value: Any, what: str, limit: int = 2**53) -> int:
    v = float(value)
    if not (0 <= v <= limit) or v != int(v):
        raise ValueError(f"{what} {value!r} is not a whole number from 0 to {limit}")
    return int(v)


def _accuracy(confusion: np.ndarray) -> float:
    total = int(confusion.sum())
    return float(np.trace(confusion) / total) if total else float("nan")


def evaluation_from_data(data: dict[str, Any]) -> Evaluation:
    """An evaluation from ``evaluation_to_data``.

    The data may come from a run folder anyone could have edited: every count and label is
    checked (an overflowing count or a label beyond the classes must not reach the panels),
    and the per-class figures and the accuracy are computed again from the confusion matrix.

    Raises:
        ValueError: the data does not describe an evaluation.
    """
    try:
        names = tuple(str(c) for c in data["class_names"])
        n = len(names)
        if not n or len(set(names)) != n:
            raise ValueError("class names missing or repeated")
        cells = [_count(v, "count") for v in np.asarray(data["confusion"], dtype=object).ravel()]
        confusion = np.asarray(cells, dtype=np.int64).reshape(n, n)
        misses = []
        for p, t, pr, c, tp in data["misses"]:
            t, pr = _count(t, "label", n - 1), _count(pr, "label", n - 1)
            misses.append(Miss(Path(str(p)), t, pr, _fraction(c, "confidence"),
                               _fraction(tp, "probability")))
        return Evaluation(
            class_names=names, split=str(data["split"]), confusion=confusion,
            # Both follow from the checked matrix: a file's own rows could disagree with it
            # or be missing (the tables read one row per class).
            per_class=per_class_metrics(confusion, names),
            accuracy=_accuracy(confusion),
            misses=tuple(misses), mirror=data.get("mirror") is True)
    except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as exc:
        raise ValueError(f"not an evaluation: {exc}") from exc
