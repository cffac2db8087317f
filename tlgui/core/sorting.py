"""Sorting classified files into class folders by copy; the originals are only read.

Keras-free, so that the window copies in its own process. Copies never land where the
files being classified live: the destination may not be, lie inside or hold an input
folder, nor the folder of any file classified (a dataset's class folder, when single
files were given). A name already taken gets a `` (2)`` suffix; an identical file
already there is not copied again.
"""

from __future__ import annotations

import filecmp
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tlgui.core.atomic import atomic_path
from tlgui.core.errors import Cancelled, ConfigError
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


def protected_folders(inputs: Iterable[str | Path],
                      rows: Sequence[Prediction] = ()) -> list[Path]:
    """The folders copies may not touch: input folders, and the folder of every input
    file and of every classified file."""
    out: list[Path] = []
    for raw in inputs:
        p = Path(raw).expanduser()
        out.append(p if p.is_dir() else p.parent)
    out += [r.path.parent for r in rows if r.error is None]
    seen: set[str] = set()
    unique: list[Path] = []
    for p in out:
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


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
        ConfigError: copying there would change a folder being read, or ``dest`` is
            a file.
    """
    d = Path(dest).expanduser()
    if d.exists() and not d.is_dir():
        raise ConfigError(f"The sort destination {dest} is a file; choose a folder.")
    real = Path(os.path.realpath(d))
    for folder in protected_folders(inputs, rows):
        s = Path(os.path.realpath(folder))
        if real == s or real.is_relative_to(s) or s.is_relative_to(real):
            raise ConfigError(
                f"The sort destination {dest} overlaps the input folder {folder}; input "
                "folders are never changed, so choose a destination outside it.")
    return d


def _free_name(folder: Path, name: str, source: Path) -> Path | None:
    """Where to copy ``source``; None when an identical copy is already there."""
    target = folder / name
    n = 2
    while target.exists():
        if target.is_file() and filecmp.cmp(source, target, shallow=False):
            return None
        stem, suffix = Path(name).stem, Path(name).suffix
        target = folder / f"{stem} ({n}){suffix}"
        n += 1
    return target


def sort_into(rows: Sequence[Prediction], dest: str | Path, min_confidence: float = 0.0,
              inputs: Iterable[str | Path] = (), report: Report = ignore,
              cancel: threading.Event | None = None) -> dict[str, int]:
    """Copies (never moves) each classified file into ``dest/<class>/``.

    Files whose top probability is below ``min_confidence`` go to ``dest/_unsure/``;
    files that could not be read are left out. Each copy is written atomically; a file
    that cannot be copied is told in a ``Notice`` and the others go on.

    Args:
        rows: predictions from ``Predictor.predict_paths``.
        dest: the destination folder (created when missing).
        min_confidence: top-1 probability below which a file counts as unsure.
        inputs: the paths that were classified; ``dest`` must not overlap them.
        report: receives ``StageProgress("sort", ...)`` and a ``Notice`` per failed copy.
        cancel: set it to stop; ``Cancelled`` is raised between files.

    Returns:
        Files now in each destination folder from this call, by folder name.

    Raises:
        ConfigError: ``dest`` overlaps an input folder or a classified file's folder.
        Cancelled: ``cancel`` was set.
    """
    cancel = cancel or threading.Event()
    usable = [(r, r.label) for r in rows if r.error is None and r.label is not None]
    dest = check_sort_destination(dest, inputs, [r for r, _ in usable])
    counts: dict[str, int] = {}
    for done, (r, label) in enumerate(usable, start=1):
        if cancel.is_set():
            raise Cancelled("Sorting cancelled; the files copied so far are complete.")
        folder = UNSURE_FOLDER if r.confidence < min_confidence else safe_folder_name(label)
        try:
            (dest / folder).mkdir(parents=True, exist_ok=True)
            target = _free_name(dest / folder, r.path.name, r.path)
            if target is not None:
                with atomic_path(target) as tmp:
                    shutil.copy2(r.path, tmp)
        except OSError as exc:
            log.warning("cannot copy %s into %s: %s", r.path, dest / folder, exc)
            report(Notice("warning", f"Cannot copy {r.path} into {dest / folder}: {exc}"))
            continue
        counts[folder] = counts.get(folder, 0) + 1
        report(StageProgress("sort", done, len(usable), "Copying into class folders"))
    return counts
