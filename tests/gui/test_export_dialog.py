"""The export dialog checks its destination before the engine starts: it asks before
replacing a file, refuses the dataset, and defaults to a folder the user finds again."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from tests.engine.test_protocol import _tree
from tlgui.core.config import TrainConfig
from tlgui.core.outcomes import ModelInfo
from tlgui.gui.export_dialog import ExportDialog, default_folder

pytestmark = pytest.mark.gui


def _dialog(qtbot, folder: Path, protected: list[Path]) -> ExportDialog:  # type: ignore[no-untyped-def]
    info = ModelInfo(("a", "b"), 160, "MobileNetV2", TrainConfig(), _tree(), {}, trained=True)
    dialog = ExportDialog(None, info, folder, protected=protected,  # type: ignore[arg-type]
                          name="cells_classifier")
    qtbot.addWidget(dialog)
    return dialog


def test_an_existing_file_is_replaced_only_after_yes(  # type: ignore[no-untyped-def]
        qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dialog = _dialog(qtbot, tmp_path, [])
    target = tmp_path / "cells_classifier.keras"
    assert Path(dialog.dest.text()) == target
    assert dialog.confirmed_overwrite(target) is False  # nothing there: no question
    target.write_bytes(b"the user's earlier model")
    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    asked: list[str] = []

    def question(_parent, _title, text, *_args):  # type: ignore[no-untyped-def]
        asked.append(text)
        return answers.pop(0)

    monkeypatch.setattr(QMessageBox, "question", question)
    started: list[object] = []
    monkeypatch.setattr("tlgui.gui.export_dialog.start_job", lambda *a, **k: started.append(a))
    dialog.start()  # No: nothing starts, the file is kept
    assert not started and target.read_bytes() == b"the user's earlier model"
    assert "already exists" in asked[0] and "Nothing was exported" in dialog.message.text()
    dialog.start()  # Yes: the export starts, told to overwrite
    assert len(started) == 1 and len(asked) == 2


def test_the_dataset_is_refused_without_a_question(  # type: ignore[no-untyped-def]
        qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "cells"
    (data / "a").mkdir(parents=True)
    dialog = _dialog(qtbot, tmp_path, [data])
    monkeypatch.setattr(QMessageBox, "question", lambda *a: pytest.fail("asked"))
    started: list[object] = []
    monkeypatch.setattr("tlgui.gui.export_dialog.start_job", lambda *a, **k: started.append(a))
    dialog.dest.setText(str(data / "a" / "model.keras"))
    dialog.start()
    assert not started and "Cannot export there" in dialog.message.text()
    assert sorted(p.name for p in data.rglob("*")) == ["a"]


def test_the_default_folder_is_documents_unless_that_is_the_dataset(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    (tmp_path / "Documents").mkdir()
    assert default_folder([]) == tmp_path / "Documents"
    # A dataset kept in Documents itself: the home folder instead.
    assert default_folder([tmp_path / "Documents"]) == tmp_path
