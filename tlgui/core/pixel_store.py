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
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tlgui.core.atomic import atomic_write_bytes
from tlgui.core.dataset import Sample
from tlgui.core.paths import cache_dir

log = logging.getLogger(__name__)

_MAGIC = b"TLGC1\0"
_HEADER = struct.Struct("<6sHHHI")  # magic, height, width, channels, crc32
RESIZE_VERSION = "bilinear-aa-1"


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
        """Whether an entry exists (its checksum is verified only when it is read)."""
        return self.enabled and self._entry(self.key(sample, size), size).is_file()

    def read(self, sample: Sample, size: int) -> np.ndarray | None:
        """The cached pixels, or None when absent or corrupt (a corrupt entry is removed)."""
        if not self.enabled:
            return None
        path = self._entry(self.key(sample, size), size)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        try:
            magic, h, w, c, crc = _HEADER.unpack_from(data)
            body = data[_HEADER.size:]
            if magic != _MAGIC or len(body) != h * w * c or zlib.crc32(body) != crc:
                raise ValueError("bad entry")
        except (struct.error, ValueError):
            log.warning("corrupt cache entry %s removed", path)
            with self._lock:
                self.stats.corrupt += 1
            path.unlink(missing_ok=True)
            return None
        with self._lock:
            self.stats.hits += 1
        return np.frombuffer(body, dtype=np.uint8).reshape(h, w, c)

    def write(self, sample: Sample, size: int, pixels: np.ndarray) -> None:
        """Stores pixels atomically; a failure to write (disk full) only logs."""
        if not self.enabled:
            return
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        h, w, c = pixels.shape
        body = pixels.tobytes()
        header = _HEADER.pack(_MAGIC, h, w, c, zlib.crc32(body))
        path = self._entry(self.key(sample, size), size)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, header + body)
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
        for folder in self.root.iterdir():
            if not folder.name.isdigit():
                continue
            size = int(folder.name)
            src = self._entry(self.key(old, size), size)
            dst = self._entry(self.key(new, size), size)
            if not src.is_file() or dst.exists():
                continue
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(src, dst)
                except OSError:
                    atomic_write_bytes(dst, src.read_bytes())
                carried += 1
            except OSError as exc:
                log.warning("cannot carry cache entry %s over: %s", src, exc)
        return carried
