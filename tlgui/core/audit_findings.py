"""What the label audit found, as plain data both the engine and the window hold.

``audit.py`` (which needs Keras for its feature pass) produces these; the window, which
never imports Keras, receives them through the engine's codec as an ``AuditSummary``:
the findings, the out-of-fold probabilities and, per finding, the images of its given
and of its other class that look most like it. The CSV writer lives here too, so the
window writes the same file as ``tlgui audit --csv``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from tlgui.core.atomic import atomic_write_text
from tlgui.core.csv_cells import csv_text
from tlgui.core.dataset import Problem
from tlgui.core.entries import printable

ProblemKind = Literal["likely_mislabeled", "near_duplicate", "outlier"]
PROBLEMS: tuple[ProblemKind, ...] = ("likely_mislabeled", "near_duplicate", "outlier")
TITLES: dict[str, str] = {"likely_mislabeled": "Likely mislabeled",
                          "near_duplicate": "Near-duplicates", "outlier": "Outliers"}
CSV_COLUMNS = ("path", "problem", "given_class", "suggested_class", "score", "related_path")


@dataclass(frozen=True)
class Finding:
    """One row of the audit.

    Attributes:
        path: the image.
        problem: ``likely_mislabeled``, ``near_duplicate`` or ``outlier``.
        given_class: the class its folder gives it.
        suggested_class: the class it more likely belongs to (likely_mislabeled), or the
            other file's class when a duplicate pair crosses classes; else "".
        score: 0..1, higher first. likely_mislabeled: ``(1 - p(given)) / 2``, plus 0.5
            when confident learning flags it; near_duplicate: thumbnail correlation
            (1.0 for identical files); outlier: 1.0 for a blank frame, else
            ``z / (z + outlier_z)`` (0.5 at the threshold).
        related_path: the other file of a duplicate pair, else None.
        kind: ``confident``/``possible`` (mislabeled); ``same_class``,
            ``label_conflict`` or ``split_leak`` (duplicates); ``blank`` or
            ``unlike_every_class`` (outliers).
        detail: one line for people.
        row: the image's row in the result's arrays.
        related_row: the other file's row, or -1.
    """

    path: Path
    problem: ProblemKind
    given_class: str
    suggested_class: str
    score: float
    related_path: Path | None
    kind: str
    detail: str
    row: int
    related_row: int = -1


@dataclass(frozen=True)
class Nearest:
    """The images of one class that look most like a finding's image.

    Attributes:
        class_name: the class.
        paths: its images, most similar first.
        similarity: their cosine similarity to the finding's image (backbone features).
    """

    class_name: str
    paths: tuple[Path, ...]
    similarity: tuple[float, ...]


@dataclass(frozen=True)
class AuditSummary:
    """An audit as the window holds it: everything but the feature matrix.

    Attributes:
        root: the dataset folder.
        class_names: the classes, in label order.
        paths: every audited image, one row each.
        labels: given class per row.
        probabilities: out-of-fold class probabilities ``[n, classes]`` (float32).
        findings: highest score first.
        nearest: per finding, the nearest images of its given class and of its other
            class (the suggested one, else the out-of-fold favourite besides the given).
        problems: files that could not be read, and why.
        accuracy: share of images whose out-of-fold prediction is their given class.
        backbone: the backbone the features come from.
        image_size: the side images were looked at.
        seconds: wall time per stage.
    """

    root: Path
    class_names: tuple[str, ...]
    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    probabilities: np.ndarray
    findings: tuple[Finding, ...]
    nearest: tuple[tuple[Nearest, ...], ...]
    problems: tuple[Problem, ...]
    accuracy: float
    backbone: str
    image_size: int
    seconds: dict[str, float]

    def counts(self) -> Counter[str]:
        """Findings per problem."""
        return Counter(f.problem for f in self.findings)

    def top_classes(self, row: int, k: int = 3) -> tuple[tuple[str, float], ...]:
        """The ``k`` most likely classes of a row, out of fold, most likely first."""
        probs = self.probabilities[row]
        order = np.argsort(-probs, kind="stable")[:k]
        return tuple((self.class_names[int(i)], float(probs[int(i)])) for i in order)


def other_class(probabilities: np.ndarray, label: int, suggested: int | None) -> int:
    """The class a finding is compared with: the suggested one, else the out-of-fold
    favourite, else (when that is the given class) the runner-up."""
    if suggested is not None and suggested != label:
        return suggested
    order = [int(i) for i in np.argsort(-probabilities, kind="stable")]
    return next((i for i in order if i != label), label)


# -- CSV ------------------------------------------------------------------------------------
def check_csv_destination(path: str | Path, dataset_root: str | Path,
                          overwrite: bool = False) -> Path:
    """Refuses a CSV destination inside the dataset, or an existing file unless asked.

    Checked before the audit starts, so a long run never ends in a refused write. The
    rule is the one every writer follows (``destinations.check_output``).

    Raises:
        UnsafeDestination: the destination is inside the dataset, or is a folder.
        DestinationExists: it exists and ``overwrite`` is False.
        WriteError: its folder cannot be written.
    """
    from tlgui.core.destinations import check_output

    return check_output(path, inputs=[dataset_root], overwrite=overwrite)


def findings_csv_text(findings: Sequence[Finding]) -> str:
    """The CSV text: the header, then one row per finding, in the order given.

    Paths and class names (folder names: anything a file system allows) are escaped and
    neutralised for spreadsheets as in every CSV tlgui writes (``csv_cells``).
    """
    return csv_text(CSV_COLUMNS, (
        [printable(f.path), f.problem, f.given_class, f.suggested_class, f.score,
         "" if f.related_path is None else printable(f.related_path)] for f in findings))


def write_findings_csv(findings: Sequence[Finding], path: str | Path, *,
                       overwrite: bool = False) -> Path:
    """Writes findings as CSV, atomically (see ``check_csv_destination`` first).

    Returns:
        The path written.
    """
    atomic_write_text(path, findings_csv_text(findings), replace=overwrite)
    return Path(path)
