"""Scanning a folder of class folders into a dataset: files, labels, split and problems.

Scanning reads headers only and never writes inside the user's folder.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from tlgui.core.config import SplitConfig
from tlgui.core.errors import Cancelled, DatasetError
from tlgui.core.events import Report, StageProgress, ignore
from tlgui.core.imageio import MIN_SIDE, ImageProblem, probe

Layout = Literal["class_folders", "split_folders"]
SPLIT_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "validation": ("validation", "val", "valid"),
    "test": ("test", "testing"),
}
LITTER_NAMES = frozenset({"thumbs.db", "desktop.ini", "ehthumbs.db", "icon\r"})
MIN_CLASS_IMAGES = 10
MAX_IMBALANCE = 5.0


@dataclass(frozen=True)
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


def _walk_files(folder: Path) -> Iterator[Path]:
    """Yields files below ``folder`` in a stable order, skipping hidden entries.

    Symlinked folders are not followed, so a symlink loop cannot trap the scan.
    """
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not _is_litter(d))
        for name in sorted(filenames):
            if not _is_litter(name):
                yield Path(dirpath) / name
        for d in dirnames:
            # A symlink to a folder is listed in dirnames but never entered.
            p = Path(dirpath) / d
            if p.is_symlink():
                yield p


def _class_dirs(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise DatasetError(f"Cannot read folder {folder}: {exc.strerror}") from exc
    return [p for p in entries if p.is_dir() and not _is_litter(p.name)]


def _find_split_dirs(root: Path) -> dict[str, Path] | None:
    children = {p.name.lower(): p for p in _class_dirs(root)}
    found: dict[str, Path] = {}
    for split, names in SPLIT_NAMES.items():
        for n in names:
            if n in children:
                found[split] = children[n]
                break
    if "train" in found and "validation" in found:
        return found
    return None


class _Scanner:
    def __init__(self, report: Report, cancel: threading.Event, min_side: int) -> None:
        self.report = report
        self.cancel = cancel
        self.min_side = min_side
        self.problems: list[Problem] = []
        self.done = 0
        self.last_report = 0.0

    def scan_class(self, folder: Path, label: int) -> list[Sample]:
        samples = []
        for path in _walk_files(folder):
            if self.cancel.is_set():
                raise Cancelled("Scan cancelled.")
            self.done += 1
            now = time.monotonic()
            if now - self.last_report > 0.1:
                self.last_report = now
                self.report(StageProgress("scan", self.done, 0, f"Scanning {folder.name}"))
            sample = self.check(path, label)
            if sample is not None:
                samples.append(sample)
        return samples

    def check(self, path: Path, label: int) -> Sample | None:
        if path.is_symlink() and not path.exists():
            self.problems.append(Problem(path, "broken symbolic link"))
            return None
        if path.is_dir():
            self.problems.append(Problem(path, "folder inside a class folder, not followed"
                                         if path.is_symlink() else "not a file"))
            return None
        try:
            probe(path, self.min_side)
            st = path.stat()
        except ImageProblem as exc:
            self.problems.append(Problem(path, exc.reason))
            return None
        except OSError as exc:
            self.problems.append(Problem(path, f"cannot read file ({exc.strerror})"))
            return None
        return Sample(path, label, st.st_size, st.st_mtime_ns)


def _stratified_split(
    samples: list[Sample], class_names: tuple[str, ...], split: SplitConfig
) -> tuple[list[Sample], list[Sample]]:
    by_class: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        by_class[s.label].append(s)
    train: list[Sample] = []
    val: list[Sample] = []
    for label in sorted(by_class):
        items = sorted(by_class[label], key=lambda s: s.path.as_posix())
        random.Random(f"{split.seed}:{class_names[label]}").shuffle(items)
        n_val = round(len(items) * split.validation_fraction)
        if split.validation_fraction > 0 and len(items) >= 2:
            n_val = min(max(n_val, 1), len(items) - 1)
        val.extend(items[:n_val])
        train.extend(items[n_val:])
    return train, val


def _find_conflicts(samples: list[Sample], class_names: tuple[str, ...]) -> list[tuple[Path, ...]]:
    """Finds byte-identical files under different classes; hashes only same-size files."""
    by_size: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        by_size[s.size].append(s)
    conflicts = []
    for group in by_size.values():
        if len({s.label for s in group}) < 2:
            continue
        by_hash: dict[str, list[Sample]] = defaultdict(list)
        for s in group:
            try:
                digest = hashlib.blake2b(s.path.read_bytes(), digest_size=16).hexdigest()
            except OSError:
                continue
            by_hash[digest].append(s)
        for same in by_hash.values():
            if len({s.label for s in same}) > 1:
                conflicts.append(tuple(s.path for s in same))
    return conflicts


def _warnings(ds_counts: dict[str, int], empty: list[str]) -> list[str]:
    out = [f"Class '{c}' has no usable images and is left out." for c in empty]
    for name, n in ds_counts.items():
        if n < MIN_CLASS_IMAGES:
            out.append(
                f"Class '{name}' has only {n} image(s); at least {MIN_CLASS_IMAGES} "
                "are needed for a reliable result."
            )
    if ds_counts:
        most, least = max(ds_counts.values()), min(ds_counts.values())
        if least and most / least > MAX_IMBALANCE:
            big = max(ds_counts, key=lambda k: ds_counts[k])
            small = min(ds_counts, key=lambda k: ds_counts[k])
            out.append(
                f"Classes are imbalanced {most / least:.1f}:1 ('{big}' {most} vs "
                f"'{small}' {least}); the loss is weighted to compensate."
            )
    return out


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
    if not root.exists():
        raise DatasetError(f"The folder {root} does not exist.")
    if not root.is_dir():
        raise DatasetError(f"{root} is a file; choose the folder that holds the class folders.")
    scanner = _Scanner(report, cancel, min_side)
    split_dirs = _find_split_dirs(root)
    layout: Layout = "split_folders" if split_dirs else "class_folders"
    parts: dict[str, list[Sample]] = {"train": [], "validation": [], "test": []}
    if split_dirs:
        names = sorted({p.name for d in split_dirs.values() for p in _class_dirs(d)})
        for part, folder in split_dirs.items():
            for cdir in _class_dirs(folder):
                parts[part] += scanner.scan_class(cdir, names.index(cdir.name))
        loose = [p for p in root.iterdir() if p.is_file() and not _is_litter(p.name)]
    else:
        dirs = _class_dirs(root)
        names = [d.name for d in dirs]
        for label, cdir in enumerate(dirs):
            parts["train"] += scanner.scan_class(cdir, label)
        loose = [p for p in root.iterdir() if p.is_file() and not _is_litter(p.name)]
    for p in loose:
        scanner.problems.append(Problem(p, "file outside any class folder"))

    all_samples = parts["train"] + parts["validation"] + parts["test"]
    present = sorted({s.label for s in all_samples})
    empty = [names[i] for i in range(len(names)) if i not in present]
    if len(present) < 2:
        raise DatasetError(
            f"{root} needs at least 2 class folders with usable images; found "
            f"{len(present)} ({', '.join(names) or 'no sub-folders'}). Put each class's "
            "images in a sub-folder named after the class."
        )
    # Relabel so that classes without images vanish and labels stay contiguous.
    remap = {old: new for new, old in enumerate(present)}
    class_names = tuple(names[i] for i in present)

    def relabel(items: list[Sample]) -> list[Sample]:
        return [replace(s, label=remap[s.label]) for s in items]

    parts = {k: relabel(v) for k, v in parts.items()}
    if layout == "class_folders":
        parts["train"], parts["validation"] = _stratified_split(parts["train"], class_names, split)
    all_samples = parts["train"] + parts["validation"] + parts["test"]
    conflicts = _find_conflicts(all_samples, class_names)
    counts = dict.fromkeys(class_names, 0)
    for s in all_samples:
        counts[class_names[s.label]] += 1
    warns = _warnings(counts, empty)
    for group in conflicts:
        rel = ", ".join(str(p.relative_to(root)) for p in group)
        warns.append(f"Label conflict: the same image is in several classes: {rel}")
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
    )
