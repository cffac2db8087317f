"""The engine settings' "GPUs per run" choice, and how it reaches a training (ADR 010)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from tlgui.gui import jobs
from tlgui.gui.engine_settings import DEVICES_KEY, EngineSettingsDialog, saved_devices

GPUS = [{"id": "cpu", "kind": "cpu", "name": "CPU"}] + [
    {"id": f"gpu:{i}", "kind": "gpu", "name": "GPU", "memory_bytes": 2**34} for i in range(3)]


@pytest.mark.gui
def test_the_dialog_offers_one_all_or_some_gpus(qtbot) -> None:  # type: ignore[no-untyped-def]
    dialog = EngineSettingsDialog(None, "", devices=GPUS, shared="2")
    qtbot.addWidget(dialog)
    offered = [dialog.shared_box.itemData(i) for i in range(dialog.shared_box.count())]
    assert offered == ["1", "all", "2"]
    assert dialog.shared() == "2"
    # A count saved on a machine with more GPUs stays visible, marked as not found.
    other = EngineSettingsDialog(None, "", devices=GPUS[:2], shared="4")
    qtbot.addWidget(other)
    assert other.shared() == "4" and "not found" in other.shared_box.currentText()
    for d in (dialog, other):  # each dialog reads the cache's size on a thread of its own
        assert d.cache_box.job is None or d.cache_box.job.wait(5000)


def test_saved_devices_falls_back_to_one(tmp_path: Path) -> None:
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    assert saved_devices(settings) == "1"
    for bad in ("0", "two", ""):
        settings.setValue(DEVICES_KEY, bad)
        assert saved_devices(settings) == "1"
    settings.setValue(DEVICES_KEY, "all")
    assert saved_devices(settings) == "all"


def test_the_choice_travels_with_the_train_request(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: dict[str, Any] = {}

    class Engine:
        def call(self, method: str, params: dict[str, Any], *args: Any) -> Any:
            sent.update(params)
            raise RuntimeError("stop here")

    monkeypatch.setattr(jobs.codec, "dataset_ref", lambda *a, **k: {})
    monkeypatch.setattr(jobs.codec, "flags_to_data", lambda f: [])
    from tlgui.core.config import TrainConfig

    with pytest.raises(RuntimeError, match="stop here"):
        jobs.train(Engine(), None, "t", TrainConfig(), (), (), lambda e: None,  # type: ignore[arg-type]
                   threading.Event(), devices="all")
    assert sent["devices"] == "all"


@pytest.mark.gui
def test_the_window_remembers_the_choice(window) -> None:  # type: ignore[no-untyped-def]
    window.open_engine_settings()
    dialog = window.engine_dialog
    dialog.shared_box.setCurrentIndex(dialog.shared_box.findData("all"))
    dialog.accept()
    assert saved_devices(window.settings) == "all"
    assert window.engine.backend == dialog.backend()  # the backend did not change
