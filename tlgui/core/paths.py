"""Where tlgui keeps its own files: never inside the user's dataset folders."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "tlgui"


def cache_dir() -> Path:
    """Decoded-image cache; ``$TLGUI_CACHE_DIR`` overrides it."""
    env = os.environ.get("TLGUI_CACHE_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir(APP, appauthor=False))


def data_dir() -> Path:
    """Runs and settings data; ``$TLGUI_DATA_DIR`` overrides it."""
    env = os.environ.get("TLGUI_DATA_DIR")
    return Path(env) if env else Path(platformdirs.user_data_dir(APP, appauthor=False))


def runs_dir() -> Path:
    """The folder holding one sub-folder per training run."""
    return data_dir() / "runs"


def log_dir() -> Path:
    """The log folder; ``$TLGUI_LOG_DIR`` overrides it."""
    env = os.environ.get("TLGUI_LOG_DIR")
    return Path(env) if env else Path(platformdirs.user_log_dir(APP, appauthor=False))
