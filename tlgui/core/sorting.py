"""Sorting classified files into class folders by copy; the originals are only read.

Keras-free, so that the window copies in its own process. Copies never land where the
files being classified live: the destination may not be, lie inside or hold an input
folder, nor the folder of any file classified (a dataset's class folder, when single
files were given). A class folder that is a link leading back into an input is refused
too. A name already taken gets a `` (2)`` suffix unless the user asked to overwrite; an
identical file already there is not copied again. Overwriting replaces only files that
were there before: two classified files of the same name (``a/x.jpg`` and ``b/x.jpg``)
both keep their copy. A class whose folder would be the unsure folder gets another one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tlgui.core.atomic import atomic_path
from tlgui.core.destinations import check_folder_outside, check_not_input, input_folders
from tlgui.core.entries import EntryProblem, kind_of, open_regular, printable
from tlgui.core.errors import Cancelled, TlguiError, UnsafeDestination, os_reason
from tlgui.core.events import Notice, Report, StageProgress, ignore

if TYPE_CHECKING:
    from tlgui.core.prediction import Prediction

log = logging.getLogger(__name__)

UNSURE_FOLDER = "_unsure"
_UNSAFE_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f]')


def safe_folder_name(class_name: str) -> str:
    """A class name usable as a folder name on every system."""
    name = _UNSAFE_CHARS.sub("_", class_name).strip().rstrip(". ")
    return name if name and name not in (".", "..") else "_"


def class_folder(class_name: str) -> str:
    """The folder of a class's copies: ``safe_folder_name``, but never the unsure
    folder (a class named ``_unsure`` would mix its files with the unsure ones; the
    comparison ignores case, as some file systems do)."""
    name = safe_folder_name(class_name)
    return f"{name} (class)" if name.casefold() == UNSURE_FOLDER.casefold() else name


def protected_folders(inputs: Iterable[str | Path],
                      rows: Sequence[Prediction] = ()) -> list[Path]:
    """The folders copies may not touch: input folders, and the folder of every input
    file and of every classified file."""
    return input_folders(inputs, [r.path for r in rows if r.error is None])


def check_sort_destination(dest: str | Path, inputs: Iterable[str | Path],
                           rows: Sequence[Prediction] = ()) -> Path:
    """Refuses a sort destination that overlaps a folder being classified.

    Args:
        dest: the destination folder.
        inputs: the files and folders classified (a file's folder counts), and any
            other folder never to write into (the open dataset).
        rows: the predictions (each file's folder counts).

    Returns:
        The destination with ``~`` expanded.

    Raises:
        UnsafeDestination: copying there would change a folder being read (it is a
            ``ConfigError`` too), or ``dest`` is a file.
        WriteError: ``dest`` cannot be written.
    """
    return check_folder_outside(dest, protected_folders(inputs, rows), "sort destination")


def _same_bytes(a: Path, b: Path) -> bool:
    with open_regular(a) as fa, open_regular(b) as fb:
        if os.fstat(fa.fileno()).st_size != os.fstat(fb.fileno()).st_size:
            return False
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def _target(folder: Path, name: str, source: Path, overwrite: bool,
            written: set[Path]) -> Path | None:
    """Where to copy ``source``; None when an identical copy is already there.

    ``overwrite`` replaces a file that was there before this job, never one in
    ``written`` (a copy this same job made: it is a result too, not a leftover).
    """
    target = folder / name
    n = 2
    while os.path.lexists(target):
        with contextlib.suppress(OSError, EntryProblem):
            if _same_bytes(source, target):
                return None
        if overwrite and target not in written and os.path.isfile(target) \
                and not os.path.islink(target):
            return target
        stem, suffix = Path(name).stem, Path(name).suffix
        target = folder / f"{stem} ({n}){suffix}"
        n += 1
    return target


def _copy(source: Path, target: Path, replace: bool) -> None:
    with open_regular(source) as src, atomic_path(target, replace=replace) as tmp:
        with open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        shutil.copystat(source, tmp)


def class_folders(labels: Iterable[str], report: Report = ignore) -> dict[str, str]:
    """The folder of each class's copies, one folder per class: two names that give the
    same folder (``x?`` and ``x*``, ``A`` and ``a`` on a case-blind file system) get
    `` (2)``, `` (3)``...; each renamed class is told in a warning."""
    out: dict[str, str] = {}
    taken = {UNSURE_FOLDER.casefold()}
    for label in sorted(set(labels)):
        folder = base = class_folder(label)
        n = 2
        while folder.casefold() in taken:
            folder = f"{base} ({n})"
            n += 1
        taken.add(folder.casefold())
        out[label] = folder
        if folder != safe_folder_name(label):
            why = (f"'{UNSURE_FOLDER}' holds the files below the confidence threshold"
                   if base != safe_folder_name(label) and folder == base else
                   "another class's name gives the same folder name")
            report(Notice("warning", f"Files of the class '{printable(label)}' are copied "
                                     f"into '{printable(folder)}': {why}."))
    return out


def sort_into(rows: Sequence[Prediction], dest: str | Path, min_confidence: float = 0.0,
              inputs: Iterable[str | Path] = (), report: Report = ignore,
              cancel: threading.Event | None = None, *, overwrite: bool = False,
              ) -> dict[str, int]:
    """Copies (never moves) each classified file into ``dest/<class>/``.

    Files whose top probability is below ``min_confidence`` go to ``dest/_unsure/``
    (a class of that name goes to ``_unsure (class)``, with a warning ``Notice``);
    files that could not be read are left out. Each copy is written atomically; a
    file that cannot be copied is told in a ``Notice`` and the others go on.

    Args:
        rows: predictions from ``Predictor.predict_paths``.
        dest: the destination folder (created when missing).
        min_confidence: top-1 probability below which a file counts as unsure.
        inputs: the paths that were classified; ``dest`` must not overlap them.
        report: receives ``StageProgress("sort", ...)`` and a ``Notice`` per failed copy.
        cancel: set it to stop; ``Cancelled`` is raised between files.
        overwrite: a different file with the same name in a class folder is replaced
            (else the copy gets a `` (2)`` suffix); never a copy this call made.

    Returns:
        Files now in each destination folder from this call, by folder name.

    Raises:
        UnsafeDestination: ``dest`` overlaps an input folder or a classified file's
            folder (a ``ConfigError`` too).
        Cancelled: ``cancel`` was set.
    """
    cancel = cancel or threading.Event()
    usable = [(r, r.label) for r in rows if r.error is None and r.label is not None]
    dest = check_sort_destination(dest, inputs, [r for r, _ in usable])
    protected = protected_folders(inputs, [r for r, _ in usable])
    counts: dict[str, int] = {}
    checked: set[str] = set()
    written: set[Path] = set()  # copies made by this call: never replaced by another
    unusable: dict[str, int] = {}  # class folders that cannot be made: files left out
    folders = class_folders((label for _, label in usable), report)
    for done, (r, label) in enumerate(usable, start=1):
        if cancel.is_set():
            raise Cancelled("Sorting cancelled; the files copied so far are complete.")
        folder = UNSURE_FOLDER if r.confidence < min_confidence else folders[label]
        where = dest / folder
        if folder in unusable:
            unusable[folder] += 1
            continue
        if os.path.islink(where):
            # A link back into an input is refused outright; any other link is not
            # followed: copies would land wherever it leads, outside the destination.
            check_not_input(where, protected)
            unusable[folder] = 1
            report(Notice("warning", f"{printable(where)} is a link, not followed: files "
                                     f"of '{printable(folder)}' are not copied."))
            continue
        if os.path.lexists(where) and not os.path.isdir(where):
            unusable[folder] = 1
            report(Notice("warning", f"{printable(where)} is {kind_of(os.lstat(where).st_mode)}"
                                     f", not a folder: files of '{folder}' are not copied."))
            continue
        try:
            where.mkdir(parents=True, exist_ok=True)
            if folder not in checked:
                # A class folder already there may be a link back into an input.
                check_not_input(where, protected)
                checked.add(folder)
            target = _target(where, r.path.name, r.path, overwrite, written)
            if target is not None:
                _copy(r.path, target, replace=overwrite)
                written.add(target)
        except UnsafeDestination:
            raise
        except (OSError, EntryProblem, TlguiError) as exc:
            reason = exc.reason if isinstance(exc, EntryProblem) else \
                str(exc) if isinstance(exc, TlguiError) else os_reason(exc)
            log.warning("cannot copy %s into %s: %s", r.path, where, reason)
            report(Notice("warning", f"Cannot copy {printable(r.path)} into "
                                     f"{printable(where)}: {reason}"))
            continue
        counts[folder] = counts.get(folder, 0) + 1
        report(StageProgress("sort", done, len(usable), "Copying into class folders"))
    for folder, n in unusable.items():
        log.warning("%d file(s) not copied into %s", n, dest / folder)
    return counts
