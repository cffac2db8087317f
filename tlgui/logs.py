"""Logging to a rotating file in the user log folder; the console gets messages only."""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

from tlgui.core.paths import log_dir


def setup_logging(verbose: bool = False) -> Path | None:
    """Sends tlgui's log (tracebacks included) to ``<user log dir>/tlgui.log``.

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
        path = folder / "tlgui.log"
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._tlgui = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root._tlgui_file = path  # type: ignore[attr-defined]
    return path


def import_keras_quietly() -> None:
    """Imports Keras (and its TensorFlow backend) with the C++ start-up chatter hidden.

    TensorFlow 2.21 writes absl lines ("oneDNN custom operations are on", "Could not find
    cuda drivers") to file descriptor 2 before ``TF_CPP_MIN_LOG_LEVEL`` applies. They mean
    nothing to a user of the command line, so stderr is pointed at the null device for the
    import only; Python errors still propagate as exceptions.
    """
    import sys

    if "keras" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                import keras  # noqa: F401
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)
