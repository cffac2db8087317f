"""Honest accuracy figures: an interval for a measured accuracy, and how much keeping the
best of several epochs can flatter it.

Two separate doubts hang over "validation accuracy 93.1%":

1. *Sampling*: the validation images are a sample. With 735 images, another draw of the
   same size would give a different figure. ``wilson_interval`` says how different.
2. *Selection*: tlgui keeps the epoch with the best validation accuracy (phase 2 must
   beat phase 1's best, so the kept epoch is the best of all epochs of both phases). The
   maximum of several noisy measures is biased upwards: the epoch that looked best was
   partly lucky on these particular images. ``selection_optimism`` bounds that bias.

Both are cheap (no retraining) and computed from what a run already has: the per-epoch
history and the number of validation images.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Any

CONFIDENCE = 0.95
# Integration grid for the expected maximum of normals: the integrand is negligible
# beyond +-10 standard deviations for any count of epochs a run can have.
_GRID_LIMIT = 10.0
_GRID_STEP = 0.005


def wilson_interval(correct: int, total: int,
                    confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval for a proportion ``correct / total``.

    Chosen over the textbook ``p +- z*sqrt(p(1-p)/n)`` (Wald) interval because that one
    collapses to a width of zero at 0% and 100% and covers far less often than it claims
    for small sets or accuracies near 100%, which is exactly where tlgui's users are
    (small sets, accuracies in the high 90s). Wilson's interval stays inside [0, 1], is
    never empty, and covers close to its nominal rate down to a few dozen images
    (Newcombe 1998, "Two-sided confidence intervals for the single proportion").

    Args:
        correct: images classified correctly (0 <= correct <= total).
        total: images measured (> 0).
        confidence: two-sided confidence level, between 0 and 1 (default 0.95).

    Returns:
        (low, high) as fractions in [0, 1].

    Raises:
        ValueError: ``total`` is not positive, ``correct`` is outside [0, total], or
            ``confidence`` is outside (0, 1).
    """
    if total <= 0:
        raise ValueError(f"total must be positive (got {total})")
    if not 0 <= correct <= total:
        raise ValueError(f"correct must be between 0 and {total} (got {correct})")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (got {confidence})")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = correct / total
    z2n = z * z / total
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / total + z2n / (4 * total))
    # Exact at the ends: rounding must not put 0/n above 0 or n/n below 1.
    low = 0.0 if correct == 0 else max(0.0, centre - half)
    high = 1.0 if correct == total else min(1.0, centre + half)
    return low, high


@lru_cache(maxsize=256)
def expected_max_of_normals(count: int) -> float:
    """E[max of ``count`` independent standard normal variables].

    0 for one, 1/sqrt(pi) = 0.564 for two, 1.163 for five, 1.539 for ten, 1.867 for
    twenty: it grows like sqrt(2 ln count). Computed by integrating
    ``x * count * pdf(x) * cdf(x)**(count - 1)`` on a fine grid (exact to ~1e-6).

    Raises:
        ValueError: ``count`` is below 1.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1 (got {count})")
    if count == 1:
        return 0.0
    nd = NormalDist()
    steps = int(2 * _GRID_LIMIT / _GRID_STEP)
    total = 0.0
    for i in range(steps + 1):
        x = -_GRID_LIMIT + i * _GRID_STEP
        weight = 0.5 if i in (0, steps) else 1.0  # trapezoid rule
        total += weight * x * count * nd.pdf(x) * nd.cdf(x) ** (count - 1)
    return total * _GRID_STEP


def selection_optimism(best_accuracy: float, total: int, epochs_compared: int) -> float:
    """An upper estimate of how much picking the best of several epochs inflates the
    best epoch's validation accuracy, as a fraction (0.018 = 1.8 points).

    Model: each epoch's validation accuracy is its true accuracy plus a sampling error of
    standard deviation ``sd = sqrt(p(1-p)/n)`` (binomial, ``n`` validation images). If
    the ``E`` epochs compared were equally good and their errors independent, the best of
    them would exceed its true accuracy by ``sd * E[max of E standard normals]`` on
    average. That is what this returns. ``p`` is the Agresti-Coull estimate
    ``(correct + 2) / (n + 4)`` rather than the raw accuracy, so that a perfect score on
    a small set still has a non-zero ``sd``.

    Why it is an upper estimate, and its limits:

    * The epochs' errors are not independent: every epoch is measured on the same
      images, and successive epochs are similar models that get mostly the same images
      right. Positively correlated errors make the maximum less lucky (for errors with a
      common correlation ``r`` the expected maximum shrinks by ``sqrt(1 - r)``), so the
      real bias is smaller; the figure is said as "up to".
    * If one epoch is truly much better than the others (the usual case when accuracy
      climbs for a few epochs), the selection hardly flatters it: again smaller.
    * It covers only the choice of the epoch. It does not cover the sampling error of the
      validation set itself (that is the interval), nor choices the user made by looking
      at the validation figure across several runs (settings tried one after another),
      which flatter it further and which only a separate test set measures.

    Args:
        best_accuracy: the kept epoch's validation accuracy, in [0, 1].
        total: validation images (> 0).
        epochs_compared: epochs whose validation accuracy took part in the choice (>= 1).

    Returns:
        The estimate; 0.0 when a single epoch was compared.

    Raises:
        ValueError: an argument is out of range.
    """
    if total <= 0:
        raise ValueError(f"total must be positive (got {total})")
    if not 0.0 <= best_accuracy <= 1.0:
        raise ValueError(f"best_accuracy must be in [0, 1] (got {best_accuracy})")
    correct = round(best_accuracy * total)
    p = (correct + 2) / (total + 4)
    sd = math.sqrt(p * (1 - p) / total)
    return sd * expected_max_of_normals(epochs_compared)


@dataclass(frozen=True)
class ValidationSummary:
    """The kept epoch's validation accuracy with its interval and selection estimate.

    Attributes:
        accuracy: the best epoch's validation accuracy (the one the model keeps).
        correct: validation images classified correctly by that epoch.
        total: validation images.
        low: lower end of the interval.
        high: upper end of the interval.
        confidence: the interval's confidence level.
        epochs_compared: epochs the best one was chosen from.
        selection_optimism: ``selection_optimism(...)`` for them, a fraction.
    """

    accuracy: float
    correct: int
    total: int
    low: float
    high: float
    confidence: float
    epochs_compared: int
    selection_optimism: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (for the run folder's status)."""
        return asdict(self)

    def sentence(self) -> str:
        """One line for a person, e.g. ``Validation accuracy 93.1% (95% interval
        91.1–94.7%, 735 images); choosing the best of 17 epochs may flatter it by up to
        ~1.8 points.``"""
        head = (f"Validation accuracy {100 * self.accuracy:.1f}% "
                f"({100 * self.confidence:.0f}% interval {100 * self.low:.1f}–"
                f"{100 * self.high:.1f}%, {self.total} images)")
        if self.epochs_compared <= 1:
            return head + "; one epoch was measured, so no choice of epoch flatters it."
        return (head + f"; choosing the best of {self.epochs_compared} epochs may flatter "
                f"it by up to ~{100 * self.selection_optimism:.1f} points.")


def summarize_validation(history: Iterable[Mapping[str, Any]], total: int,
                         confidence: float = CONFIDENCE) -> ValidationSummary | None:
    """Summarises a run's history the way tlgui keeps its model: the best epoch.

    Args:
        history: one mapping per epoch with ``val_accuracy`` (``run_training``'s
            history); epochs whose ``val_accuracy`` is missing or NaN are not counted.
        total: validation images the accuracies were measured on.
        confidence: the interval's confidence level.

    Returns:
        The summary, or None when there is nothing to summarise (no validation images,
        or no epoch with a validation accuracy).
    """
    accuracies = []
    for row in history:
        value = row.get("val_accuracy")
        if isinstance(value, int | float) and math.isfinite(value):
            accuracies.append(min(1.0, max(0.0, float(value))))
    if total <= 0 or not accuracies:
        return None
    best = max(accuracies)
    # Keras reports the mean over the images as float32: round back to a count.
    correct = round(best * total)
    low, high = wilson_interval(correct, total, confidence)
    return ValidationSummary(best, correct, total, low, high, confidence, len(accuracies),
                             selection_optimism(best, total, len(accuracies)))


def describe_evaluation(correct: int, total: int, split: str, mirror: bool = False,
                        history: Iterable[Mapping[str, Any]] = ()) -> tuple[str, str]:
    """What the Evaluate tab says of an evaluation: its figure with the interval, and what
    may flatter it.

    Args:
        correct: images classified correctly.
        total: images evaluated (> 0).
        split: ``validation`` or ``test``.
        mirror: each answer was averaged with the mirror image's.
        history: the run's epochs (``val_accuracy`` each), for the validation split: the
            kept epoch was chosen on these images.

    Returns:
        (figure, caveat): ``"93.5% of 734 validation images classified correctly (95%
        interval 91.5–95.1%)"`` and a sentence on the choice of epoch ("" when there is
        nothing to say).
    """
    low, high = wilson_interval(correct, total)
    how = ", each averaged with its mirror" if mirror else ""
    figure = (f"{100 * correct / total:.1f}% of {total:,} {split} images classified "
              f"correctly{how} ({100 * CONFIDENCE:.0f}% interval {100 * low:.1f}–"
              f"{100 * high:.1f}%)")
    if split == "test":
        return figure, ("The test images chose nothing (not the epoch, not the settings), so "
                        "no choice flatters this figure.")
    summary = summarize_validation(history, total)
    if summary is None or summary.epochs_compared <= 1:
        return figure, ""
    return figure, (
        f"The kept epoch is the best of {summary.epochs_compared} on these same images, "
        f"which may flatter the figure by up to ~{100 * summary.selection_optimism:.1f} "
        "points; a test/ folder measures it without that.")


@dataclass(frozen=True)
class CrossValidation:
    """The head's out-of-fold accuracy over every training and validation photo.

    Attributes:
        accuracy: share of photos the head classified correctly without having seen them.
        correct: photos classified correctly.
        total: photos measured.
        low: lower end of the interval.
        high: upper end of the interval.
        folds: times the head was trained, each without one fold.
    """

    accuracy: float
    correct: int
    total: int
    low: float
    high: float
    folds: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (for the run folder's status)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> CrossValidation | None:
        """The figure a run's status holds, or None when it is missing or not sound."""
        if not isinstance(data, dict):
            return None
        try:
            correct, total, folds = (int(data[k]) for k in ("correct", "total", "folds"))
            accuracy, low, high = (float(data[k]) for k in ("accuracy", "low", "high"))
        except (KeyError, TypeError, ValueError, OverflowError):
            return None
        if not (0 <= correct <= total and total > 0 and folds >= 2
                and 0.0 <= low <= accuracy <= high <= 1.0):
            return None
        return cls(accuracy, correct, total, low, high, folds)

    def sentence(self) -> str:
        """One line for a person."""
        return (f"Cross-validated over all {self.total:,} photos ({self.folds} folds, the "
                f"head on the frozen backbone): {100 * self.accuracy:.1f}% "
                f"({100 * CONFIDENCE:.0f}% interval {100 * self.low:.1f}–"
                f"{100 * self.high:.1f}%), the phase-1 recipe measured on every photo.")
