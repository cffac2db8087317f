"""Confusion matrix, precision/recall, worst-first misses, and evaluating a model."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.imagegen import make_dataset
from tlgui.core.config import SplitConfig
from tlgui.core.dataset import Sample, scan
from tlgui.core.errors import Cancelled
from tlgui.core.evaluate import (
    confusion_matrix,
    evaluate_model,
    misclassified,
    per_class_metrics,
    summarize,
)
from tlgui.core.events import Event, StageProgress
from tlgui.core.pixel_cache import PixelCache, load_pixels


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


class _CountingCache(PixelCache):
    """A pixel cache that counts the images handed out."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.handed = 0
        self.lock = threading.Lock()

    def get(self, sample: Sample, size: int) -> np.ndarray:
        with self.lock:
            self.handed += 1
        return super().get(sample, size)


def test_evaluation_streams_in_chunks_and_matches_all_at_once(tmp_path: Path) -> None:
    ds = scan(make_dataset(tmp_path / "d", per_class=15), SplitConfig(validation_fraction=0.6))
    n = len(ds.validation)
    cache = _CountingCache(tmp_path / "c")
    held: list[int] = []  # at each model call: images handed out but not yet classified
    classified = [0]

    class Model(_ByColour):
        def __call__(self, x: np.ndarray, training: bool = False) -> np.ndarray:
            held.append(cache.handed - classified[0])
            classified[0] += len(x)
            return super().__call__(x)  # channels in RGB order: most images are misses

    ev = evaluate_model(Model(), 32, ds, cache=cache, batch_size=2, chunk=4)
    assert n == 27 and ev.total == n
    # Never more than the chunk being classified and the next one decoded.
    assert max(held) <= 8 and len(held) == sum((min(4, n - s) + 1) // 2
                                               for s in range(0, n, 4))
    pixels, kept, _ = load_pixels(ds.validation, 32, PixelCache(tmp_path / "c"))
    whole = summarize([ds.validation[i].path for i in kept],
                      np.array([ds.validation[i].label for i in kept]),
                      Model()(pixels), ds.class_names)
    assert ev.misses and ev.misses == whole.misses
    assert ev.confusion.tolist() == whole.confusion.tolist()
    assert ev.accuracy == whole.accuracy and ev.per_class == whole.per_class


def test_evaluation_progress_covers_the_whole_split(tmp_path: Path) -> None:
    ds = scan(make_dataset(tmp_path / "d", per_class=10), SplitConfig(validation_fraction=0.5))
    events: list[Event] = []
    evaluate_model(_ByColour(), 32, ds, cache=PixelCache(tmp_path / "c"),
                   report=events.append, batch_size=2, chunk=4)
    progress = [(e.done, e.total) for e in events if isinstance(e, StageProgress)]
    n = len(ds.validation)
    assert progress[0] == (0, n) and progress[-1] == (n, n)
    assert all(total == n for _, total in progress)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
