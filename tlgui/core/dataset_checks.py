"""Checks over a scanned dataset's samples: the validation split, label conflicts, warnings."""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from tlgui.core.config import SplitConfig
from tlgui.core.entries import EntryProblem, open_regular, printable

if TYPE_CHECKING:
    from tlgui.core.dataset import Sample

MIN_CLASS_IMAGES = 10
MAX_IMBALANCE = 5.0
DIGEST_SIZE = 16


def stratified_split(
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


def find_conflicts(samples: list[Sample], class_names: tuple[str, ...],
                   digests: Mapping[Path, bytes] | None = None) -> list[tuple[Path, ...]]:
    """Finds byte-identical files under different classes; hashes only same-size files.

    Args:
        samples: the usable files.
        class_names: the classes, in label order.
        digests: ``content_digest`` of files already read whole (by the scan), so that
            they are not opened again; the others are read here when their size is
            shared with a file of another class.
    """
    known = digests or {}
    by_size: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        by_size[s.size].append(s)
    conflicts = []
    for group in by_size.values():
        if len({s.label for s in group}) < 2:
            continue
        by_hash: dict[bytes, list[Sample]] = defaultdict(list)
        for s in group:
            digest = known.get(s.path)
            if digest is None:
                try:
                    digest = _digest(s.path)
                except (OSError, EntryProblem):
                    continue
            by_hash[digest].append(s)
        for same in by_hash.values():
            if len({s.label for s in same}) > 1:
                conflicts.append(tuple(s.path for s in same))
    return conflicts


def content_digest(data: bytes) -> bytes:
    """The digest ``find_conflicts`` compares, of a file's whole content."""
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE).digest()


def _digest(path: Path) -> bytes:
    h = hashlib.blake2b(digest_size=DIGEST_SIZE)
    with open_regular(path) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.digest()


def class_warnings(ds_counts: dict[str, int], empty: list[str]) -> list[str]:
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


def split_warnings(parts: Mapping[str, list[Sample]], class_names: tuple[str, ...],
                   digests: Mapping[Path, bytes] | None = None) -> list[str]:
    """What makes the figures of a train/ + validation/ or test/ layout mean less than
    they say: a class with no images in train/ (an output the model never learns: its
    other images can only be mistakes), and images of validation/ or test/ that are
    byte for byte in train/ (the model was trained on them: the accuracy measured on them
    flatters it). Hashes only files whose size a train/ file shares.

    Args:
        parts: the samples of ``train``, ``validation`` and ``test``.
        class_names: the classes, in label order.
        digests: ``content_digest`` of files already read whole (by the scan).
    """
    train = parts.get("train", [])
    learnt = {s.label for s in train}
    out = [f"Class '{name}' has no images in train/: the model cannot learn it, and its "
           "images in the other folders count as mistakes."
           for label, name in enumerate(class_names) if label not in learnt]
    known = digests or {}

    def digest(s: Sample) -> bytes | None:
        try:
            return known.get(s.path) or _digest(s.path)
        except (OSError, EntryProblem):
            return None

    train_sizes = {s.size for s in train}
    for part in ("validation", "test"):
        others = [s for s in parts.get(part, []) if s.size in train_sizes]
        if not others:
            continue
        sizes = {s.size for s in others}
        seen = {d for s in train if s.size in sizes and (d := digest(s)) is not None}
        shared = [s for s in others if digest(s) in seen]
        if shared:
            example = Path(shared[0].path.parent.name, shared[0].path.name)
            out.append(f"{len(shared)} image(s) used to measure accuracy ({part}) are also in "
                       f"train/, e.g. {printable(example)}: the model learnt them, so its "
                       f"{part} accuracy flatters it.")
    return out
