"""The cache in the settings dialog: its use read off the GUI thread, the limit saved,
Clear removing the entries."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tlgui.core import cache_control as cc
from tlgui.core.dataset import Sample
from tlgui.core.pixel_store import PixelStore


def _fill(root: Path, images: Path, n: int) -> None:
    store = PixelStore(root, limit=10**9)
    samples = [Sample(images / f"{i}.png", 0, i, 1) for i in range(n)]
    images.mkdir()
    for s in samples:
        store.write(s, 8, np.zeros((8, 8, 3), dtype=np.uint8))
    store.settle(samples, 8)


def test_cache_box_shows_use_saves_the_limit_and_clears(
        qtbot, isolated_dirs: Path, settings_dir: Path,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tlgui.gui.engine_settings import EngineSettingsDialog

    _fill(cc.pixels_dir(), isolated_dirs / "ds", 3)
    threads: list[threading.Thread] = []
    real_inspect = cc.inspect

    def inspect(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread())
        return real_inspect(*args, **kwargs)

    monkeypatch.setattr(cc, "inspect", inspect)
    dialog = EngineSettingsDialog(None, "")
    qtbot.addWidget(dialog)
    box = dialog.cache_box
    qtbot.waitUntil(lambda: "3 decoded images" in box.usage_label.text(), timeout=10_000)
    assert threads and threads[0] is not threading.main_thread()
    assert str(cc.pixels_dir()) in box.folder_label.text()
    assert box.default_box.isChecked() and not box.limit_spin.isEnabled()

    box.default_box.setChecked(False)
    box.limit_spin.setValue(2.5)
    dialog.accept()
    assert cc.saved_limit() == 2_500_000_000
    from tlgui.gui import jobs

    assert jobs._cache()["cache_limit"] == 2_500_000_000  # what the engine is sent

    qtbot.mouseClick(box.clear_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Cleared: 3 decoded images removed" in box.usage_label.text(),
                    timeout=10_000)
    qtbot.waitUntil(lambda: box.clear_button.isEnabled(), timeout=10_000)
    assert box.job is not None and box.job.wait(5000)
    assert cc.inspect().entries == 0

    again = EngineSettingsDialog(None, "")
    qtbot.addWidget(again)
    assert not again.cache_box.default_box.isChecked()
    assert again.cache_box.limit_spin.value() == pytest.approx(2.5)
    again.reject()  # closing cancels the walk it started
    assert again.cache_box.job is not None and again.cache_box.job.wait(5000)


def test_images_of_a_missing_folder_are_offered_for_removal(
        qtbot, isolated_dirs: Path, settings_dir: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from tlgui.gui.cache_box import CacheBox

    _fill(cc.pixels_dir(), isolated_dirs / "kept", 2)
    _fill(cc.pixels_dir(), isolated_dirs / "gone", 3)
    box = CacheBox()
    qtbot.addWidget(box)
    qtbot.waitUntil(lambda: "5 decoded images" in box.usage_label.text(), timeout=10_000)
    assert box.prune_button.isHidden()  # every folder is still there
    assert box.job is not None and box.job.wait(5000)
    shutil.rmtree(isolated_dirs / "gone")
    box.refresh()
    qtbot.waitUntil(lambda: "no longer exist" in box.usage_label.text(), timeout=10_000)
    assert not box.prune_button.isHidden()
    qtbot.waitUntil(lambda: box.clear_button.isEnabled(), timeout=10_000)
    qtbot.mouseClick(box.prune_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Removed 3 decoded images" in box.usage_label.text(),
                    timeout=10_000)
    assert box.job is not None and box.job.wait(5000)
    assert cc.inspect().entries == 2
