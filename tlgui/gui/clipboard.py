"""What Ctrl+V brings to classify: copied files, or a picture (a screenshot, say).

A picture is written as a PNG into tlgui's own cache (``<cache>/pasted/``), never next
to the user's files; pictures pasted more than a week ago are removed then.
"""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path

from PySide6.QtCore import QMimeData
from PySide6.QtGui import QImage

from tlgui.core.atomic import atomic_path
from tlgui.core.paths import cache_dir

log = logging.getLogger(__name__)
KEEP_S = 7 * 24 * 3600


def pasted_dir() -> Path:
    """The folder pasted pictures are saved in."""
    return cache_dir() / "pasted"


def clipboard_paths(mime: QMimeData | None) -> list[Path]:
    """The local files on the clipboard, or the saved PNG of a picture on it.

    Returns:
        An empty list when the clipboard holds neither (or the picture cannot be saved).
    """
    if mime is None:
        return []
    if mime.hasUrls():
        files = [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]
        if files:
            return files
    if mime.hasImage():
        image = mime.imageData()
        if isinstance(image, QImage) and not image.isNull():
            saved = save_pasted(image)
            return [saved] if saved is not None else []
    return []


def save_pasted(image: QImage) -> Path | None:
    """Writes a pasted picture as a new PNG in ``pasted_dir()``; None when it fails."""
    folder = pasted_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _forget_old(folder)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = next(p for n in itertools.count(1)
                      if not (p := folder / f"pasted-{stamp}-{n}.png").exists())
        with atomic_path(target) as tmp:
            if not image.save(str(tmp), "PNG"):  # type: ignore[call-overload]
                raise OSError(f"cannot encode the picture as PNG in {folder}")
    except OSError as exc:
        log.warning("cannot save a pasted picture: %s", exc)
        return None
    return target


def _forget_old(folder: Path) -> None:
    cutoff = time.time() - KEEP_S
    for old in folder.glob("pasted-*.png"):
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:
            continue
