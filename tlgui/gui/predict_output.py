"""What the Predict tab writes: the CSV table and sorted copies, both outside the inputs.

Copying is file work without Keras, so it runs in a worker thread of the window's own
process (``core.sorting``); the engine is not involved.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from tlgui.core import sorting
from tlgui.core.errors import ConfigError, TlguiError
from tlgui.core.events import Notice
from tlgui.core.prediction import Prediction, write_csv
from tlgui.core.wording import plural
from tlgui.gui.workers import Job, start_job


def sorted_text(dest: Path, counts: dict[str, int], notices: Sequence[str]) -> str:
    """The status line after sorting, e.g. "Copied 8 images into D: 3 class folders,
    2 unsure in _unsure."."""
    unsure = counts.get(sorting.UNSURE_FOLDER, 0)
    classes = len(counts) - (1 if unsure else 0)
    text = (f"Copied {plural(sum(counts.values()), 'image')} into {dest}: "
            f"{plural(classes, 'class folder')}"
            + (f", {unsure} unsure in {sorting.UNSURE_FOLDER}" if unsure else ""))
    if notices:
        text += f"; {plural(len(notices), 'file')} could not be copied ({notices[0]})"
    return text + "."


class PredictOutput(QObject):
    """Writes the table and sorts copies; says how it went through its signals.

    Signals:
        status_message(str): a line for the status bar.
        error(str, object): a title and the exception to show.
        finished(): a sort ended (whatever its outcome).
    """

    status_message = Signal(str)
    error = Signal(str, object)
    finished = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job: Job | None = None

    def sorting(self) -> bool:
        """True while copies are being made."""
        return self.job is not None and self.job.is_running()

    def write_csv(self, rows: Sequence[Prediction], path: Path, threshold: float,
                  protected: Sequence[Path] = ()) -> bool:
        """Writes the results with an ``unsure`` column; False (and an error) on failure.

        The file dialog already asked before replacing a file, so an existing one is
        replaced; but never an image classified, nor a file inside ``protected``.
        """
        try:
            write_csv(rows, path, min_confidence=threshold, overwrite=True,
                      inputs=list(protected))
        except TlguiError as exc:
            self.error.emit("Cannot write the table", exc)
            return False
        except OSError as exc:
            self.error.emit("Cannot write the table", ConfigError(
                f"Cannot write {path}: {exc.strerror or exc}"))
            return False
        self.status_message.emit(f"Wrote {path}")
        return True

    def sort_into(self, rows: Sequence[Prediction], dest: Path, threshold: float,
                  protected: Sequence[Path]) -> Job | None:
        """Copies the classified files into ``dest/<class>/`` and ``dest/_unsure/``.

        Args:
            rows: the results.
            dest: the destination folder.
            threshold: top-1 probability below which a file goes to ``_unsure``.
            protected: the inputs and the open dataset: ``dest`` may not overlap them.

        Returns:
            The copying job, or None when the destination was refused (before any copy).
        """
        try:
            sorting.check_sort_destination(dest, protected, rows)
        except ConfigError as exc:
            self.error.emit("Cannot sort into that folder", exc)
            return None
        notices: list[str] = []
        self.status_message.emit(f"Copying into {dest}…")
        self.job = start_job(
            "sort", functools.partial(sorting.sort_into, list(rows), dest, threshold,
                                      list(protected)),
            on_progress=lambda e: notices.append(e.message) if isinstance(e, Notice) else None,
            on_success=lambda counts: self.status_message.emit(
                sorted_text(dest, counts, notices)),
            on_failure=lambda exc: self.error.emit("Sorting failed", exc),
            on_finish=self.finished.emit)
        return self.job
