"""The pixel cache's entries on disk: keys, reads, writes and carrying them over.

Split from ``pixel_cache`` (which decodes and resizes, with Keras's resize) so that code
that only moves files, such as applying label corrections in the window, can keep the
cache's entries with their files without importing Keras. An entry is keyed by the
file's absolute path, size, modification time and the target size; each is written
atomically and carries a CRC32, so a damaged one is detected and never used silently.

Each read or lookup records a use of its entry (``cache_index``), and ``settle`` keeps the
cache under its size limit after a job's pass over its images (``cache_control``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import struct
import threading
import weakref
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tlgui.core import cache_control, cache_index
from tlgui.core.atomic import atomic_write_bytes
from tlgui.core.dataset import Sample
from tlgui.core.entries import EntryProblem, open_regular, printable
from tlgui.core.errors import Cancelled, TlguiError
from tlgui.core.paths import cache_dir

log = logging.getLogger(__name__)

_MAGIC = b"TLGC1\0"
_HEADER = struct.Struct("<6sHHHI")  # magic, height, width, channels, crc32
RESIZE_VERSION = "bilinear-aa-1"
# Entries hold RGB images (imageio.decode_rgb); any other shape is not an entry.
CHANNELS = 3


@dataclass
class CacheStats:
    """Counters a test or benchmark can read: how much work the cache saved."""

    decoded: int = 0
    hits: int = 0
    corrupt: int = 0


# Every store alive in this process: the entries any of them used are "in use" and never
# evicted, whichever job's eviction runs.
_LIVE: weakref.WeakSet[PixelStore] = weakref.WeakSet()


def keys_in_use() -> set[str]:
    """The keys of the entries that the stores alive in this process read or wrote."""
    used: set[str] = set()
    for store in list(_LIVE):
        with store._lock:
            used |= store._used
    return used


class PixelStore:
    """A folder of decoded, resized images: its entries, without decoding.

    Args:
        root: the cache folder; default ``<user cache>/tlgui/pixels``.
        enabled: when False nothing is read or written (every image is decoded).
        limit: the most bytes the cache keeps (None: the user's setting, else the
            default: ``cache_control.effective_limit``).
    """

    def __init__(self, root: Path | None = None, enabled: bool = True,
                 limit: int | None = None) -> None:
        self.root = Path(root) if root else cache_dir() / "pixels"
        self.enabled = enabled
        self.limit = limit
        self.stats = CacheStats()
        self._lock = threading.Lock()
        self._used: set[str] = set()  # this job's entries: kept while it runs
        self._unsettled = 0  # bytes written since the last settle
        self._recorded: set[tuple[str, int, int, str, str]] = set()
        _LIVE.add(self)

    def key(self, sample: Sample, size: int) -> str:
        """The cache key of an image at a size."""
        ident = (f"{os.path.abspath(sample.path)}|{sample.size}|{sample.mtime_ns}|{size}|"
                 f"{RESIZE_VERSION}")
        return hashlib.sha1(ident.encode("utf-8", "surrogatepass")).hexdigest()

    def _entry(self, key: str, size: int) -> Path:
        return self.root / str(size) / key[:2] / f"{key}.bin"

    def contains(self, sample: Sample, size: int) -> bool:
        """Whether a regular-file entry exists (its checksum is verified only when it is
        read; anything else at its place is dropped by the read). Records a use."""
        if not self.enabled:
            return False
        key = self.key(sample, size)
        self._use(key)
        path = self._entry(key, size)
        try:
            st = os.lstat(path)
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode):
            return False
        cache_index.touch_path(path, st.st_mtime)
        return True

    def _use(self, key: str) -> None:
        with self._lock:
            self._used.add(key)

    def read(self, sample: Sample, size: int) -> np.ndarray | None:
        """The cached pixels, or None when absent or corrupt (a corrupt entry is removed)."""
        if not self.enabled:
            return None
        key = self.key(sample, size)
        self._use(key)  # on a miss too: the entry about to be written is this job's
        path = self._entry(key, size)
        try:
            body = read_entry(path, size, touch=True)
        except FileNotFoundError:
            return None
        except (EntryProblem, ValueError) as exc:
            reason = exc.reason if isinstance(exc, EntryProblem) else str(exc)
            log.warning("corrupt cache entry %s removed: %s", printable(path), reason)
            with self._lock:
                self.stats.corrupt += 1
            _drop(path)
            return None
        with self._lock:
            self.stats.hits += 1
        return np.frombuffer(body, dtype=np.uint8).reshape(size, size, CHANNELS)

    def write(self, sample: Sample, size: int, pixels: np.ndarray) -> None:
        """Stores pixels atomically; a failure to write (disk full) only logs."""
        if not self.enabled:
            return
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        h, w, c = pixels.shape
        body = pixels.tobytes()
        key = self.key(sample, size)
        self._use(key)
        path = self._entry(key, size)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, _pack(h, w, c, body))
        except OSError as exc:
            log.warning("cannot write cache entry %s: %s", path, exc)
            return
        with self._lock:
            self._unsettled += _HEADER.size + len(body)

    def settle(self, samples: Sequence[Sample], size: int,
               cancel: threading.Event | None = None) -> None:
        """After a pass over ``samples`` at ``size``: records the folder their entries
        came from (the space per dataset, and pruning a dataset that is gone) and keeps
        the cache under its limit, never removing an entry a live store used.

        Trouble with the disk only logs: the cache is only a cache. With ``cancel`` set
        nothing is walked (the next job does it).
        """
        if not self.enabled or not samples:
            return
        with self._lock:
            written, self._unsettled = self._unsettled, 0
        try:
            self._record(samples, size)
            removed = None
            if cancel is not None and cancel.is_set():
                cache_control.add_to_ledger(self.root, written)
            else:
                limit = self.limit if self.limit is not None \
                    else cache_control.effective_limit(self.root)
                removed = cache_control.maybe_evict(self.root, limit, written,
                                                    keys_in_use(), cancel)
            written = 0
            if removed is not None and removed.entries:
                log.info("cache over its limit: %d entries used longest ago removed (%s)",
                         removed.entries, cache_control.format_size(removed.nbytes))
        except Cancelled:
            pass
        except (OSError, TlguiError, ValueError) as exc:
            log.warning("cannot keep track of the cache %s: %s", printable(self.root), exc)
        finally:
            if written:
                with self._lock:
                    self._unsettled += written

    def _record(self, samples: Sequence[Sample], size: int) -> None:
        try:
            folder = os.path.commonpath([os.path.dirname(os.path.abspath(s.path))
                                         for s in samples])
        except ValueError:  # files on several drives: no one folder to name
            return
        memo = (folder, size, len(samples), str(samples[0].path), str(samples[-1].path))
        if memo in self._recorded:
            return  # each epoch passes over the same images
        cache_index.record(self.root, folder, size, (self.key(s, size) for s in samples))
        self._recorded.add(memo)

    def carry_over(self, old: Sample, new: Sample) -> int:
        """Makes the entries of a file cached under ``old`` serve ``new`` too, at every size.

        A file moved or copied by tlgui keeps its bytes, size and modification time, but
        its path (part of the key) changes; linking its entries (or copying them where
        links are not possible) saves decoding it again. Returns the entries carried.
        """
        if not self.enabled or not self.root.is_dir():
            return 0
        carried = 0
        try:
            folders = list(self.root.iterdir())
        except OSError as exc:
            log.warning("cannot list the cache %s: %s", printable(self.root), exc)
            return 0
        for folder in folders:
            # Sizes are ASCII numbers of a few digits ("²" is a digit to isdigit, and a
            # name of 5,000 digits is more than int() converts).
            if not (folder.name.isascii() and folder.name.isdigit()
                    and len(folder.name) <= 5):
                continue
            size = int(folder.name)
            src = self._entry(self.key(old, size), size)
            dst = self._entry(self.key(new, size), size)
            # Only a regular file of an entry's size is carried: a link, a pipe or an
            # oversized file is left for the next read to drop.
            if _regular_size(src) != _HEADER.size + entry_bytes(size) \
                    or os.path.lexists(dst):
                continue
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(src, dst)
                except OSError:
                    body = read_entry(src, size)
                    atomic_write_bytes(dst, _pack(size, size, CHANNELS, body))
                carried += 1
            except (OSError, EntryProblem, ValueError) as exc:
                reason = exc.reason if isinstance(exc, EntryProblem) else str(exc)
                log.warning("cannot carry cache entry %s over: %s", printable(src), reason)
        return carried


def entry_bytes(size: int) -> int:
    """The pixel bytes of an entry at ``size``: a ``size`` x ``size`` RGB image."""
    return size * size * CHANNELS


def _pack(h: int, w: int, c: int, body: bytes) -> bytes:
    """An entry's bytes: the header (shape and CRC32) and the pixels."""
    return _HEADER.pack(_MAGIC, h, w, c, zlib.crc32(body)) + body


def read_entry(path: Path, size: int, touch: bool = False) -> bytes:
    """The pixel bytes of the entry at ``path`` for images of ``size``, checked.

    The cache folder is on the user's disk and anything can be put there: only a regular
    file (not a link, a pipe, a device or a folder) is opened, and never more than an
    entry's bytes plus one are read, so nothing blocks or fills the memory. With
    ``touch`` the read is recorded as a use of the entry (its modification time).

    Raises:
        FileNotFoundError: there is no entry.
        EntryProblem: something other than a regular file is there.
        ValueError: the file is not an entry for ``size`` (wrong header, length or CRC).
    """
    if not os.path.lexists(path):
        raise FileNotFoundError(path)
    expected = entry_bytes(size)
    with open_regular(path, follow_links=False) as fh:
        data = fh.read(_HEADER.size + expected + 1)
        if touch:
            cache_index.touch_fd(fh.fileno(), path)
    if len(data) < _HEADER.size:
        raise ValueError("truncated header")
    magic, h, w, c, crc = _HEADER.unpack_from(data)
    body = data[_HEADER.size:]
    if magic != _MAGIC or (h, w, c) != (size, size, CHANNELS):
        raise ValueError("not an entry for this size")
    if len(body) != expected:
        raise ValueError(f"{len(body)} pixel bytes where {expected} belong"
                         if len(body) <= expected else "longer than an entry")
    if zlib.crc32(body) != crc:
        raise ValueError("checksum mismatch")
    return body


def _regular_size(path: Path) -> int | None:
    """The size of ``path`` when it is a regular file itself (not a link), else None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _drop(path: Path) -> None:
    """Removes a bad entry: a file or link, or an empty folder (a folder with files in it
    is left: the next write fails to replace it and the image is decoded every time)."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot remove the bad cache entry %s: %s", printable(path), exc)
