"""Settings that persist between sessions (QSettings, INI format).

``$TLGUI_SETTINGS_DIR`` moves the settings file (tests use it so that they never touch
the user's settings).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from tlgui.core.config import TrainConfig

log = logging.getLogger(__name__)
MAX_RECENT = 8
LAST_RUN_KEY = "runs/last"


def app_settings() -> QSettings:
    """The application's settings store."""
    folder = os.environ.get("TLGUI_SETTINGS_DIR")
    if folder:
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, folder)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "tlgui", "tlgui")


def _json(settings: QSettings, key: str, default: Any) -> Any:
    raw = settings.value(key)
    if raw in (None, ""):
        return default
    try:
        return json.loads(str(raw))
    except ValueError:
        log.warning("ignoring unreadable setting %s", key)
        return default


def load_config(settings: QSettings) -> TrainConfig:
    """The training settings saved last time, or the defaults."""
    data = _json(settings, "train/config", None)
    if not isinstance(data, dict):
        return TrainConfig()
    try:
        return TrainConfig.from_dict(data)
    except (TypeError, ValueError):
        log.warning("ignoring saved training settings that no longer fit", exc_info=True)
        return TrainConfig()


def save_config(settings: QSettings, config: TrainConfig) -> None:
    """Stores the training settings."""
    settings.setValue("train/config", json.dumps(config.to_dict()))


def recent_datasets(settings: QSettings) -> list[str]:
    """Dataset folders opened recently, newest first."""
    data = _json(settings, "datasets/recent", [])
    return [str(p) for p in data if isinstance(p, str)] if isinstance(data, list) else []


def add_recent_dataset(settings: QSettings, path: str) -> list[str]:
    """Puts a folder at the top of the recent list and returns the list."""
    items = [path, *(p for p in recent_datasets(settings) if p != path)][:MAX_RECENT]
    settings.setValue("datasets/recent", json.dumps(items))
    settings.setValue("datasets/last", path)
    return items


def last_dataset(settings: QSettings) -> str | None:
    """The dataset folder open when the window was last closed."""
    value = settings.value("datasets/last")
    return str(value) if value else None


def _ticks_key(config: TrainConfig) -> str:
    return f"layers/{config.backbone}-{config.image_size or 'default'}"


def save_ticks(settings: QSettings, config: TrainConfig,
               flags: tuple[tuple[tuple[str, ...], bool], ...]) -> None:
    """Remembers the layer ticks for a backbone and size (they survive a restart)."""
    settings.setValue(_ticks_key(config), json.dumps([[list(p), f] for p, f in flags]))


def saved_ticks(settings: QSettings,
                config: TrainConfig) -> tuple[tuple[tuple[str, ...], bool], ...] | None:
    """The ticks saved for this backbone and size, or None."""
    data = _json(settings, _ticks_key(config), None)
    if not isinstance(data, list):
        return None
    try:
        return tuple((tuple(str(n) for n in path), bool(flag)) for path, flag in data)
    except (TypeError, ValueError):
        return None


def last_run(settings: QSettings) -> str | None:
    """The run opened or trained last."""
    value = settings.value(LAST_RUN_KEY)
    return str(value) if value else None


def last_run_of(settings: QSettings, dataset: str | None) -> Path | None:
    """The run to reopen after a restart: the last one if it trained on ``dataset``, else
    the newest run of ``dataset``; None when there is none."""
    from tlgui.core.runs import list_runs, run_dataset

    last = last_run(settings)
    if last and Path(last).is_dir() and (dataset is None or run_dataset(Path(last)) ==
                                         Path(dataset)):
        return Path(last)
    if not dataset:
        return None
    for info in list_runs():
        if info.dataset == dataset and info.model_path.is_file():
            return info.path
    return None
