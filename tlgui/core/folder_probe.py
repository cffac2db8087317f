"""A quick look at a dropped folder: is it a dataset (class folders) or just images?

The window asks before classifying thousands of images that were meant to train on.
The look is shallow and bounded: the folder's own entries and, for a few of its
sub-folders, their first entries; never a walk of the whole tree.
"""

from __future__ import annotations

import os
from itertools import islice
from pathlib import Path

from tlgui.core.dataset import SPLIT_NAMES
from tlgui.core.imageio import IMAGE_SUFFIXES

MAX_ROOT_ENTRIES = 2000
MAX_SUBFOLDERS = 64
MAX_SUBFOLDER_ENTRIES = 200
MIN_CLASS_FOLDERS = 2


def _entries(folder: Path, limit: int) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return [e for e in islice(it, limit) if not e.name.startswith(".")]
    except OSError:
        return []


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _holds_an_image(folder: Path) -> bool:
    return any(Path(e.name).suffix.lower() in IMAGE_SUFFIXES and not _is_dir(e)
               for e in _entries(folder, MAX_SUBFOLDER_ENTRIES))


def looks_like_dataset(folder: str | Path) -> bool:
    """True when ``folder`` looks like a folder of class folders.

    That is: it holds ``train/`` and ``validation/`` folders (any of the names the
    scan accepts), or at least two sub-folders with an image file directly inside.
    At most ``MAX_ROOT_ENTRIES`` entries of the folder and ``MAX_SUBFOLDER_ENTRIES``
    entries of each of ``MAX_SUBFOLDERS`` sub-folders are read.

    Args:
        folder: the dropped folder.

    Returns:
        False for a file, a missing or unreadable folder, or a folder of plain images.
    """
    root = Path(folder)
    if not root.is_dir():
        return False
    subfolders = sorted((e for e in _entries(root, MAX_ROOT_ENTRIES) if _is_dir(e)),
                        key=lambda e: e.name)
    names = {e.name.lower() for e in subfolders}
    if all(names & set(SPLIT_NAMES[split]) for split in ("train", "validation")):
        return True
    found = 0
    for entry in subfolders[:MAX_SUBFOLDERS]:
        if _holds_an_image(Path(entry.path)):
            found += 1
            if found >= MIN_CLASS_FOLDERS:
                return True
    return False
