"""The head cross-validated over every photo (``cross_validation``): a real measure, not a
copy of the validation figure, and only where it can be made."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.imagegen import make_dataset
from tlgui.cli import main
from tlgui.core.cross_validation import CrossValidation, cross_validate
from tlgui.core.errors import Cancelled
from tlgui.core.intervals import wilson_interval
from tlgui.core.spill import FeatureStore


def _features(n: int, classes: int, separation: float, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    centres = rng.normal(0, 1, (classes, 16)) * separation
    x = centres[labels] + rng.normal(0, 1, (n, 16))
    return x[None].astype(np.float32), labels  # [views=1, n, dims]


def test_separable_classes_score_high_and_noise_scores_chance() -> None:
    x, y = _features(200, 4, separation=4.0)
    cv = cross_validate(x[:, :150], y[:150], x[:, 150:], y[150:], 4)
    assert cv is not None and cv.total == 200 and cv.folds == 5
    assert cv.accuracy > 0.95
    assert (cv.low, cv.high) == wilson_interval(cv.correct, 200)
    noise, labels = _features(400, 4, separation=0.0, seed=1)
    chance = cross_validate(noise, labels, None, np.zeros(0, np.int64), 4)
    assert chance is not None and 0.1 < chance.accuracy < 0.4  # nothing to learn
    assert chance.low < 0.25 < chance.high or chance.accuracy < 0.35


def test_spilled_features_give_the_same_figure(tmp_path: Path) -> None:
    x, y = _features(120, 3, separation=1.0)
    with FeatureStore(budget=0, folder=tmp_path) as store:
        disk = store.zeros(x.shape, np.float32, "pooled")
        disk.write(0, np.arange(120), x[0])
        assert type(disk).__name__ == "DiskArray"
        on_disk = cross_validate(disk, y, None, np.zeros(0, np.int64), 3)
    in_memory = cross_validate(x, y, None, np.zeros(0, np.int64), 3)
    assert on_disk == in_memory


def test_where_it_cannot_be_made_it_says_nothing() -> None:
    x, y = _features(30, 3, separation=1.0)
    one = np.array([0] * 29 + [1])  # one photo of a class cannot be in two folds
    assert cross_validate(x, one, None, np.zeros(0, np.int64), 2) is None
    assert cross_validate(x, y, None, np.zeros(0, np.int64), 3, max_rows=29) is None
    # Few photos of a class: as many folds as that class has photos.
    few = np.array([0] * 27 + [1] * 3)
    cv = cross_validate(x, few, None, np.zeros(0, np.int64), 2)
    assert cv is not None and cv.folds == 3
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        cross_validate(x, y, None, np.zeros(0, np.int64), 3, cancel=cancel)


def test_train_reports_and_records_it(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    root = make_dataset(tmp_path / "d", per_class=10)
    code = main(["train", str(root), "--weights", "none", "--image-size", "32", "--epochs", "2",
                 "--fine-tune-epochs", "0", "--batch-size", "8"])
    assert code == 0
    said = capsys.readouterr()
    text = said.out + said.err  # notices go to stderr
    line = next(ln for ln in text.splitlines() if "Cross-validated over all 30 photos" in ln)
    assert "(5 folds, the head on the frozen backbone)" in line
    run = Path(next(ln for ln in text.splitlines()
                    if ln.startswith("run folder: ")).removeprefix("run folder: "))
    recorded = json.loads((run / "status.json").read_text())["cross_validation"]
    assert recorded["total"] == 30 and recorded["folds"] == 5
    assert recorded["low"] <= recorded["accuracy"] <= recorded["high"]
    assert CrossValidation.from_dict(recorded) == CrossValidation(**recorded)


@pytest.mark.parametrize("bad", [None, [], {"accuracy": 0.5}, {
    "accuracy": 0.9, "correct": 40, "total": 30, "low": 0.8, "high": 0.95, "folds": 5}, {
    "accuracy": "x", "correct": 1, "total": 2, "low": 0, "high": 1, "folds": 5}, {
    "accuracy": 0.5, "correct": 1, "total": 2, "low": 0.6, "high": 0.9, "folds": 5}])
def test_a_damaged_status_is_not_shown(bad: object) -> None:
    assert CrossValidation.from_dict(bad) is None
