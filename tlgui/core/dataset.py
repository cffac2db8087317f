"""Scanning a folder of class folders into a dataset: files, labels, split and problems.

Scanning reads headers only and never writes inside the user's folder. Reading is total:
every entry is either used or listed in ``Dataset.problems`` with a reason, and no entry
(a pipe, a device, a link to ``/``, an undecodable name, an overlong path, a folder that
cannot be opened) can stop, hang or lead the scan out of the dataset folder.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from tlgui.core.config import SplitConfig
from tlgui.core.dataset_checks import (  # noqa: F401 - the limits are imported from here
    MAX_IMBALANCE,
    MIN_CLASS_IMAGES,
    class_warnings,
    content_digest,
    find_conflicts,
    split_warnings,
    stratified_split,
)
from tlgui.core.entries import (
    LINKED_FOLDER,
    EntryProblem,
    control_character,
    folder_kind,
    kind_of,
    printable,
    regular_file,
    sorted_entries,
    stat_reason,
    undecodable,
    walk_files,
)
from tlgui.core.errors import Cancelled, DatasetError, os_reason
from tlgui.core.events import Report, StageProgress, ignore
from tlgui.core.imageio import MIN_SIDE, probe_sized

Layout = Literal["class_folders", "split_folders"]
SPLIT_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "validation": ("validation", "val", "valid"),
    "test": ("test", "testing"),
}
LITTER_NAMES = frozenset({"thumbs.db", "desktop.ini", "ehthumbs.db", "icon\r"})
# Files up to this size are read whole when their header is probed, and hashed then for
# the duplicate check: one open per file instead of two. Larger files (photos) are only
# hashed when another class holds a file of exactly the same size.
WHOLE_READ_BYTES = 64 * 1024
# Threads looking at files, and files handed to them ahead of the one being taken.
SCAN_THREADS = 8
LOOK_AHEAD = 64


@dataclass(frozen=True, slots=True)
class Sample:
    """One usable image: its file, label index and the file facts the cache keys on."""

    path: Path
    label: int
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Problem:
    """A file that was skipped, and why."""

    path: Path
    reason: str


@dataclass(frozen=True)
class Dataset:
    """A scanned dataset. ``train``/``validation``/``test`` hold the usable files."""

    root: Path
    layout: Layout
    class_names: tuple[str, ...]
    train: tuple[Sample, ...]
    validation: tuple[Sample, ...]
    test: tuple[Sample, ...] = ()
    problems: tuple[Problem, ...] = ()
    warnings: tuple[str, ...] = ()
    conflicts: tuple[tuple[Path, ...], ...] = field(default=())
    # A train/ folder beside test/ but no validation/: validation is held back from train/.
    validation_held_back: bool = False

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def counts(self, split: str = "all") -> dict[str, int]:
        """Images per class in ``train``, ``validation``, ``test`` or ``all``."""
        samples: Iterable[Sample]
        if split == "all":
            samples = (*self.train, *self.validation, *self.test)
        else:
            samples = getattr(self, split)
        out = dict.fromkeys(self.class_names, 0)
        for s in samples:
            out[self.class_names[s.label]] += 1
        return out

    def samples_of(self, class_name: str) -> list[Sample]:
        """All usable samples of one class, train first."""
        label = self.class_names.index(class_name)
        return [s for s in (*self.train, *self.validation, *self.test) if s.label == label]

    def without(self, bad: Iterable[Problem]) -> Dataset:
        """Returns a copy with these files dropped and added to the problems list."""
        bad = list(bad)
        if not bad:
            return self
        paths = {p.path for p in bad}

        def keep(samples: tuple[Sample, ...]) -> tuple[Sample, ...]:
            return tuple(s for s in samples if s.path not in paths)

        return replace(
            self,
            train=keep(self.train),
            validation=keep(self.validation),
            test=keep(self.test),
            problems=self.problems + tuple(bad),
        )


def _is_litter(name: str) -> bool:
    return name.startswith(".") or name.startswith("._") or name.lower() in LITTER_NAMES


@dataclass
class _Listing:
    """The entries of one folder: sub-folders to use, and what is not used, with why."""

    folders: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _list_folder(folder: Path) -> _Listing:
    """Sorts the entries of a dataset or split folder into real sub-folders and the rest.

    A link to a folder is never followed (it could lead to ``/`` or back into the
    dataset); a folder whose name is not valid UTF-8 cannot name a class.
    """
    try:
        entries = sorted_entries(folder)
    except OSError as exc:
        raise DatasetError(f"Cannot read the folder {printable(folder)}: "
                           f"{os_reason(exc)}.") from exc
    out = _Listing()
    for entry in entries:
        if _is_litter(entry.name):
            continue
        path = Path(entry.path)
        try:
            kind = folder_kind(entry)
        except OSError as exc:
            out.problems.append(Problem(path, stat_reason(exc, path)))
            continue
        real_dir = kind == "folder"
        if real_dir and undecodable(entry.name):
            out.problems.append(Problem(path, "folder name is not valid UTF-8 text, so it "
                                              "cannot name a class; rename the folder"))
        elif real_dir and control_character(entry.name):
            # A class name goes into labels.txt, CSV files and the model: one per line.
            out.problems.append(Problem(path, "folder name holds a line break or another "
                                              "control character, so it cannot name a "
                                              "class; rename the folder"))
        elif real_dir:
            out.folders.append(path)
        elif kind == "linked folder":
            out.problems.append(Problem(path, f"{LINKED_FOLDER} (a class folder must be a "
                                              "real folder inside the dataset)"))
        else:
            out.files.append(path)
    return out


def _outside(files: list[Path]) -> list[Problem]:
    """Problems for entries that lie beside the class folders."""
    out = []
    for path in files:
        try:
            regular_file(path)
            out.append(Problem(path, "file outside any class folder"))
        except EntryProblem as exc:
            out.append(Problem(path, exc.reason))
    return out


def _find_split_dirs(listing: _Listing) -> dict[str, Path] | None:
    children = {p.name.lower(): p for p in listing.folders}
    found: dict[str, Path] = {}
    for split, names in SPLIT_NAMES.items():
        for n in names:
            if n in children:
                found[split] = children[n]
                break
    # train/ with test/ alone is common (exported sets): a split layout all the same, not
    # two classes named "train" and "test".
    if "train" in found and ("validation" in found or "test" in found):
        return found
    return None


@dataclass(frozen=True)
class _Checked:
    """What looking at one file gave: a sample (and its digest when read whole), or why
    it is not used."""

    sample: Sample | None = None
    digest: bytes | None = None
    reason: str | None = None


def _check(path: Path, label: int, min_side: int) -> _Checked:
    try:
        # Looked at without opening: a pipe or device is refused here, never read.
        st = regular_file(path)
        _, content = probe_sized(path, st.st_size, min_side, WHOLE_READ_BYTES)
    except EntryProblem as exc:  # ImageProblem included
        return _Checked(reason=exc.reason)
    except OSError as exc:
        return _Checked(reason=f"cannot read file ({os_reason(exc)})")
    # Hashed now, while in memory: the duplicate check need not open it again.
    digest = content_digest(content) if content is not None \
        and len(content) == st.st_size else None
    return _Checked(Sample(path, label, st.st_size, st.st_mtime_ns), digest)


class _Scanner:
    """Walks class folders and looks at their files on a few threads, in walk order.

    The threads overlap the waits for the disk (a cold folder is read mostly while
    headers are parsed, not one file after another); results are taken in the order
    the walk found the files, so the samples and problems are the same as one thread
    would give, and at most ``LOOK_AHEAD`` files are being looked at at once.
    """

    def __init__(self, report: Report, cancel: threading.Event, min_side: int,
                 pool: ThreadPoolExecutor) -> None:
        self.report = report
        self.cancel = cancel
        self.min_side = min_side
        self.pool = pool
        self.problems: list[Problem] = []
        self.digests: dict[Path, bytes] = {}
        self.done = 0
        self.last_report = 0.0

    def scan_class(self, folder: Path, label: int) -> list[Sample]:
        samples: list[Sample] = []
        pending: deque[tuple[Path, Future[_Checked] | str]] = deque()
        for path, reason in walk_files(folder, skip=_is_litter):
            if self.cancel.is_set():
                raise Cancelled("Scan cancelled.")
            pending.append((path, reason if reason is not None
                            else self.pool.submit(_check, path, label, self.min_side)))
            if len(pending) >= LOOK_AHEAD:
                self._take(pending.popleft(), samples, folder)
        while pending:
            if self.cancel.is_set():
                raise Cancelled("Scan cancelled.")
            self._take(pending.popleft(), samples, folder)
        return samples

    def _take(self, item: tuple[Path, Future[_Checked] | str], samples: list[Sample],
              folder: Path) -> None:
        path, looked = item
        self.done += 1
        now = time.monotonic()
        if now - self.last_report > 0.1:
            self.last_report = now
            self.report(StageProgress("scan", self.done, 0,
                                      f"Scanning {printable(folder.name)}"))
        checked = _Checked(reason=looked) if isinstance(looked, str) else looked.result()
        if checked.sample is None:
            self.problems.append(Problem(path, checked.reason or "not used"))
            return
        samples.append(checked.sample)
        if checked.digest is not None:
            self.digests[path] = checked.digest


def scan(
    root: str | Path,
    split: SplitConfig | None = None,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    min_side: int = MIN_SIDE,
) -> Dataset:
    """Scans a dataset folder.

    Args:
        root: a folder of class folders, or one holding ``train/`` and ``validation/``
            (and optionally ``test/``) folders with the same class folders.
        split: how to split off validation images when there is no validation folder.
        report: receives throttled ``StageProgress("scan", ...)`` events.
        cancel: set it to stop the scan; ``Cancelled`` is raised.
        min_side: images with a smaller width or height are skipped.

    Returns:
        The dataset with every skipped file listed in ``problems``.

    Raises:
        DatasetError: the folder is missing or has fewer than two usable classes.
        Cancelled: ``cancel`` was set.
    """
    root = Path(root).expanduser()
    split = split or SplitConfig()
    cancel = cancel or threading.Event()
    try:
        mode = os.stat(root).st_mode
    except FileNotFoundError as exc:
        raise DatasetError(f"The folder {printable(root)} does not exist.") from exc
    except OSError as exc:
        raise DatasetError(f"Cannot read the folder {printable(root)}: {os_reason(exc)}.") \
            from exc
    if not stat.S_ISDIR(mode):
        raise DatasetError(f"{printable(root)} is {kind_of(mode)}, not a folder; choose the "
                           "folder that holds the class folders.")
    with ThreadPoolExecutor(max_workers=SCAN_THREADS) as pool:
        try:
            return _scan(root, split, report, cancel, min_side, pool)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _scan(root: Path, split: SplitConfig, report: Report, cancel: threading.Event,
          min_side: int, pool: ThreadPoolExecutor) -> Dataset:
    scanner = _Scanner(report, cancel, min_side, pool)
    top = _list_folder(root)
    split_dirs = _find_split_dirs(top)
    layout: Layout = "split_folders" if split_dirs else "class_folders"
    parts: dict[str, list[Sample]] = {"train": [], "validation": [], "test": []}
    scanner.problems += top.problems + _outside(top.files)
    if split_dirs:
        listings = {part: _list_folder(folder) for part, folder in split_dirs.items()}
        names = sorted({p.name for lst in listings.values() for p in lst.folders})
        for part, lst in listings.items():
            scanner.problems += lst.problems + _outside(lst.files)
            for cdir in lst.folders:
                parts[part] += scanner.scan_class(cdir, names.index(cdir.name))
        used = set(split_dirs.values())
        scanner.problems += [Problem(p, "folder beside the train/validation/test folders, "
                                        "not used") for p in top.folders if p not in used]
    else:
        names = [d.name for d in top.folders]
        for label, cdir in enumerate(top.folders):
            parts["train"] += scanner.scan_class(cdir, label)

    all_samples = parts["train"] + parts["validation"] + parts["test"]
    present = sorted({s.label for s in all_samples})
    empty = [names[i] for i in range(len(names)) if i not in present]
    if len(present) < 2:
        raise DatasetError(
            f"{printable(root)} needs at least 2 class folders with usable images; found "
            f"{len(present)} ({', '.join(names) or 'no sub-folders'}). Put each class's "
            "images in a sub-folder named after the class."
        )
    # Relabel so that classes without images vanish and labels stay contiguous.
    remap = {old: new for new, old in enumerate(present)}
    class_names = tuple(names[i] for i in present)

    def relabel(items: list[Sample]) -> list[Sample]:
        return [Sample(s.path, remap[s.label], s.size, s.mtime_ns) for s in items]

    if any(old != new for old, new in remap.items()):
        parts = {k: relabel(v) for k, v in parts.items()}
    held_back = layout == "class_folders" or (split_dirs is not None
                                               and "validation" not in split_dirs)
    if held_back:
        parts["train"], parts["validation"] = stratified_split(parts["train"], class_names, split)
    all_samples = parts["train"] + parts["validation"] + parts["test"]
    conflicts = find_conflicts(all_samples, class_names, scanner.digests)
    held_out = split_warnings(parts, class_names, scanner.digests) if split_dirs else []
    scanner.digests.clear()
    counts = dict.fromkeys(class_names, 0)
    for s in all_samples:
        counts[class_names[s.label]] += 1
    warns = class_warnings(counts, empty)
    for group in conflicts:
        rel = ", ".join(printable(p.relative_to(root)) for p in group)
        warns.append(f"Label conflict: the same image is in several classes: {rel}")
    warns += held_out
    if not parts["validation"]:
        warns.append("No validation images: accuracy cannot be measured on unseen images.")
    report(StageProgress("scan", scanner.done, scanner.done, "Scan finished"))
    return Dataset(
        root=root,
        layout=layout,
        class_names=class_names,
        train=tuple(parts["train"]),
        validation=tuple(parts["validation"]),
        test=tuple(parts["test"]),
        problems=tuple(scanner.problems),
        warnings=tuple(warns),
        conflicts=tuple(conflicts),
        validation_held_back=held_back and layout == "split_folders",
    )
