"""Logging to a rotating file in the user log folder; the console gets messages only."""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from tlgui.core.paths import log_dir


class _QuietFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file that never prints to the terminal when it cannot be written.

    ``logging`` prints a traceback to stderr when a handler fails (a full disk, a log
    that cannot be rotated); the log is a convenience, so it stops quietly instead.
    """

    def handleError(self, record: logging.LogRecord) -> None:
        self.failed = True

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(self, "failed", False):
            super().emit(record)


def _usable_log_file(path: Path) -> bool:
    """False for a path that must not be opened for appending (a pipe blocks; a device;
    a link, which could lead the log into a user's file)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return stat.S_ISREG(mode)


def setup_logging(verbose: bool = False, file_name: str = "tlgui.log") -> Path | None:
    """Sends tlgui's log (tracebacks included) to ``<user log dir>/<file_name>``.

    The engine process logs to a file of its own (``engine.log``), so that two processes
    never rotate one file.

    Without a usable log file (the folder is a file, the disk is full) records are
    dropped, never printed: Python's last-resort handler would print tracebacks to the
    terminal. See ``off_the_console`` for other libraries' console handlers.

    Returns:
        The log file, or None when the folder cannot be written.
    """
    # TensorFlow's C++ start-up chatter means nothing to a user.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    root = logging.getLogger("tlgui")
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if any(getattr(h, "_tlgui", False) for h in root.handlers):
        return getattr(root, "_tlgui_file", None)
    path: Path | None = None
    handler: logging.Handler
    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / file_name
        if not _usable_log_file(path):
            raise IsADirectoryError(f"{path} is not a regular file")
        handler = _QuietFileHandler(path, maxBytes=2_000_000, backupCount=3,
                                    encoding="utf-8", errors="backslashreplace")
    except (OSError, ValueError):
        path = None
        handler = logging.NullHandler()  # else the last-resort handler prints tracebacks
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._tlgui = True  # type: ignore[union-attr]
    root.addHandler(handler)
    root._tlgui_file = path  # type: ignore[attr-defined]
    return path


@contextlib.contextmanager
def off_the_console() -> Iterator[None]:
    """Keeps tlgui's log records (tracebacks) off the terminal while the block runs.

    A library calling ``logging.warning(...)`` installs a console handler on the root
    logger (``logging.basicConfig``); tlgui's records would then reach the terminal,
    tracebacks included. Inside the block they go to tlgui's own handlers only.
    """
    root = logging.getLogger("tlgui")
    saved = root.propagate
    root.propagate = False
    try:
        yield
    finally:
        root.propagate = saved
