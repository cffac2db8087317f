"""Fixtures for driving the window: an isolated settings folder, drops, a tiny config."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget

from tests.imagegen import make_dataset
from tlgui.core.config import PhaseConfig, TrainConfig

TINY = TrainConfig(weights="none", image_size=32, batch_size=8,
                   phase1=PhaseConfig(epochs=2), phase2=PhaseConfig(epochs=1, learning_rate=1e-5))


@pytest.fixture
def settings_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "settings"
    monkeypatch.setenv("TLGUI_SETTINGS_DIR", str(folder))
    monkeypatch.setenv("TLGUI_DATA_DIR", str(tmp_path / "data"))
    return folder


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """Three colour classes, 8 images each, and one unreadable file."""
    root = make_dataset(tmp_path / "colours", per_class=8)
    (root / "red" / "broken.jpg").write_bytes(b"not a jpeg")
    return root


@pytest.fixture(scope="session")
def shared_engine(qapp) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """One engine process for the GUI tests: starting one costs a Keras import (seconds)."""
    from tlgui.gui.engine_host import EngineHost

    host = EngineHost()
    host.start()
    yield host
    host.shutdown()


@pytest.fixture
def engine(shared_engine):  # type: ignore[no-untyped-def]
    """The shared engine, running again if a test killed it."""
    if not shared_engine.client.alive:
        shared_engine.closing = False
        shared_engine.start()
    return shared_engine


@pytest.fixture
def window(qtbot, settings_dir: Path, engine) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A shown main window with the tiny config; closed (threads joined) at the end."""
    from tlgui.gui.main_window import MainWindow

    win = MainWindow(engine=engine)
    qtbot.addWidget(win)
    win.model_panel.set_config(TINY)
    win.show()
    qtbot.waitExposed(win)
    win.start_background_setup()
    yield win
    win.close()


def drop_paths(target: QWidget, paths: list[Path]) -> bool:
    """Sends a drag-enter and a drop of local files to ``target``; True when accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(os.fspath(p)) for p in paths])
    centre = target.rect().center()
    enter = QDragEnterEvent(centre, Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(QPointF(centre), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, drop)
    return drop.isAccepted()
