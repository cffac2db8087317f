"""The result of classifying one file: plain data, shared by the engine and the window."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tlgui.core.atomic import atomic_path


@dataclass(frozen=True)
class Prediction:
    """The result for one file.

    Attributes:
        path: the file as found.
        top: (class name, probability) pairs, most likely first; empty on error.
        error: why the file could not be classified, or None.
    """

    path: Path
    top: tuple[tuple[str, float], ...] = ()
    error: str | None = None

    @property
    def label(self) -> str | None:
        """The most likely class, or None on error."""
        return self.top[0][0] if self.top else None

    @property
    def confidence(self) -> float:
        """The probability of the most likely class (0 on error)."""
        return self.top[0][1] if self.top else 0.0


def is_unsure(row: Prediction, min_confidence: float) -> bool:
    """True when a classified file's top probability is below the threshold (0-1)."""
    return row.error is None and bool(row.top) and row.confidence < min_confidence


def write_csv(rows: Sequence[Prediction], path: str | Path, top_k: int | None = None, *,
              min_confidence: float | None = None) -> Path:
    """Writes predictions as CSV, atomically.

    Columns: ``path``, ``class``, ``probability`` (the top-1), then ``top1_class``,
    ``top1_probability`` ... ``topK_class``, ``topK_probability``, then ``error``
    (empty when the file was classified). With ``min_confidence``, a last column
    ``unsure`` says ``yes`` when the top-1 probability is below it (``no`` otherwise,
    empty on error); ``class`` stays the best guess, so it means the same in every
    file tlgui writes, and appending keeps every other column where it was.

    Args:
        rows: the predictions.
        path: the CSV file.
        top_k: how many classes per row (default: the most any row has).
        min_confidence: the unsure threshold (0-1), or None for no ``unsure`` column.

    Returns:
        The path written.
    """
    k = top_k if top_k is not None else max((len(r.top) for r in rows), default=1)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["path", "class", "probability"]
    for i in range(1, k + 1):
        header += [f"top{i}_class", f"top{i}_probability"]
    writer.writerow([*header, "error", *([] if min_confidence is None else ["unsure"])])
    for r in rows:
        cells = [str(r.path), r.label or "", f"{r.confidence:.6f}" if r.top else ""]
        for i in range(k):
            cells += [r.top[i][0], f"{r.top[i][1]:.6f}"] if i < len(r.top) else ["", ""]
        extra = [] if min_confidence is None else [
            "" if r.error or not r.top else "yes" if is_unsure(r, min_confidence) else "no"]
        writer.writerow([*cells, r.error or "", *extra])
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    return Path(path)
