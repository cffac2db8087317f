"""The result of classifying one file: plain data, shared by the engine and the window.

It is written as a CSV file that is safe to open in a spreadsheet and always written:
``csv_cells`` escapes control characters (a carriage return in a file name would split
the row) and neutralises formulas in every text cell, file names and class names alike;
probabilities are numbers.

A file name that is not valid UTF-8 (made on another system) is written with its odd
bytes as ``\\xNN`` escapes, and a ``Notice`` says how many, so the results are never
lost to an encoding error after the images were classified.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tlgui.core.atomic import atomic_path
from tlgui.core.csv_cells import FORMULA_START, Cell, csv_lines, spreadsheet_safe
from tlgui.core.destinations import check_not_input, check_output
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


# Kept importable from here: older code imports them from this module.
__all__ = ["FORMULA_START", "Prediction", "PredictionCsv", "check_csv_destination",
           "is_unsure", "prediction_csv", "spreadsheet_safe", "write_csv"]


def is_unsure(row: Prediction, min_confidence: float) -> bool:
    """True when a classified file's top probability is below the threshold (0-1)."""
    return row.error is None and bool(row.top) and row.confidence < min_confidence


def check_csv_destination(path: str | Path, *, inputs: Iterable[str | Path] = (),
                          files: Iterable[str | Path] = (), model: str | Path | None = None,
                          overwrite: bool = False) -> Path:
    """Checks a predictions CSV destination; the command line calls it before the model
    loads, with the files it will classify (``predict.collect_inputs``).

    The CSV may not be an input file nor one of ``files`` (a hard link or another name
    for one of them included), nor lie inside an input folder: the folders being read are
    never written into. The folder of a single input file is not being read, and a
    results table beside the photos it describes is what a user expects
    (``~/cases/a.jpg`` -> ``~/cases/results.csv``); it is not an image, so no scan counts
    it. Sorted copies are images, and there the file's folder is refused (``sorting``).

    Raises:
        DestinationExists: the file exists and ``overwrite`` is False.
        UnsafeDestination: it would replace an input or the model, lies in a folder
            being read, is a folder, or its name is too long.
        WriteError: its folder cannot be written.
    """
    # Only files: an error row or a missing input may name a folder or nothing.
    found = _same_files(Path(path).expanduser(), files)
    inputs = list(inputs)
    # What the user named first, so the message names it ("inside <the input folder>",
    # "one of the input files"); then the folders and files found in it.
    check_not_input(path, inputs, model)
    folders = [Path(p) for p in inputs if os.path.isdir(p)]
    return check_output(path, inputs=[*folders, *found], model=model, overwrite=overwrite)


def _same_files(dest: Path, files: Iterable[str | Path]) -> list[Path]:
    """The regular files among ``files`` that are ``dest``: the same file (its device and
    inode, so a hard link or another spelling too), in their order; ``check_output``
    then refuses the first, naming it. One look at each file, and none at all when
    ``dest`` does not exist: a file that is ``dest`` under another name makes it exist.
    That keeps the check of a CSV for 100,000 images quick and small.
    """
    try:
        st = os.stat(dest)
    except (OSError, ValueError):
        return []
    ident = (st.st_dev, st.st_ino)
    out = []
    for f in files:
        try:
            other = os.stat(f)
        except (OSError, ValueError):
            continue
        if stat.S_ISREG(other.st_mode) and (other.st_dev, other.st_ino) == ident:
            out.append(Path(f))
    return out


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
    have their control characters escaped and are neutralised for spreadsheets
    (``csv_cells``).

    Args:
        rows: the predictions.
        path: the CSV file.
        top_k: how many classes per row (default: the most any row has).
        min_confidence: the unsure threshold (0-1), or None for no ``unsure`` column.
        overwrite: replace an existing file (else ``DestinationExists``).
        inputs: the files and folders classified; the CSV may not be one of them nor
            lie inside one of the folders, nor in the folder of an input file. The rows'
            files and their folders count as inputs too.
        model: the model file used; never overwritten.
        report: receives a warning ``Notice`` when file names had to be escaped.

    Returns:
        The path written.

    Raises:
        DestinationExists: the file exists and ``overwrite`` is False.
        UnsafeDestination: the CSV would replace an input or the model, or is a folder.
        WriteError: it cannot be written (the message names it and the reason).
    """
    k = top_k if top_k is not None else max((len(r.top) for r in rows), default=1)
    with prediction_csv(path, k, min_confidence=min_confidence, overwrite=overwrite,
                        inputs=inputs, files=[r.path for r in rows], model=model,
                        report=report) as out:
        out.write(rows)
    return out.path


class PredictionCsv:
    """A predictions CSV being written a batch of rows at a time (``prediction_csv``).

    Attributes:
        path: the CSV file it becomes once the job has finished.
        rows: rows written so far.
    """

    def __init__(self, path: Path, fh: BinaryIO, top_k: int,
                 min_confidence: float | None) -> None:
        self.path = path
        self.rows = 0
        self.escaped = 0
        self._fh = fh
        self._k = top_k
        self._min_confidence = min_confidence
        header: list[Cell] = ["path", "class", "probability"]
        for i in range(1, top_k + 1):
            header += [f"top{i}_class", f"top{i}_probability"]
        header += ["error", *([] if min_confidence is None else ["unsure"])]
        self._put([header])

    def write(self, rows: Iterable[Prediction]) -> None:
        """Appends rows (to the temp file: the CSV appears under its name at the end).

        Raises:
            OSError: the temp file cannot be written (a full disk); ``prediction_csv``
                turns it into a ``WriteError`` naming the CSV.
        """
        rows = list(rows)
        self.escaped += sum(undecodable(r.path) for r in rows)
        self.rows += len(rows)
        self._put([_row(r, self._k, self._min_confidence) for r in rows])

    def _put(self, cells: list[list[Cell]]) -> None:
        self._fh.write(csv_lines(cells).encode("utf-8"))
        # Handed to the system batch by batch: the file grows as the job goes.
        self._fh.flush()


@contextlib.contextmanager
def prediction_csv(path: str | Path, top_k: int, *, min_confidence: float | None = None,
                   overwrite: bool = False, inputs: Iterable[str | Path] = (),
                   files: Iterable[str | Path] = (), model: str | Path | None = None,
                   report: Report = ignore) -> Iterator[PredictionCsv]:
    """A predictions CSV written as the predictions come, and named only at the end.

    The destination is checked first (``check_csv_destination``). Rows go to a temp
    file beside it, so memory holds no more than one batch of rows however many files
    are classified; when the block ends normally the temp file becomes the CSV
    (``atomic.atomic_path``). When it ends with an exception (a cancelled or failed
    job) the temp file is removed: no CSV appears, and an earlier one is untouched. The
    columns are those of ``write_csv``, and so are the bytes for the same rows.

    Args:
        path: the CSV file.
        top_k: how many classes per row.
        min_confidence: the unsure threshold (0-1), or None for no ``unsure`` column.
        overwrite: replace an existing file (else ``DestinationExists``).
        inputs: the files and folders classified (see ``write_csv``).
        files: the files that will be classified (see ``check_csv_destination``).
        model: the model file used; never overwritten.
        report: receives a warning ``Notice`` when file names had to be escaped.

    Yields:
        The writer: ``write(rows)`` for each batch.

    Raises:
        DestinationExists: the file exists (or appeared meanwhile) and ``overwrite`` is
            False.
        UnsafeDestination: the CSV would replace an input or the model, or is a folder.
        WriteError: it cannot be written (the message names it and the reason).
    """
    dest = check_csv_destination(path, inputs=inputs, files=files, model=model,
                                 overwrite=overwrite)
    with atomic_path(dest, replace=overwrite) as tmp, open(tmp, "wb") as fh:
        out = PredictionCsv(dest, fh, top_k, min_confidence)
        yield out
    if out.escaped:
        report(Notice("warning", f"{out.escaped} file name(s) in {printable(dest)} are not "
                                 "valid UTF-8; their odd bytes are written as \\xNN escapes."))


def _row(r: Prediction, k: int, min_confidence: float | None) -> list[Cell]:
    """One CSV row: text cells as ``str``, probabilities as ``float``."""
    cells: list[Cell] = [printable(r.path), r.label or "", r.confidence if r.top else ""]
    for i in range(k):
        cells += [r.top[i][0], r.top[i][1]] if i < len(r.top) else ["", ""]
    cells.append(printable(r.error or ""))
    if min_confidence is not None:
        cells.append("" if r.error or not r.top else
                     "yes" if is_unsure(r, min_confidence) else "no")
    return cells
