"""Confusion matrix, precision/recall, worst-first misses, and evaluating a model."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.imagegen import make_dataset
from tlgui.core.dataset import scan
from tlgui.core.errors import Cancelled
from tlgui.core.evaluate import (
    confusion_matrix,
    evaluate_model,
    misclassified,
    per_class_metrics,
    summarize,
)
from tlgui.core.pixel_cache import PixelCache


def test_confusion_precision_recall() -> None:
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 1])
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 2, 0], [0, 1, 0]]
    m = per_class_metrics(cm, ("a", "b", "c"))
    assert m[0].precision == 1.0 and m[0].recall == pytest.approx(2 / 3)
    assert m[1].precision == pytest.approx(0.5) and m[1].recall == 1.0
    assert math.isnan(m[2].precision) and m[2].recall == 0.0
    assert [x.support for x in m] == [3, 2, 1]


def test_misses_worst_first() -> None:
    paths = [Path(f"{i}.jpg") for i in range(4)]
    y_true = np.array([0, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.95, 0.05], [0.45, 0.55]])
    misses = misclassified(paths, y_true, probs)
    assert [m.path.name for m in misses] == ["2.jpg", "1.jpg", "3.jpg"]
    assert misses[0].confidence == pytest.approx(0.95)
    assert misses[0].true_probability == pytest.approx(0.05)
    ev = summarize(paths, y_true, probs, ("a", "b"))
    assert ev.accuracy == pytest.approx(0.25) and ev.total == 4


class _ByColour:
    """A stand-in classifier: the strongest mean colour channel is the class."""

    outputs = (np.zeros((1, 3)),)

    def __call__(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        means = x.astype(np.float64).mean(axis=(1, 2))
        e = np.exp((means - means.max(axis=1, keepdims=True)) / 10)
        return e / e.sum(axis=1, keepdims=True)


def test_evaluate_model_on_a_split(tmp_path: Path) -> None:
    # Classes sorted: blue, green, red; map colour channels to that order.
    ds = scan(make_dataset(tmp_path / "d", per_class=6))

    class Model(_ByColour):
        def __call__(self, x: np.ndarray, training: bool = False) -> np.ndarray:
            return super().__call__(x)[:, [2, 1, 0]]

    ev = evaluate_model(Model(), 32, ds, cache=PixelCache(tmp_path / "c"))
    assert ev.class_names == ds.class_names
    assert ev.total == len(ds.validation)
    assert ev.accuracy == 1.0 and not ev.misses
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        evaluate_model(Model(), 32, ds, cache=PixelCache(tmp_path / "c"), cancel=cancel)
