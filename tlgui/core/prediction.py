"""The result of classifying one file: plain data, shared by the engine and the window.

It is written as a CSV file that is safe to open in a spreadsheet and always written.

Spreadsheets run a cell that begins with ``=``, ``+``, ``-`` or ``@`` as a formula (and
some also one that begins with a tab or a carriage return): a file or class named
``=HYPERLINK(...)`` would become a live link, or worse. As OWASP recommends, such a cell
is written with a single quote in front (``'=HYPERLINK(...)``), which a spreadsheet
shows as text; file names and class names alike. Probabilities are numbers and never
begin with one of these characters.

A file name that is not valid UTF-8 (made on another system) is written with its odd
bytes as ``\\xNN`` escapes, and a ``Notice`` says how many, so the results are never
lost to an encoding error after the images were classified.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tlgui.core.atomic import atomic_path
from tlgui.core.destinations import check_output
from tlgui.core.entries import printable, undecodable
from tlgui.core.events import Notice, Report, ignore


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


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """A cell that a spreadsheet shows as text: a quote before a formula's first character."""
    return "'" + text if text.startswith(FORMULA_START) else text


def is_unsure(row: Prediction, min_confidence: float) -> bool:
    """True when a classified file's top probability is below the threshold (0-1)."""
    return row.error is None and bool(row.top) and row.confidence < min_confidence


def write_csv(rows: Sequence[Prediction], path: str | Path, top_k: int | None = None, *,
              min_confidence: float | None = None, overwrite: bool = False,
              inputs: Iterable[str | Path] = (), model: str | Path | None = None,
              report: Report = ignore) -> Path:
    """Writes predictions as CSV, atomically.

    Columns: ``path``, ``class``, ``probability`` (the top-1), then ``top1_class``,
    ``top1_probability`` ... ``topK_class``, ``topK_probability``, then ``error``
    (empty when the file was classified). With ``min_confidence``, a last column
    ``unsure`` says ``yes`` when the top-1 probability is below it (``no`` otherwise,
    empty on error); ``class`` stays the best guess, so it means the same in every
    file tlgui writes, and appending keeps every other column where it was. Text cells
    are neutralised for spreadsheets (``spreadsheet_safe``).

    Args:
        rows: the predictions.
        path: the CSV file.
        top_k: how many classes per row (default: the most any row has).
        min_confidence: the unsure threshold (0-1), or None for no ``unsure`` column.
        overwrite: replace an existing file (else ``DestinationExists``).
        inputs: the files and folders classified; the CSV may not be one of them nor
            lie inside one of the folders. The rows' files count as inputs too.
        model: the model file used; never overwritten.
        report: receives a warning ``Notice`` when file names had to be escaped.

    Returns:
        The path written.

    Raises:
        DestinationExists: the file exists and ``overwrite`` is False.
        UnsafeDestination: the CSV would replace an input or the model, or is a folder.
        WriteError: it cannot be written (the message names it and the reason).
    """
    # Each classified file is an input too (only files: an error row may name a folder).
    files = [r.path for r in rows if os.path.isfile(r.path)]
    dest = check_output(path, inputs=[*inputs, *files], model=model, overwrite=overwrite)
    k = top_k if top_k is not None else max((len(r.top) for r in rows), default=1)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["path", "class", "probability"]
    for i in range(1, k + 1):
        header += [f"top{i}_class", f"top{i}_probability"]
    writer.writerow([*header, "error", *([] if min_confidence is None else ["unsure"])])
    escaped = 0
    for r in rows:
        escaped += undecodable(r.path)
        cells = [spreadsheet_safe(printable(r.path)), spreadsheet_safe(r.label or ""),
                 f"{r.confidence:.6f}" if r.top else ""]
        for i in range(k):
            cells += [spreadsheet_safe(r.top[i][0]), f"{r.top[i][1]:.6f}"] \
                if i < len(r.top) else ["", ""]
        extra = [] if min_confidence is None else [
            "" if r.error or not r.top else "yes" if is_unsure(r, min_confidence) else "no"]
        writer.writerow([*cells, spreadsheet_safe(printable(r.error or "")), *extra])
    with atomic_path(dest, replace=overwrite) as tmp:
        tmp.write_bytes(buf.getvalue().encode("utf-8"))
    if escaped:
        report(Notice("warning", f"{escaped} file name(s) in {printable(dest)} are not "
                                 "valid UTF-8; their odd bytes are written as \\xNN escapes."))
    return dest
