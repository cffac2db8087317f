"""Accuracy intervals, the best-epoch selection estimate, and the lines `tlgui train` prints."""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path

import pytest

from tests.imagegen import make_dataset
from tlgui.cli import main
from tlgui.core.intervals import (
    describe_evaluation,
    expected_max_of_normals,
    selection_optimism,
    summarize_validation,
    wilson_interval,
)


@pytest.mark.parametrize(("correct", "total", "low", "high"), [
    # Newcombe (1998), Stat. Med. 17:857, Table I, method 3 (score interval, no correction).
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
    # The closed form at the ends and the middle: 0/n -> [0, z^2/(n+z^2)].
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    (50, 100, 0.4038, 0.5962),
])
def test_wilson_matches_published_values(correct: int, total: int, low: float,
                                         high: float) -> None:
    got = wilson_interval(correct, total)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_wilson_narrows_with_more_images_and_contains_the_estimate() -> None:
    widths = []
    for n in (10, 40, 100, 400, 1000, 10000):
        lo, hi = wilson_interval(round(0.9 * n), n)
        assert lo < 0.9 < hi
        widths.append(hi - lo)
    assert all(a > b for a, b in itertools.pairwise(widths))
    # Wider for higher confidence.
    assert wilson_interval(90, 100, 0.99)[0] < wilson_interval(90, 100, 0.95)[0]


@pytest.mark.parametrize(("correct", "total", "confidence"),
                         [(1, 0, 0.95), (-1, 10, 0.95), (11, 10, 0.95), (5, 10, 1.0)])
def test_wilson_refuses_impossible_counts(correct: int, total: int, confidence: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        wilson_interval(correct, total, confidence)


def test_expected_max_of_normals_known_values() -> None:
    assert expected_max_of_normals(1) == 0.0
    assert expected_max_of_normals(2) == pytest.approx(1 / math.sqrt(math.pi), abs=1e-5)
    # Tabulated expected maxima of standard normal samples (order statistics tables).
    assert expected_max_of_normals(5) == pytest.approx(1.16296, abs=1e-4)
    assert expected_max_of_normals(10) == pytest.approx(1.53875, abs=1e-4)


def test_selection_optimism_zero_for_one_epoch_and_grows_with_epochs() -> None:
    assert selection_optimism(0.9, 500, 1) == 0.0
    values = [selection_optimism(0.9, 500, e) for e in (2, 5, 10, 20, 40)]
    assert all(0 < a < b for a, b in itertools.pairwise(values))
    # About one standard error (sqrt(.9 * .1 / 500) = 1.3 points) times 1.54 for 10 epochs.
    assert values[2] == pytest.approx(math.sqrt(0.9 * 0.1 / 500) * 1.539, rel=0.02)
    # Fewer images: noisier figures, a larger possible flattery; a perfect score still has one.
    assert selection_optimism(0.9, 50, 10) > selection_optimism(0.9, 500, 10)
    assert selection_optimism(1.0, 30, 10) > 0


def test_summary_takes_the_best_epoch_and_skips_epochs_without_validation() -> None:
    history = [{"val_accuracy": 0.80}, {"val_accuracy": 0.92}, {"val_accuracy": float("nan")},
               {"val_accuracy": 0.90}, {"loss": 0.3}]
    s = summarize_validation(history, 250)
    assert s is not None
    assert (s.accuracy, s.correct, s.total, s.epochs_compared) == (0.92, 230, 250, 3)
    assert s.low < 0.92 < s.high
    assert s.selection_optimism == pytest.approx(selection_optimism(0.92, 250, 3))
    assert summarize_validation(history, 0) is None
    assert summarize_validation([{"val_accuracy": float("nan")}], 10) is None
    one = summarize_validation([{"val_accuracy": 0.5}], 10)
    assert one is not None and "no choice of epoch flatters it" in one.sentence()
    text = s.sentence()
    assert text.startswith("Validation accuracy 92.0% (95% interval ")
    assert "250 images" in text and "best of 3 epochs" in text


def test_train_prints_the_intervals_and_records_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "d"
    for part, n in (("train", 8), ("validation", 4), ("test", 3)):
        make_dataset(root / part, per_class=n, seed=len(part))
    code = main(["train", str(root), "--weights", "none", "--image-size", "32", "--epochs", "2",
                 "--fine-tune-epochs", "1", "--batch-size", "8", "--fine-tune-at", "140"])
    assert code == 0
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if ln.startswith("Validation accuracy"))
    match = re.fullmatch(r"Validation accuracy (\d+\.\d)% \(95% interval (\d+\.\d)–(\d+\.\d)%, "
                         r"(\d+) images\); choosing the best of 3 epochs may flatter it by "
                         r"up to ~(\d+\.\d) points\.", line)
    assert match, line
    acc, low, high, n, flatter = match.groups()
    assert float(low) <= float(acc) <= float(high) and int(n) == 12 and float(flatter) > 0
    # test/ is measured once, after training, on the kept model.
    test = next(ln for ln in text.splitlines() if ln.startswith("Test accuracy"))
    assert re.fullmatch(r"Test accuracy \d+\.\d% \(95% interval \d+\.\d–\d+\.\d%, 9 images "
                        r"of test/, measured once on the kept model\)\.", test), test
    run = Path(next(ln for ln in text.splitlines()
                    if ln.startswith("run folder: ")).removeprefix("run folder: "))
    status = json.loads((run / "status.json").read_text())
    recorded = status["validation_interval"]
    assert recorded["total"] == int(n) and recorded["epochs_compared"] == 3
    assert recorded["low"] <= recorded["accuracy"] <= recorded["high"]
    # Same figure as the best phase: the model keeps the best epoch of both phases.
    assert recorded["accuracy"] == pytest.approx(max(status["phase_accuracy"].values()))


def test_the_evaluate_tab_sentences() -> None:
    history = [{"val_accuracy": a} for a in (0.80, 0.90, 0.935, 0.93)]
    figure, caveat = describe_evaluation(686, 734, "validation", history=history)
    assert figure == ("93.5% of 734 validation images classified correctly (95% interval "
                      "91.4–95.0%)")
    low, high = wilson_interval(686, 734)
    assert f"{100 * low:.1f}–{100 * high:.1f}%" in figure
    points = 100 * summarize_validation(history, 734).selection_optimism
    assert caveat == (f"The kept epoch is the best of 4 on these same images, which may "
                      f"flatter the figure by up to ~{points:.1f} points; a test/ folder "
                      "measures it without that.")
    mirrored, _ = describe_evaluation(686, 734, "validation", mirror=True)
    assert "correctly, each averaged with its mirror (95%" in mirrored
    # No history (a model opened without its run), or a test split: nothing is guessed.
    assert describe_evaluation(686, 734, "validation")[1] == ""
    assert "chose nothing" in describe_evaluation(10, 12, "test", history=history)[1]
