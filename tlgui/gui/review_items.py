"""What the review shows, one image at a time, from any of its sources.

The Audit tab's findings, the Evaluate tab's mistakes and new images being labelled on
the Predict tab all become ``ReviewItem``s, so one widget reviews them all. Plain data,
no Qt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from tlgui.core.audit_findings import AuditSummary, Finding, Nearest

if TYPE_CHECKING:
    from tlgui.core.metrics import Evaluation
    from tlgui.core.prediction import Prediction

PROBLEM_WORDS = {"likely_mislabeled": "Likely mislabeled", "near_duplicate": "Near-duplicate",
                 "outlier": "Outlier"}
KIND_WORDS = {"confident": "confident", "possible": "possible", "same_class": "same class",
              "label_conflict": "in two classes", "split_leak": "training/validation leak",
              "blank": "blank frame", "unlike_every_class": "unlike every class"}


@dataclass(frozen=True)
class ReviewItem:
    """One image to decide about.

    Attributes:
        path: the image.
        given: its class in the dataset ("" for a new image).
        suggested: the class it more likely belongs to ("" when none).
        title: what it is, in a few words ("Likely mislabeled · confident").
        detail: one line more.
        top: the model's most likely classes with their probabilities.
        top_label: whose probabilities ``top`` are ("Model", "Cross-validated").
        nearest: the most similar images of the given and of the other class.
        related: the other file of a duplicate pair.
        new: an image from outside the dataset, being labelled.
        problem: the audit problem (``likely_mislabeled``...), "" for other sources.
        score: the audit score, or how unsure the model was.
    """

    path: Path
    given: str
    suggested: str
    title: str
    detail: str = ""
    top: tuple[tuple[str, float], ...] = ()
    top_label: str = "Model"
    nearest: tuple[Nearest, ...] = ()
    related: Path | None = None
    new: bool = False
    problem: str = ""
    score: float = 0.0


def _title(f: Finding) -> str:
    return f"{PROBLEM_WORDS[f.problem]} · {KIND_WORDS.get(f.kind, f.kind)}"


def from_audit(audit: AuditSummary) -> list[ReviewItem]:
    """One item per finding, in the audit's order (highest score first)."""
    out = []
    for f, nearest in zip(audit.findings, audit.nearest, strict=True):
        out.append(ReviewItem(
            f.path, f.given_class, f.suggested_class, _title(f), f.detail,
            audit.top_classes(f.row), "Cross-validated", nearest, f.related_path,
            problem=f.problem, score=f.score))
    return out


def from_misses(evaluation: Evaluation) -> list[ReviewItem]:
    """One item per misclassified image, worst first."""
    names = evaluation.class_names
    return [ReviewItem(
        m.path, names[m.true_label], names[m.predicted_label], "Mistake of the model",
        f"The model said {names[m.predicted_label]} ({m.confidence:.0%}); the folder says "
        f"{names[m.true_label]} ({m.true_probability:.0%}).",
        ((names[m.predicted_label], m.confidence), (names[m.true_label], m.true_probability)),
        score=m.confidence) for m in evaluation.misses]


def from_predictions(predictions: Sequence[Prediction], dataset_root: Path | None = None,
                     ) -> list[ReviewItem]:
    """New images to label, the model's least sure first.

    Files that could not be classified and files already in the dataset are left out.
    """
    root = dataset_root.absolute() if dataset_root is not None else None
    rows = [p for p in predictions if p.error is None and p.top and not (
        root is not None and p.path.absolute().is_relative_to(root))]
    rows.sort(key=lambda p: (p.confidence, str(p.path)))
    return [ReviewItem(
        p.path, "", p.top[0][0], "New image",
        f"The model says {p.top[0][0]} ({p.confidence:.0%}).", tuple(p.top), new=True,
        score=1.0 - p.confidence) for p in rows]


def with_nearest(items: Sequence[ReviewItem], found: dict[Path, tuple[Nearest, ...]],
                 ) -> list[ReviewItem]:
    """The items, with the nearest images found for them."""
    return [replace(i, nearest=found[i.path]) if i.path in found else i for i in items]


def compared_classes(item: ReviewItem) -> list[str]:
    """The classes whose nearest images are shown for an item: the given and the other."""
    other = item.suggested or next((c for c, _ in item.top if c != item.given), "")
    return [c for c in dict.fromkeys((item.given, other)) if c]
