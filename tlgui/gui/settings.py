"""Settings that persist between sessions (QSettings, INI format).

``$TLGUI_SETTINGS_DIR`` moves the settings file (tests use it so that they never touch
the user's settings).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from PySide6.QtCore import QSettings

from tlgui.core.config import TrainConfig

log = logging.getLogger(__name__)
MAX_RECENT = 8


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


UNSURE_KEY = "predict/unsure_below"
DEFAULT_UNSURE_PERCENT = 50


def unsure_threshold(settings: QSettings) -> int:
    """The Predict tab's threshold in percent (0-100): below it a prediction is unsure."""
    try:
        value = int(str(settings.value(UNSURE_KEY, DEFAULT_UNSURE_PERCENT)))
    except ValueError:
        log.warning("ignoring unreadable setting %s", UNSURE_KEY)
        return DEFAULT_UNSURE_PERCENT
    return min(100, max(0, value))


def set_unsure_threshold(settings: QSettings, percent: int) -> None:
    """Remembers the Predict tab's threshold (percent)."""
    settings.setValue(UNSURE_KEY, int(percent))
