"""Decode once: images decoded, resized to the model's size and kept as uint8 on disk.

The cache lives in the user cache folder, never inside the dataset. An entry is keyed by
the file's absolute path, size, modification time and the target size; each entry is
written atomically and carries a CRC32, so a file half-written by a killed process or
damaged later is detected, decoded again, and never used silently.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from tlgui.core.dataset import Problem, Sample
from tlgui.core.errors import Cancelled
from tlgui.core.events import Report, StageProgress, ignore
from tlgui.core.imageio import ImageProblem, decode_rgb
from tlgui.core.pixel_store import PixelStore
from tlgui.core.resize import resize_to_square

log = logging.getLogger(__name__)


class PixelCache(PixelStore):
    """A folder of decoded, resized images that decodes what it lacks.

    Args:
        root: the cache folder; default ``<user cache>/tlgui/pixels``.
        enabled: when False nothing is read or written (every image is decoded).
    """

    def get(self, sample: Sample, size: int) -> np.ndarray:
        """Pixels of a sample at ``size`` x ``size``, decoding only on a cache miss.

        Raises:
            ImageProblem: the file cannot be decoded.
        """
        cached = self.read(sample, size)
        if cached is not None:
            return cached
        _check_unchanged(sample)
        pixels = resize_to_square(decode_rgb(sample.path, draft_size=2 * size), size)
        with self._lock:
            self.stats.decoded += 1
        self.write(sample, size, pixels)
        return pixels


def _check_unchanged(sample: Sample) -> None:
    try:
        st = sample.path.stat()
    except FileNotFoundError as exc:
        raise ImageProblem("file was deleted after the scan") from exc
    except OSError as exc:
        raise ImageProblem(f"cannot read file ({exc.strerror})") from exc
    if st.st_size != sample.size or st.st_mtime_ns != sample.mtime_ns:
        raise ImageProblem("file changed after the scan; scan the folder again to use it")


@dataclass
class PixelChunk:
    """A run of consecutive images: ``indices`` into the samples of those that decoded,
    their ``pixels`` (uint8 [k, S, S, 3]) and the ``problems`` of those that did not."""

    indices: np.ndarray
    pixels: np.ndarray
    problems: list[Problem]


def _each(samples: Sequence[Sample], work: Callable[[int], None], report: Report,
          cancel: threading.Event, workers: int | None) -> list[Problem]:
    """Runs ``work(i)`` for every sample on a few threads; returns the samples that failed.

    ``work`` raises ``ImageProblem`` for a sample it cannot decode. Pillow decodes without
    holding the GIL, so threads pay.
    """
    n = len(samples)

    def run(i: int) -> tuple[int, str | None]:
        if cancel.is_set():
            return i, None
        try:
            work(i)
            return i, None
        except ImageProblem as exc:
            return i, exc.reason

    problems: list[Problem] = []
    last = 0.0
    threads = workers or min(4, (os.cpu_count() or 2))
    # pool.map over all images would hold a future per image (100,000 of them: ~100 MB):
    # a window of a few hundred keeps the threads busy all the same.
    window = 64 * threads
    with ThreadPoolExecutor(max_workers=threads) as pool:
        done = 0
        for start in range(0, n, window):
            for i, reason in pool.map(run, range(start, min(start + window, n))):
                done += 1
                if cancel.is_set():
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise Cancelled("Loading images cancelled.")
                if reason is not None:
                    problems.append(Problem(samples[i].path, reason))
                now = time.monotonic()
                if now - last > 0.1 or done == n:
                    last = now
                    report(StageProgress("decode", done, n, "Decoding images"))
    return problems


def fill_cache(samples: Sequence[Sample], size: int, cache: PixelCache,
               report: Report = ignore, cancel: threading.Event | None = None) -> list[Problem]:
    """Decodes every image not in the cache yet into it, and names those that fail.

    Nothing is kept in memory: training then streams the pixels back from the cache
    (``iter_pixels``), so a data set larger than the RAM trains all the same.
    """
    def work(i: int) -> None:
        if not cache.contains(samples[i], size):
            cache.get(samples[i], size)

    cancel = cancel or threading.Event()
    try:
        return _each(samples, work, report, cancel, None)
    finally:
        cache.settle(samples, size, cancel)


def iter_pixels(
    samples: Sequence[Sample],
    size: int,
    cache: PixelCache,
    chunk: int = 256,
    cancel: threading.Event | None = None,
    workers: int | None = None,
) -> Iterator[PixelChunk]:
    """Yields the images in chunks of ``chunk``, reading the next while the caller works.

    At most two chunks are in memory at a time. Files that fail (changed or deleted since
    the scan) come back as problems in their chunk.
    """
    cancel = cancel or threading.Event()
    n = len(samples)

    def load(i: int) -> tuple[np.ndarray | None, str | None]:
        if cancel.is_set():
            return None, "cancelled"
        try:
            return cache.get(samples[i], size), None
        except ImageProblem as exc:
            return None, exc.reason

    pool = ThreadPoolExecutor(max_workers=workers or min(4, (os.cpu_count() or 2)))
    try:
        def submit(start: int) -> list[Future[tuple[np.ndarray | None, str | None]]]:
            return [pool.submit(load, i) for i in range(start, min(start + chunk, n))]

        pending = submit(0)
        for start in range(0, n, chunk):
            ahead = submit(start + chunk)
            results = [f.result() for f in pending]
            if cancel.is_set():
                raise Cancelled("Loading images cancelled.")
            good = [(start + j, px) for j, (px, _) in enumerate(results) if px is not None]
            kept = [i for i, _ in good]
            pixels = np.empty((len(good), size, size, 3), dtype=np.uint8)
            for k, (_, px) in enumerate(good):
                pixels[k] = px
            del good
            problems = [Problem(samples[start + j].path, reason)
                        for j, (px, reason) in enumerate(results) if px is None and reason]
            del results
            yield PixelChunk(np.asarray(kept, dtype=np.int64), pixels, problems)
            pending = ahead
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        cache.settle(samples, size, cancel)


def load_pixels(
    samples: Sequence[Sample],
    size: int,
    cache: PixelCache,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray, list[Problem]]:
    """Loads many images at ``size`` x ``size`` through the cache, all into memory.

    Args:
        samples: the images.
        size: side in pixels.
        cache: the pixel cache.
        report: receives ``StageProgress("decode", ...)``.
        cancel: set it to stop; ``Cancelled`` is raised.
        workers: decoding threads.

    Returns:
        (pixels uint8 [n, size, size, 3], indices into ``samples`` of those kept,
        problems for the files that failed to decode).
    """
    n = len(samples)
    out = np.empty((n, size, size, 3), dtype=np.uint8)

    def work(i: int) -> None:
        out[i] = cache.get(samples[i], size)

    cancel = cancel or threading.Event()
    try:
        problems = _each(samples, work, report, cancel, workers)
    finally:
        cache.settle(samples, size, cancel)
    if not problems:  # the usual case: no copy of a few hundred MB
        return out, np.arange(n), problems
    failed = {p.path for p in problems}
    kept = np.array([i for i, s in enumerate(samples) if s.path not in failed], dtype=np.int64)
    return out[kept], kept, problems
