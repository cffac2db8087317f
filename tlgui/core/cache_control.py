"""The decoded-image cache as the user controls it: its size limit, what it holds,
clearing it, and removing what no dataset needs any more.

The limit is kept in ``<data dir>/cache.json``, shared by the window and the command
line; without one it is ``default_limit`` (see docs/adr/009-cache-size-and-eviction.md).
When a job finds the cache over its limit, the entries used longest ago go first; the
entries of a job still running are never removed by that job (they would only be
decoded again).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from tlgui.core import cache_index as idx
from tlgui.core.atomic import atomic_write_json
from tlgui.core.errors import Cancelled, ConfigError, TlguiError
from tlgui.core.events import Report, StageProgress, ignore
from tlgui.core.paths import cache_dir, data_dir

log = logging.getLogger(__name__)

LIMIT_FILE = "cache.json"
DEFAULT_SHARE = 0.10  # of the disk holding the cache
DEFAULT_MIN = 1_000_000_000
DEFAULT_MAX = 50_000_000_000
MAX_LIMIT = 10**15
# An eviction goes down to this share of the limit, so that the next jobs do not walk.
EVICT_TO = 0.9
# The ledger is only an estimate (two processes may add to it at once): walk at least daily.
LEDGER_MAX_AGE_S = 86400.0
_CHECK_EVERY = 1000
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20,
          "gib": 2**30, "tib": 2**40}


def pixels_dir() -> Path:
    """The pixel cache's folder (what ``PixelStore()`` uses by default)."""
    return cache_dir() / "pixels"


# -- the limit ------------------------------------------------------------------------------
def default_limit(root: Path | None = None) -> int:
    """10% of the disk holding the cache, between 1 GB and 50 GB (1 GB when the disk
    cannot be measured)."""
    where = Path(root or pixels_dir())
    while not where.exists() and where.parent != where:
        where = where.parent
    try:
        total = shutil.disk_usage(where).total
    except OSError:
        return DEFAULT_MIN
    return int(min(DEFAULT_MAX, max(DEFAULT_MIN, total * DEFAULT_SHARE)))


def saved_limit() -> int | None:
    """The limit the user set (None: the default)."""
    data = idx.read_json_file(data_dir() / LIMIT_FILE, 4096)
    value = data.get("limit_bytes") if isinstance(data, dict) else None
    return value if isinstance(value, int) and 0 <= value <= MAX_LIMIT else None


def save_limit(limit: int | None) -> None:
    """Stores the limit for the window and the command line (None: back to the default).

    Raises:
        WriteError: the settings file cannot be written.
    """
    if limit is not None and not 0 <= limit <= MAX_LIMIT:
        raise ConfigError(f"A cache limit must be between 0 and {format_size(MAX_LIMIT)}.")
    atomic_write_json(data_dir() / LIMIT_FILE, {"limit_bytes": limit})


def effective_limit(root: Path | None = None) -> int:
    """The limit in force: the saved one, else the default for the cache's disk."""
    saved = saved_limit()
    return saved if saved is not None else default_limit(root)


def parse_size(text: str) -> int:
    """Bytes from "20GB", "500 MB", "1.5 GiB" or "2000000" (decimal units, as disks are
    sold; a number without a unit must be a million bytes or more, or 0).

    Raises:
        ConfigError: not a size.
    """
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS:
        raise ConfigError(f"'{text}' is not a size: write it like 20GB, 500MB or 1.5TB.")
    number = float(m.group(1))
    # A few hundred digits make float() infinite, which int() refuses.
    if not math.isfinite(number) or number * _UNITS[unit] > MAX_LIMIT:
        raise ConfigError(f"'{text}' is more than any disk holds.")
    if not unit and 0 < number < 10**6:  # "limit 20" means 20 GB to a person, not 20 bytes
        raise ConfigError(f"'{text.strip()}' has no unit: write it like {m.group(1)}GB or "
                          f"{m.group(1)}MB.")
    return int(number * _UNITS[unit])


def format_size(n: int) -> str:
    """Bytes in words for a person: 7.7 GB, 512 MB, 0 bytes."""
    for unit, step in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= step:
            return f"{n / step:.1f} {unit}" if n < 100 * step else f"{n / step:.0f} {unit}"
    return f"{n} bytes"


# -- what the cache holds ---------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetUse:
    """Space the images of one folder take in the cache, at one size."""

    folder: str
    size: int
    entries: int
    nbytes: int
    exists: bool


@dataclass
class CacheSummary:
    """What ``inspect`` found."""

    root: Path
    entries: int
    nbytes: int
    limit: int
    limit_is_default: bool
    datasets: list[DatasetUse] = field(default_factory=list)
    unknown_entries: int = 0
    unknown_bytes: int = 0
    strays: int = 0


@dataclass
class Removed:
    """What a clear, prune or eviction removed (``strays``: things left, not tlgui's)."""

    entries: int = 0
    nbytes: int = 0
    datasets: list[str] = field(default_factory=list)
    strays: int = 0


def _entries(root: Path, report: Report, cancel: threading.Event | None,
             found: idx.Walk) -> list[idx.Entry]:
    entries = list(idx.walk(root, found, report, cancel))
    if entries:
        report(StageProgress("cache", len(entries), len(entries), "Reading the cache"))
    return entries


def inspect(root: Path | None = None, report: Report = ignore,
            cancel: threading.Event | None = None) -> CacheSummary:
    """Walks the cache: its size, entries, limit and space per dataset folder.

    Raises:
        Cancelled: ``cancel`` was set.
    """
    root = Path(root or pixels_dir())
    found = idx.Walk()
    by_key = {e.key: e for e in _entries(root, report, cancel, found)}
    saved = saved_limit()
    summary = CacheSummary(root, len(by_key), sum(e.nbytes for e in by_key.values()),
                           saved if saved is not None else default_limit(root),
                           saved is None, strays=found.strays)
    claimed: set[str] = set()
    # A folder and one inside it (a dataset and its train/ folder) may both have a
    # manifest: an entry counts once, for the outer folder.
    for m in sorted(idx.read_manifests(root), key=lambda m: (len(m.folder), m.size)):
        mine = [by_key[k] for k in m.keys if k in by_key and k not in claimed]
        claimed.update(e.key for e in mine)
        if mine:
            summary.datasets.append(DatasetUse(m.folder, m.size, len(mine),
                                               sum(e.nbytes for e in mine),
                                               os.path.isdir(m.folder)))
    rest = [e for k, e in by_key.items() if k not in claimed]
    summary.unknown_entries, summary.unknown_bytes = len(rest), sum(e.nbytes for e in rest)
    summary.datasets.sort(key=lambda d: -d.nbytes)
    return summary


# -- removing ----------------------------------------------------------------------------------
def clear(root: Path | None = None, report: Report = ignore,
          cancel: threading.Event | None = None) -> Removed:
    """Removes every entry, manifest and leftover temp file tlgui made in the cache;
    anything else found there is left and counted in ``strays``.

    A job running meanwhile only decodes again what it misses.

    Raises:
        Cancelled: ``cancel`` was set (what was removed until then stays removed).
    """
    root = Path(root or pixels_dir())
    found = idx.Walk()
    gone = Removed()
    for i, e in enumerate(_entries(root, report, cancel, found)):
        _check(cancel, i)
        if idx.remove(e):
            gone.entries += bool(e.key)
            gone.nbytes += e.nbytes
    for m in idx.read_manifests(root):
        _unlink(m.path)
        gone.datasets.append(m.folder)
    _unlink(root / idx.LEDGER)
    idx.remove_empty_folders(root)
    with contextlib.suppress(OSError):  # one holding what tlgui did not make stays
        (root / idx.MANIFESTS).rmdir()
    gone.strays = found.strays
    return gone


def evict(root: Path, limit: int, protected: Collection[str] = frozenset(),
          report: Report = ignore, cancel: threading.Event | None = None) -> Removed:
    """Brings the cache under ``limit`` when it is over: down to 90% of it, removing the
    entries used longest ago first and never one in ``protected`` (the keys a running
    job uses); leftover temp files of killed writes go too. Updates the ledger.

    Raises:
        Cancelled: ``cancel`` was set.
    """
    found = idx.Walk()
    entries = _entries(root, report, cancel, found)
    gone = Removed(strays=found.strays)
    now_ns = time.time_ns()
    total = 0
    for e in entries:
        if not e.key and now_ns - e.mtime_ns > idx.STALE_TEMP_S * 1e9 and idx.remove(e):
            gone.nbytes += e.nbytes
        else:
            total += e.nbytes
    if total > limit:
        target = int(limit * EVICT_TO)
        oldest = sorted((e for e in entries if e.key and e.key not in protected),
                        key=lambda e: e.mtime_ns)
        for i, e in enumerate(oldest):
            if total <= target:
                break
            if cancel is not None and cancel.is_set() and i % _CHECK_EVERY == 0:
                _write_ledger(root, idx.Ledger(total, time.time()))
                raise Cancelled("Trimming the cache cancelled.")
            if idx.remove(e):
                total -= e.nbytes
                gone.entries += 1
                gone.nbytes += e.nbytes
        if total > limit:
            log.info("the cache stays over its limit (%s > %s) while a job uses it",
                     format_size(total), format_size(limit))
    _write_ledger(root, idx.Ledger(total, time.time()))
    return gone


def prune(root: Path | None = None, limit: int | None = None, report: Report = ignore,
          cancel: threading.Event | None = None) -> Removed:
    """Removes the entries of datasets whose folder no longer exists, forgets entries
    that are gone from the manifests, then brings the cache under its limit.

    Raises:
        Cancelled: ``cancel`` was set.
    """
    root = Path(root or pixels_dir())
    manifests = idx.read_manifests(root)
    live = [m for m in manifests if os.path.isdir(m.folder)]
    dead = [m for m in manifests if not os.path.isdir(m.folder)]
    needed = set().union(*(m.keys for m in live))
    orphan = set().union(*(m.keys for m in dead)) - needed
    found = idx.Walk()
    gone = Removed()
    existing = set()
    for i, e in enumerate(_entries(root, report, cancel, found)):
        _check(cancel, i)
        if e.key in orphan:
            if idx.remove(e):
                gone.entries += 1
                gone.nbytes += e.nbytes
        elif e.key:
            existing.add(e.key)
    for m in dead:
        _unlink(m.path)
        gone.datasets.append(m.folder)
    for m in live:
        if not m.keys <= existing:
            _rewrite(m, m.keys & existing)
    trimmed = evict(root, effective_limit(root) if limit is None else limit,
                    report=report, cancel=cancel)
    gone.entries += trimmed.entries
    gone.nbytes += trimmed.nbytes
    gone.strays = found.strays
    return gone


def maybe_evict(root: Path, limit: int, written: int, protected: Collection[str],
                cancel: threading.Event | None = None) -> Removed | None:
    """After a job wrote ``written`` bytes of entries: adds them to the ledger, and walks
    and evicts only when the cache may be over ``limit`` (or was not walked for a day),
    so that a job far under the limit never walks the cache."""
    ledger = idx.read_ledger(root)
    if ledger is not None and ledger.nbytes + written <= limit \
            and time.time() - ledger.walked_at < LEDGER_MAX_AGE_S:
        if written:
            _write_ledger(root, idx.Ledger(ledger.nbytes + written, ledger.walked_at))
        return None
    return evict(root, limit, protected, cancel=cancel)


def add_to_ledger(root: Path, written: int) -> None:
    """Adds bytes a job wrote to the ledger, without walking (a missing ledger stays
    missing: the next job walks)."""
    ledger = idx.read_ledger(root)
    if ledger is not None and written:
        _write_ledger(root, idx.Ledger(ledger.nbytes + written, ledger.walked_at))


def _check(cancel: threading.Event | None, done: int) -> None:
    """Raises ``Cancelled`` when asked, looking every thousand files (removing one takes
    up to a quarter of a millisecond)."""
    if cancel is not None and done % _CHECK_EVERY == 0 and cancel.is_set():
        raise Cancelled("Cleaning the cache cancelled.")


def _write_ledger(root: Path, ledger: idx.Ledger) -> None:
    if not root.is_dir():
        return  # nothing cached: nothing to keep track of
    try:
        idx.write_ledger(root, ledger)
    except TlguiError as exc:
        log.warning("cannot update the cache's size record: %s", exc)


def _rewrite(m: idx.Manifest, keys: frozenset[str]) -> None:
    try:
        if keys:
            idx.write_manifest(m.path, m.folder, m.size, keys)
        else:
            _unlink(m.path)
    except TlguiError as exc:
        log.warning("cannot update %s: %s", m.path, exc)


def _unlink(path: Path) -> None:
    try:
        if not path.is_symlink() and path.is_file():
            path.unlink()
    except OSError as exc:
        log.warning("cannot remove %s: %s", path, exc)
