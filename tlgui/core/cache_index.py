"""The pixel cache's bookkeeping on disk: its entries found by a walk, the datasets
that used them (manifests) and a running estimate of its size (the ledger).

The cache folder is on the user's disk and anything can be put there, so a walk only
takes what tlgui itself makes, by name and kind: ``<size>/<2 hex>/<40 hex>.bin`` regular
files (and the temp files of writes killed midway). Links are never followed nor
counted as entries; anything else is a stray, counted and left alone.

"Use" is recorded in each entry's modification time: a read or a lookup sets it to now
when it is older than ``TOUCH_AFTER_S`` (relatime makes access times unreliable). The
manifests (``datasets/``) say which folder of images each entry came from, for the
space per dataset and for removing the entries of a dataset that is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlgui.core.atomic import TEMP_PREFIX, atomic_write_json
from tlgui.core.entries import EntryProblem, open_regular
from tlgui.core.errors import Cancelled
from tlgui.core.events import Report, StageProgress, ignore

log = logging.getLogger(__name__)

MANIFESTS = "datasets"
LEDGER = "usage.json"
# An entry read within this time is not touched again: one metadata write per entry
# per ten minutes at most, however many epochs read it.
TOUCH_AFTER_S = 600.0
# A temp file this old is left by a write that was killed, not one in progress.
STALE_TEMP_S = 3600.0
_ENTRY = re.compile(r"[0-9a-f]{40}\.bin")
_SUB = re.compile(r"[0-9a-f]{2}")
_MANIFEST = re.compile(r"[0-9a-f]{16}-[0-9]{1,5}\.json")
_MAX_LEDGER_BYTES = 4096
_MAX_MANIFEST_BYTES = 64 * 2**20  # 1.4 million keys: far more than one folder holds
_CHECK_EVERY = 1000


@dataclass(frozen=True)
class Entry:
    """One file of the cache found by a walk.

    Attributes:
        path: the file.
        key: the entry's key (its name without ``.bin``), or "" for a temp file.
        size: the image side of the folder it is in.
        nbytes: its length on disk.
        mtime_ns: its last use (see ``touch``).
    """

    path: Path
    key: str
    size: int
    nbytes: int
    mtime_ns: int


@dataclass
class Walk:
    """What a walk found besides entries: ``strays`` are things tlgui did not make."""

    strays: int = 0


def is_size_name(name: str) -> bool:
    """Sizes are ASCII numbers of a few digits ("²" is a digit to isdigit)."""
    return name.isascii() and name.isdigit() and len(name) <= 5


def walk(root: Path, found: Walk | None = None, report: Report = ignore,
         cancel: threading.Event | None = None) -> Iterator[Entry]:
    """Yields every entry (and leftover temp file) in the cache at ``root``.

    Never follows a link; a folder that cannot be listed is skipped with a warning.

    Raises:
        Cancelled: ``cancel`` was set (checked every thousand files).
    """
    found = found if found is not None else Walk()
    seen = 0
    for top in _scan(root):
        if not (is_size_name(top.name) and _is_dir(top)):
            if top.name not in (MANIFESTS, LEDGER):
                found.strays += 1
            continue
        size = int(top.name)
        for sub in _scan(Path(top.path)):
            if not (_SUB.fullmatch(sub.name) and _is_dir(sub)):
                found.strays += 1
                continue
            for f in _scan(Path(sub.path)):
                seen += 1
                if seen % _CHECK_EVERY == 0:
                    if cancel is not None and cancel.is_set():
                        raise Cancelled("Reading the cache cancelled.")
                    report(StageProgress("cache", seen, 0, "Reading the cache"))
                entry = _entry(f, size)
                if entry is None:
                    found.strays += 1
                else:
                    yield entry


def _scan(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("cannot list the cache folder %s: %s", folder, exc)
        return []


def _is_dir(d: os.DirEntry[str]) -> bool:
    try:
        return d.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _entry(f: os.DirEntry[str], size: int) -> Entry | None:
    name = f.name
    ours = _ENTRY.fullmatch(name) is not None
    if not ours and not name.startswith(TEMP_PREFIX):
        return None
    try:
        st = f.stat(follow_symlinks=False)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None  # a link, a pipe or a folder under an entry's name: not ours
    return Entry(Path(f.path), name[:-4] if ours else "", size, st.st_size, st.st_mtime_ns)


def touch_fd(fd: int, path: Path) -> None:
    """Records a use of the open entry ``fd`` (at ``path``): its modification time is set
    to now when older than ``TOUCH_AFTER_S``. A failure (a read-only cache) is ignored."""
    try:
        if time.time() - os.fstat(fd).st_mtime < TOUCH_AFTER_S:
            return
        if os.utime in os.supports_fd:
            os.utime(fd)
        else:
            # Windows: the open file cannot be replaced by a link meanwhile.
            os.utime(path)
    except OSError as exc:
        log.debug("cannot record the use of %s: %s", path, exc)


def touch_path(path: Path, mtime: float) -> None:
    """Records a use of the entry at ``path`` (last modified at ``mtime``) without opening
    it; only where the time can be set on a link itself, so that nothing outside the
    cache is ever touched (elsewhere the next read records it)."""
    if time.time() - mtime < TOUCH_AFTER_S or os.utime not in os.supports_follow_symlinks:
        return
    try:
        os.utime(path, follow_symlinks=False)
    except OSError as exc:
        log.debug("cannot record the use of %s: %s", path, exc)


def remove(entry: Entry) -> bool:
    """Removes one file a walk found (never a folder, never through a link)."""
    try:
        os.unlink(entry.path)
        return True
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("cannot remove the cache entry %s: %s", entry.path, exc)
        return False


def remove_empty_folders(root: Path) -> None:
    """Removes the size and prefix folders a clear or an eviction left empty."""
    for top in _scan(root):
        if is_size_name(top.name) and _is_dir(top):
            for sub in _scan(Path(top.path)):
                if _SUB.fullmatch(sub.name) and _is_dir(sub):
                    with contextlib.suppress(OSError):
                        os.rmdir(sub.path)
            with contextlib.suppress(OSError):
                os.rmdir(top.path)


# -- the ledger: a running estimate of the size, so that a job does not walk ---------------
@dataclass(frozen=True)
class Ledger:
    """The cache's size as last known: exact after a walk, then added to by each job."""

    nbytes: int
    walked_at: float


def read_ledger(root: Path) -> Ledger | None:
    """The ledger, or None when absent or unreadable (the next job then walks)."""
    data = read_json_file(root / LEDGER, _MAX_LEDGER_BYTES)
    if not isinstance(data, dict):
        return None
    nbytes, walked = data.get("bytes"), data.get("walked_at")
    if not isinstance(nbytes, int) or nbytes < 0 or not isinstance(walked, int | float):
        return None
    return Ledger(nbytes, float(walked))


def write_ledger(root: Path, ledger: Ledger) -> None:
    """Stores the ledger atomically (``WriteError`` when it cannot)."""
    atomic_write_json(root / LEDGER, {"bytes": ledger.nbytes, "walked_at": ledger.walked_at})


# -- manifests: which folder of images each entry came from --------------------------------
@dataclass(frozen=True)
class Manifest:
    """The entries that images under ``folder`` were cached as, at ``size``."""

    path: Path
    folder: str
    size: int
    keys: frozenset[str]


def manifest_path(root: Path, folder: str, size: int) -> Path:
    """The manifest file of a folder of images at a size."""
    digest = hashlib.sha1(folder.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return root / MANIFESTS / f"{digest}-{size}.json"


def _manifests_folder_ok(root: Path) -> bool:
    """Whether the manifests' folder is absent or a real folder: one that is a link (or a
    file) is not tlgui's, and nothing is read, written or removed through it."""
    try:
        return stat.S_ISDIR(os.lstat(root / MANIFESTS).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False


def read_manifests(root: Path) -> list[Manifest]:
    """Every readable manifest; damaged ones are skipped (their entries count as of no
    known dataset)."""
    if not _manifests_folder_ok(root):
        log.warning("ignoring %s: not a folder tlgui made", root / MANIFESTS)
        return []
    out = []
    for f in _scan(root / MANIFESTS):
        if not _MANIFEST.fullmatch(f.name):
            continue
        m = _read_manifest(Path(f.path))
        if m is not None:
            out.append(m)
    return out


def _read_manifest(path: Path) -> Manifest | None:
    data = read_json_file(path, _MAX_MANIFEST_BYTES)
    if not isinstance(data, dict):
        return None
    folder, size, keys = data.get("folder"), data.get("size"), data.get("keys")
    if not (isinstance(folder, str) and isinstance(size, int) and isinstance(keys, list)):
        return None
    good = frozenset(k for k in keys if isinstance(k, str) and _ENTRY.fullmatch(k + ".bin"))
    return Manifest(path, folder, size, good)


def record(root: Path, folder: str, size: int, keys: Iterable[str]) -> None:
    """Adds ``keys`` to the manifest of ``folder`` at ``size`` (written atomically)."""
    if not _manifests_folder_ok(root):
        return
    path = manifest_path(root, folder, size)
    old = _read_manifest(path)
    merged = set(keys)
    if old is not None and old.folder == folder and old.size == size:
        if merged <= old.keys:
            return
        merged |= old.keys
    write_manifest(path, folder, size, merged)


def write_manifest(path: Path, folder: str, size: int, keys: Iterable[str]) -> None:
    """Stores a manifest atomically (``WriteError`` when it cannot)."""
    atomic_write_json(path, {"folder": folder, "size": size, "keys": sorted(keys)})


def read_json_file(path: Path, limit: int) -> Any:
    """The JSON in a small file of tlgui's (never through a link, at most ``limit``
    bytes), or None when absent, oversized or unreadable."""
    try:
        with open_regular(path, follow_links=False) as fh:
            data = fh.read(limit + 1)
    except (EntryProblem, OSError):
        return None
    if len(data) > limit:
        log.warning("ignoring the oversized cache file %s", path)
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        log.warning("ignoring the unreadable cache file %s", path)
        return None
