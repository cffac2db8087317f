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


def write_csv(rows: Sequence[Prediction], path: str | Path, top_k: int | None = None) -> Path:
    """Writes predictions as CSV, atomically.

    Columns: ``path``, ``class``, ``probability`` (the top-1), then ``top1_class``,
    ``top1_probability`` ... ``topK_class``, ``topK_probability``, then ``error``
    (empty when the file was classified).

    Returns:
        The path written.
    """
    k = top_k if top_k is not None else max((len(r.top) for r in rows), default=1)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["path", "class", "probability"]
    for i in range(1, k + 1):
        header += [f"top{i}_class", f"top{i}_probability"]
    writer.writerow([*header, "error"])
    for r in rows:
        cells = [str(r.path), r.label or "", f"{r.confidence:.6f}" if r.top else ""]
        for i in range(k):
            cells += [r.top[i][0], f"{r.top[i][1]:.6f}"] if i < len(r.top) else ["", ""]
        writer.writerow([*cells, r.error or ""])
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    return Path(path)
