"""Logging to a rotating file in the user log folder; the console gets messages only."""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

from tlgui.core.paths import log_dir


def setup_logging(verbose: bool = False, file_name: str = "tlgui.log") -> Path | None:
    """Sends tlgui's log (tracebacks included) to ``<user log dir>/<file_name>``.

    The engine process logs to a file of its own (``engine.log``), so that two processes
    never rotate one file.

    Returns:
        The log file, or None when the folder cannot be written.
    """
    # TensorFlow's C++ start-up chatter means nothing to a user.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    root = logging.getLogger("tlgui")
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if any(getattr(h, "_tlgui", False) for h in root.handlers):
        return getattr(root, "_tlgui_file", None)
    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / file_name
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._tlgui = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root._tlgui_file = path  # type: ignore[attr-defined]
    return path
