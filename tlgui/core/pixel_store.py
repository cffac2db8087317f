"""The pixel cache's entries on disk: keys, reads, writes and carrying them over.

Split from ``pixel_cache`` (which decodes and resizes, with Keras's resize) so that code
that only moves files, such as applying label corrections in the window, can keep the
cache's entries with their files without importing Keras. An entry is keyed by the
file's absolute path, size, modification time and the target size; each is written
atomically and carries a CRC32, so a damaged one is detected and never used silently.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tlgui.core.atomic import atomic_write_bytes
from tlgui.core.dataset import Sample
from tlgui.core.entries import EntryProblem, open_regular, printable
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


class PixelStore:
    """A folder of decoded, resized images: its entries, without decoding.

    Args:
        root: the cache folder; default ``<user cache>/tlgui/pixels``.
        enabled: when False nothing is read or written (every image is decoded).
    """

    def __init__(self, root: Path | None = None, enabled: bool = True) -> None:
        self.root = Path(root) if root else cache_dir() / "pixels"
        self.enabled = enabled
        self.stats = CacheStats()
        self._lock = threading.Lock()

    def key(self, sample: Sample, size: int) -> str:
        """The cache key of an image at a size."""
        ident = (f"{os.path.abspath(sample.path)}|{sample.size}|{sample.mtime_ns}|{size}|"
                 f"{RESIZE_VERSION}")
        return hashlib.sha1(ident.encode("utf-8", "surrogatepass")).hexdigest()

    def _entry(self, key: str, size: int) -> Path:
        return self.root / str(size) / key[:2] / f"{key}.bin"

    def contains(self, sample: Sample, size: int) -> bool:
        """Whether a regular-file entry exists (its checksum is verified only when it is
        read; anything else at its place is dropped by the read)."""
        return self.enabled and _regular_size(self._entry(self.key(sample, size), size)) \
            is not None

    def read(self, sample: Sample, size: int) -> np.ndarray | None:
        """The cached pixels, or None when absent or corrupt (a corrupt entry is removed)."""
        if not self.enabled:
            return None
        path = self._entry(self.key(sample, size), size)
        try:
            body = read_entry(path, size)
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
        path = self._entry(self.key(sample, size), size)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, _pack(h, w, c, body))
        except OSError as exc:
            log.warning("cannot write cache entry %s: %s", path, exc)

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


def read_entry(path: Path, size: int) -> bytes:
    """The pixel bytes of the entry at ``path`` for images of ``size``, checked.

    The cache folder is on the user's disk and anything can be put there: only a regular
    file (not a link, a pipe, a device or a folder) is opened, and never more than an
    entry's bytes plus one are read, so nothing blocks or fills the memory.

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
