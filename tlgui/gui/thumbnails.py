"""Thumbnails decoded off the GUI thread, on demand, newest request first.

Views ask ``ThumbnailCache.get(path)`` while painting; a miss queues the file and
returns None, and ``ready(path)`` fires when the picture is there. Only what is painted
is requested, so a folder of 10,000 images costs nothing until it is scrolled to.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, QRect, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QStyledItemDelegate, QWidget

from tlgui.gui.workers import Job, start_job

log = logging.getLogger(__name__)
IDLE_EXIT_S = 2.0
PLACEHOLDER = QColor("#e4e4e4")


def load_thumbnail(path: Path, size: int) -> QImage:
    """Decodes an image scaled to fit ``size`` x ``size`` (upright as EXIF says).

    Returns:
        The picture, or a null QImage when the file cannot be read.
    """
    from PIL import Image, ImageOps

    from tlgui.core.entries import open_regular

    try:
        # Never Image.open(path): a named pipe called x.jpg would block this thread forever.
        with open_regular(path) as fh, Image.open(fh) as img:
            if img.format == "JPEG":
                img.draft("RGB", (size * 2, size * 2))
            img.seek(0)
            rgb = ImageOps.exif_transpose(img).convert("RGB")
            rgb.thumbnail((size, size))
            data = rgb.tobytes()
            qimg = QImage(data, rgb.width, rgb.height, 3 * rgb.width,
                          QImage.Format.Format_RGB888)
            return qimg.copy()  # own the pixels: ``data`` goes away
    except Exception as exc:  # any unreadable file just shows no picture
        log.debug("no thumbnail for %s: %s", path, exc)
        return QImage()


class ThumbnailCache(QObject):
    """Thumbnails by file path, loaded by one background worker."""

    ready = Signal(str)

    def __init__(self, size: int = 96, capacity: int = 3000,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.size = size
        self.capacity = capacity
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._requested: set[str] = set()
        self._queue: queue.LifoQueue[str] = queue.LifoQueue()
        self._job: Job | None = None
        self._stopped = False

    def get(self, path: Path | str) -> QPixmap | None:
        """The thumbnail if loaded; otherwise queues it and returns None."""
        key = str(path)
        pix = self._pixmaps.get(key)
        if pix is not None:
            self._pixmaps.move_to_end(key)
            return pix
        self.request(key)
        return None

    def request(self, path: Path | str) -> None:
        """Queues a file unless it is loaded or queued already."""
        key = str(path)
        if key in self._pixmaps or key in self._requested or self._stopped:
            return
        self._requested.add(key)
        self._queue.put(key)
        self._ensure_running()

    def _ensure_running(self) -> None:
        if self._stopped or (self._job is not None and self._job.is_running()):
            return
        self._job = start_job("thumbnails", self._loop, on_progress=self._on_loaded,
                              throttle_s=0.0)
        # A request that came while the loop was exiting is still queued: go on.
        self._job.ended.connect(self._restart_if_needed)

    def _restart_if_needed(self) -> None:
        if not self._queue.empty():
            self._ensure_running()

    def _loop(self, report: object, cancel: threading.Event) -> None:
        idle = 0.0
        while not cancel.is_set():
            try:
                key = self._queue.get(timeout=0.1)
            except queue.Empty:
                idle += 0.1
                if idle >= IDLE_EXIT_S:
                    return
                continue
            idle = 0.0
            image = load_thumbnail(Path(key), self.size)
            report((key, image))  # type: ignore[operator]

    def _on_loaded(self, item: object) -> None:
        assert isinstance(item, tuple)
        key: str = item[0]
        image: QImage = item[1]
        self._requested.discard(key)
        pix = QPixmap.fromImage(image) if not image.isNull() else QPixmap()
        self._pixmaps[key] = pix
        while len(self._pixmaps) > self.capacity:
            self._pixmaps.popitem(last=False)
        self.ready.emit(key)

    def stop(self) -> None:
        """Stops the loader and waits for its thread to end."""
        self._stopped = True
        if self._job is not None:
            self._job.cancel()
            self._job.wait()


def draw_thumbnail(painter: QPainter, cache: ThumbnailCache, path: Path | str, box: QRect,
                   inset: int = 0) -> None:
    """Draws the thumbnail of ``path`` fitted and centred in ``box``.

    Until it is decoded (the cache is asked now), or when the file cannot be read, a grey
    square ``inset`` pixels inside ``box`` stands in for it.
    """
    pix = cache.get(path)
    if pix is None or pix.isNull():
        painter.fillRect(box.adjusted(inset, inset, -inset, -inset), PLACEHOLDER)
        return
    scaled = pix.scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio,
                        Qt.TransformationMode.SmoothTransformation)
    painter.drawPixmap(box.x() + (box.width() - scaled.width()) // 2,
                       box.y() + (box.height() - scaled.height()) // 2, scaled)


class ThumbnailDelegateBase(QStyledItemDelegate):
    """A delegate that paints thumbnails from ``cache`` (``draw_thumbnail``)."""

    def __init__(self, cache: ThumbnailCache, parent: QWidget) -> None:
        super().__init__(parent)
        self.cache = cache
