"""Feature arrays that stay in memory up to a budget and spill to disk above it.

A run holds its frozen features and cut tensors for every image and view (MobileNetV2 at
160 px: 5 KB pooled and 19 KB per view at the cut, per image), so in memory they grow with
the dataset: 100,000 images would need about 4 GB. Above a RAM budget an array is a file
in the cache folder instead, read and written with ``pread``/``pwrite``: the operating
system keeps it in its page cache while there is free memory, so reading a batch costs a
copy, and the process's own memory stays flat. A memory map would be simpler but every
page touched counts in the process's resident size until it is unmapped.

Files live in ``<cache>/spill/<pid>-<random>/`` and are removed when the run ends; a folder
left by a killed process is removed by the next run once its process is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import stat
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tlgui.core.device_memory import _available_system_memory
from tlgui.core.errors import TlguiError
from tlgui.core.paths import cache_dir
from tlgui.core.processes import pid_alive

log = logging.getLogger(__name__)

# Reading a spilled batch back from the page cache costs a copy (docs/benchmarks.md, "Big
# folders"), so a small budget loses little; a large one would let the process grow with
# the dataset, which is what spilling is for.
MAX_BUDGET = 128 * 2**20
MIN_BUDGET = 16 * 2**20
# The share of the available memory the budget may take on a machine short of it.
BUDGET_SHARE = 1 / 16
BUDGET_ENV = "TLGUI_FEATURE_RAM_MB"
# "Keep everything in memory": more than any machine holds, without overflowing a sum.
_MAX_ENV_BUDGET = 2**62
# Free space the disk keeps after a spill file has been reserved.
DISK_MARGIN = 256 * 2**20
# ``<pid>-<8 hex>``, as ``FeatureStore._folder`` names a run's folder.
_SPILL_FOLDER = re.compile(r"([0-9]{1,10})-[0-9a-f]{8}", re.ASCII)


def ram_budget() -> int:
    """Bytes of feature arrays a run keeps in memory: ``$TLGUI_FEATURE_RAM_MB`` when set,
    else a 16th of the available memory, between 16 and 128 MiB."""
    env = os.environ.get(BUDGET_ENV, "").strip()
    if env:
        try:
            return max(0, min(_MAX_ENV_BUDGET, int(float(env) * 2**20)))
        except (ValueError, OverflowError):  # OverflowError: "inf", "1e999"
            log.warning("%s=%r is not a number of MB; using the default", BUDGET_ENV, env)
    free = _available_system_memory()
    if free is None:
        return MAX_BUDGET
    return int(min(MAX_BUDGET, max(MIN_BUDGET, free * BUDGET_SHARE)))


class DiskArray:
    """A ``[views, rows, ...]`` array in a file, read and written a row at a time.

    ``select_rows`` and ``select_views`` give views of it with an index map, sharing the
    file, as fancy indexing would give copies of a NumPy array.
    """

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: Any,
                 views: np.ndarray | None = None, rows: np.ndarray | None = None,
                 fd: int | None = None) -> None:
        self.path = path
        self.full_shape = shape
        self.dtype: np.dtype[Any] = np.dtype(dtype)
        self.row_shape = shape[2:]
        self.row_bytes: int = int(np.prod(self.row_shape, dtype=np.int64)) \
            * int(self.dtype.itemsize)
        self._views = np.arange(shape[0]) if views is None else views
        self._rows = np.arange(shape[1]) if rows is None else rows
        self.fd = fd if fd is not None else _create(path, int(np.prod(shape, dtype=np.int64))
                                                   * self.dtype.itemsize)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self._views), len(self._rows), *self.row_shape)

    @property
    def nbytes(self) -> int:
        return len(self._views) * len(self._rows) * self.row_bytes

    def __len__(self) -> int:
        return len(self._views)

    def _offset(self, view: int, row: int) -> int:
        physical = int(self._views[view]) * self.full_shape[1] + int(self._rows[row])
        return physical * self.row_bytes

    def select_rows(self, rows: np.ndarray) -> DiskArray:
        return DiskArray(self.path, self.full_shape, self.dtype, self._views,
                         self._rows[np.asarray(rows)], self.fd)

    def select_views(self, views: Sequence[int] | np.ndarray) -> DiskArray:
        return DiskArray(self.path, self.full_shape, self.dtype,
                         self._views[np.asarray(views)], self._rows, self.fd)

    def write(self, view: int, rows: np.ndarray, values: np.ndarray) -> None:
        """Stores ``values[k]`` as row ``rows[k]`` of ``view``."""
        data = np.ascontiguousarray(values, dtype=self.dtype)
        rows = np.asarray(rows)
        if len(rows) == 0:
            return
        try:
            if np.all(np.diff(self._rows[rows]) == 1):  # a chunk's rows: one write
                _pwrite_all(self.fd, data.tobytes(), self._offset(view, int(rows[0])))
                return
            for k, r in enumerate(rows):
                _pwrite_all(self.fd, data[k].tobytes(), self._offset(view, int(r)))
        except OSError as exc:
            raise TlguiError(f"Cannot write features that do not fit in memory to "
                             f"{self.path.parent}: {exc.strerror or exc}. Free some disk "
                             f"space and train again.") from exc

    def gather(self, views: np.ndarray | int, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows[k]`` of views ``views[k]`` (or of one view), as a NumPy array."""
        rows = np.asarray(rows)
        each = np.broadcast_to(np.asarray(views), rows.shape)
        out = np.empty((len(rows), *self.row_shape), dtype=self.dtype)
        flat = out.reshape(len(rows), -1).view(np.uint8)
        offsets = [self._offset(int(v), int(r)) for v, r in zip(each, rows, strict=True)]
        for k in np.argsort(offsets, kind="stable"):  # in file order: the disk reads ahead
            flat[k] = np.frombuffer(_pread_all(self.fd, self.row_bytes, offsets[k]), np.uint8)
        return out

    def view(self, v: int) -> np.ndarray:
        """One whole view, in memory (for small arrays and tests)."""
        return self.gather(v, np.arange(len(self._rows)))


FeatureArray = np.ndarray | DiskArray


def put(arr: FeatureArray, view: int, rows: np.ndarray, values: np.ndarray) -> None:
    """``arr[view, rows] = values`` for either kind of array."""
    if isinstance(arr, DiskArray):
        arr.write(view, rows, values)
    else:
        arr[view, rows] = values


def gather(arr: FeatureArray, views: np.ndarray | int, rows: np.ndarray) -> np.ndarray:
    """``arr[views, rows]`` for either kind of array."""
    if isinstance(arr, DiskArray):
        return arr.gather(views, rows)
    out: np.ndarray = arr[views, rows]
    return out


def select_rows(arr: FeatureArray, rows: np.ndarray) -> FeatureArray:
    """``arr[:, rows]``: a copy in memory, an index map on disk."""
    return arr.select_rows(rows) if isinstance(arr, DiskArray) else arr[:, rows]


def select_views(arr: FeatureArray, views: Sequence[int]) -> FeatureArray:
    """``arr[views]`` for either kind of array."""
    if isinstance(arr, DiskArray):
        return arr.select_views(views)
    wanted = list(views)
    first = wanted[0] if wanted else 0
    if wanted and wanted == list(range(first, first + len(wanted))):
        return arr[first:first + len(wanted)]  # a view: no copy of the features
    return arr[wanted]


class FeatureStore:
    """Hands out a run's feature arrays: in memory while they fit the budget, else on disk.

    Args:
        budget: bytes of arrays kept in memory (default ``ram_budget()``).
        folder: where spill folders go (default ``<cache>/spill``).
    """

    def __init__(self, budget: int | None = None, folder: Path | None = None) -> None:
        self.budget = ram_budget() if budget is None else budget
        self.parent = Path(folder) if folder else cache_dir() / "spill"
        self.in_memory = 0
        self.on_disk = 0
        self._dir: Path | None = None
        self._arrays: list[DiskArray] = []

    def zeros(self, shape: tuple[int, ...], dtype: Any, name: str) -> FeatureArray:
        """A zero-filled array of ``shape`` (``[views, rows, ...]``)."""
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if self.in_memory + nbytes <= self.budget:
            self.in_memory += nbytes
            return np.zeros(shape, dtype=dtype)
        folder = self._folder()
        _check_space(folder, nbytes)
        arr = DiskArray(folder / f"{name}-{len(self._arrays)}.bin", shape, dtype)
        self._arrays.append(arr)
        self.on_disk += nbytes
        log.info("feature array %s (%.0f MB) spilled to %s", name, nbytes / 2**20, folder)
        return arr

    def _folder(self) -> Path:
        if self._dir is None:
            remove_stale(self.parent)
            self._dir = self.parent / f"{os.getpid()}-{secrets.token_hex(4)}"
            try:
                self._dir.mkdir(parents=True)
            except OSError as exc:
                raise TlguiError(f"Cannot create the folder {self._dir} for features that do "
                                 f"not fit in memory: {exc.strerror or exc}.") from exc
        return self._dir

    def check_room(self, expected: int) -> None:
        """Before the long work: when ``expected`` bytes of features will not fit the
        budget, the spill folder must be creatable and its disk must hold the rest.

        Raises:
            TlguiError: naming the folder and the reason (the run has not started).
        """
        if expected <= self.budget:
            return
        try:
            self.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TlguiError(f"Cannot create the folder {self.parent} for features that do "
                             f"not fit in memory: {exc.strerror or exc}. Set "
                             f"TLGUI_CACHE_DIR to a folder you can write to.") from exc
        _check_space(self.parent, expected - self.budget)

    def close(self) -> None:
        """Removes the spilled files; the arrays cannot be used after this."""
        for arr in self._arrays:
            with contextlib.suppress(OSError):
                os.close(arr.fd)
        self._arrays.clear()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def remove_stale(parent: Path) -> int:
    """Removes spill folders whose process has ended; returns how many.

    Only folders named as ``FeatureStore`` names them go, and never through a ``parent``
    that is a link: ``<cache>/spill`` may be a link to a folder of the user's, where a
    folder like ``2019-holidays`` is not tlgui's.
    """
    removed = 0
    try:
        if not stat.S_ISDIR(os.lstat(parent).st_mode):
            log.warning("not cleaning %s: not a folder tlgui made", parent)
            return 0
        entries = list(os.scandir(parent))
    except OSError:
        return 0
    for entry in entries:
        m = _SPILL_FOLDER.fullmatch(entry.name)
        try:
            if m is None or not entry.is_dir(follow_symlinks=False):
                continue
        except OSError:
            continue
        if pid_alive(int(m.group(1))):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed += 1
    return removed


def _check_space(folder: Path, nbytes: int) -> None:
    free = shutil.disk_usage(folder).free
    if free - nbytes < DISK_MARGIN:
        raise TlguiError(
            f"The features of this dataset do not fit in memory and the disk holding "
            f"{folder} has {free / 2**30:.1f} GB free, while {nbytes / 2**30:.1f} GB are "
            f"needed. Free some disk space, or set TLGUI_CACHE_DIR to a folder on a disk "
            f"with more room.")


def _create(path: Path, nbytes: int) -> int:
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) \
        | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    try:
        os.ftruncate(fd, nbytes)  # sparse: blocks are taken as rows are written
    except OSError:
        os.close(fd)
        raise
    return fd


# Windows has no pread/pwrite: a seek and a read under one lock do the same.
_SEEK_LOCK = threading.Lock()


def _pwrite(fd: int, data: memoryview, offset: int) -> int:
    if hasattr(os, "pwrite"):
        return os.pwrite(fd, data, offset)
    with _SEEK_LOCK:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.write(fd, data)


def _pread(fd: int, size: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    with _SEEK_LOCK:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, size)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = _pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _pread_all(fd: int, size: int, offset: int) -> bytes:
    data = _pread(fd, size, offset)
    while len(data) < size:  # short reads are allowed by POSIX; a sparse hole reads zeros
        more = _pread(fd, size - len(data), offset + len(data))
        if not more:
            raise OSError(f"spill file ended at {offset + len(data)}")
        data += more
    return data
