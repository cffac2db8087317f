"""The Predict tab driven like a user: drops without a model, dataset folders, texts,
mistakes, paste, the unsure threshold, the CSV and sorted copies."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton

from tests.gui.conftest import drop_paths
from tlgui.core.paths import cache_dir, log_dir
from tlgui.gui.clipboard import pasted_dir
from tlgui.gui.dialogs import CLASSIFY_IMAGES, OPEN_AS_DATASET
from tlgui.gui.main_window import DATA, MODEL, PREDICT
from tlgui.gui.prediction_cards import CARD_ROLE, CLASSIFYING, NOTE, RESULT, VERDICT_ROLE, WAITING
from tlgui.gui.settings import unsure_threshold
from tlgui.logs import setup_logging

WAIT = 120_000


def _cards(panel):  # type: ignore[no-untyped-def]
    model = panel.cards
    return [model.index(r).data(CARD_ROLE) for r in range(model.rowCount())]


def _verdicts(panel):  # type: ignore[no-untyped-def]
    model = panel.cards
    return [model.index(r).data(VERDICT_ROLE) for r in range(model.rowCount())]


def _load(qtbot, panel, model_file: Path) -> None:  # type: ignore[no-untyped-def]
    panel.load_model(model_file)
    qtbot.waitUntil(lambda: panel.model_path == model_file and not panel._busy(),
                    timeout=WAIT)


def _idle(qtbot, panel) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: not panel._busy() and not panel.cards.count(CLASSIFYING)
                    and not panel.cards.count(WAITING), timeout=WAIT)


def _status(window) -> list[str]:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    window.predict_panel.status_message.connect(seen.append)
    return seen


@pytest.mark.gui
def test_drops_without_a_model_wait_on_cards_and_clear_empties_them(  # type: ignore[no-untyped-def]
        qtbot, window, tiny_dataset: Path, tiny_model_file: Path) -> None:
    panel = window.predict_panel
    window.tabs.setCurrentIndex(PREDICT)
    red = sorted((tiny_dataset / "red").glob("img_*.jpg"))
    assert drop_paths(window, [red[0], red[1], tiny_dataset / "green"])
    assert [c.state for c in _cards(panel)] == [WAITING] * 3
    assert [c.path for c in _cards(panel)] == [red[0], red[1], tiny_dataset / "green"]
    assert _cards(panel)[2].is_folder
    assert all("Waiting for a model" in text for _, text in _verdicts(panel))
    assert panel.grid.isVisible() and not panel.hint.isVisible()
    assert panel.counts_label.text() == "3 waiting"
    # Clear empties them: loading a model afterwards classifies nothing.
    panel.clear_button.click()
    assert panel.cards.rowCount() == 0 and panel.hint.isVisible()
    _load(qtbot, panel, tiny_model_file)
    qtbot.wait(200)
    assert panel.predictions == [] and panel.cards.rowCount() == 0

    # Dropped while a model loads: they wait visibly, then are classified.
    panel.load_model(tiny_model_file)
    assert drop_paths(panel, [red[2], red[3]])
    assert [c.state for c in _cards(panel)] == [WAITING] * 2
    assert all("load" in text for _, text in _verdicts(panel))
    _idle(qtbot, panel)
    assert [c.state for c in _cards(panel)] == [RESULT] * 2
    assert [p.path for p in panel.predictions] == [red[2], red[3]]


@pytest.mark.gui
def test_folder_of_class_folders_is_offered_as_a_dataset(  # type: ignore[no-untyped-def]
        qtbot, window, tiny_dataset: Path, tiny_model_file: Path) -> None:
    panel = window.predict_panel
    _load(qtbot, panel, tiny_model_file)
    seen = _status(window)
    window.tabs.setCurrentIndex(PREDICT)
    panel.threshold_box.setValue(0)  # none unsure: the plain count

    def answer(text: str | None) -> None:
        before = panel.cards.rowCount()
        assert drop_paths(window, [tiny_dataset])
        box = window.findChild(QMessageBox, "datasetOffer")
        assert box is not None and box.isVisible(), "asked, without blocking"
        assert panel.cards.rowCount() == before, "nothing classified before the answer"
        button = (box.button(QMessageBox.StandardButton.Cancel) if text is None else
                  next(b for b in box.findChildren(QPushButton) if b.text() == text))
        button.click()
        box.setObjectName("answered")  # the next drop asks again with a new box

    answer(None)
    assert panel.cards.rowCount() == 0 and window.session.dataset is None

    answer(CLASSIFY_IMAGES)
    _idle(qtbot, panel)
    assert len(panel.predictions) == 25
    # The unreadable file is not counted as classified.
    assert seen[-1] == "Classified 24 images; 1 could not be read (see its card)."
    assert window.session.dataset is None and window.tabs.currentIndex() == PREDICT

    answer(OPEN_AS_DATASET)
    assert window.tabs.currentIndex() == DATA
    qtbot.waitUntil(lambda: window.session.dataset is not None, timeout=WAIT)
    assert window.session.dataset.root == tiny_dataset
    qtbot.waitUntil(lambda: not window.session.busy, timeout=WAIT)


@pytest.mark.gui
def test_a_folder_without_images_is_said_plainly_without_a_traceback(  # type: ignore[no-untyped-def]
        qtbot, window, tmp_path: Path, tiny_model_file: Path, capfd) -> None:
    log_file = setup_logging()
    assert log_file is not None
    engine_log = log_dir() / "engine.log"
    sizes = {p: p.stat().st_size if p.is_file() else 0 for p in (log_file, engine_log)}
    panel = window.predict_panel
    _load(qtbot, panel, tiny_model_file)
    empty = tmp_path / "empty"
    empty.mkdir()
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "read me.txt").write_text("no pictures here")
    seen = _status(window)
    window.tabs.setCurrentIndex(PREDICT)
    assert drop_paths(window, [empty, notes])
    _idle(qtbot, panel)
    assert [(c.state, c.path, c.note) for c in _cards(panel)] == [
        (NOTE, empty, "No image files in this folder."),
        (NOTE, notes, "No image files in this folder.")]
    assert seen[-1] == "No images in 'empty', 'notes'."
    assert window.findChild(QMessageBox, "errorBox") is None
    # The same mistake on the Data tab: a plain message, one log line, no traceback.
    window.tabs.setCurrentIndex(DATA)
    assert drop_paths(window, [empty])
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorBox") is not None,
                    timeout=WAIT)
    box = window.findChild(QMessageBox, "errorBox")
    assert str(empty) in box.text() and "Traceback" not in box.text()
    box.close()
    qtbot.waitUntil(lambda: engine_log.is_file() and "scan failed" in
                    engine_log.read_text()[sizes[engine_log]:], timeout=WAIT)
    assert "Traceback" not in capfd.readouterr().err
    for path, start in sizes.items():
        new = path.read_text()[start:]
        assert "Traceback" not in new, (path, new)
    assert f"scan failed: {empty}" in log_file.read_text()[sizes[log_file]:]


@pytest.mark.gui
def test_paste_classifies_a_picture_or_copied_files(  # type: ignore[no-untyped-def]
        qtbot, window, tiny_dataset: Path, tiny_model_file: Path) -> None:
    panel = window.predict_panel
    _load(qtbot, panel, tiny_model_file)
    window.tabs.setCurrentIndex(DATA)
    window.activateWindow()
    window.tabs.setFocus()
    picture = QImage(48, 40, QImage.Format.Format_RGB32)
    picture.fill(QColor(200, 40, 40))
    QApplication.clipboard().setImage(picture)
    qtbot.keyClick(window.tabs, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == PREDICT
    _idle(qtbot, panel)
    [pasted] = panel.predictions
    assert pasted.error is None and pasted.path.parent == pasted_dir()
    assert pasted_dir().is_relative_to(cache_dir()) and pasted.path.is_file()
    assert QImage(str(pasted.path)).size() == picture.size()

    files = sorted((tiny_dataset / "blue").glob("img_*.jpg"))[:2]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(os.fspath(p)) for p in files])
    QApplication.clipboard().setMimeData(mime)
    window.tabs.setCurrentIndex(DATA)
    qtbot.keyClick(window.tabs, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    _idle(qtbot, panel)
    assert [p.path for p in panel.predictions][1:] == files
    assert all(p.path.parent == tiny_dataset / "blue" for p in panel.predictions[1:]), \
        "copied files are classified where they are, not copied"

    QApplication.clipboard().setText("just words")
    window.paste()
    assert "Nothing to classify" in window.statusBar().currentMessage()
    # A text field keeps Ctrl+V for itself.
    window.tabs.setCurrentIndex(MODEL)
    field = window.model_panel.weights_file
    field.setEnabled(True)
    field.clear()
    field.setFocus()
    window.statusBar().clearMessage()
    qtbot.keyClick(field, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert field.text() == "just words"
    assert window.tabs.currentIndex() == MODEL and not window.statusBar().currentMessage()
    assert len(panel.predictions) == 3


@pytest.mark.gui
def test_threshold_marks_unsure_cards_csv_and_sorted_copies(  # type: ignore[no-untyped-def]
        qtbot, window, tiny_dataset: Path, tiny_model_file: Path, tmp_path: Path) -> None:
    panel = window.predict_panel
    _load(qtbot, panel, tiny_model_file)
    window.tabs.setCurrentIndex(PREDICT)
    assert drop_paths(window, [tiny_dataset / "red"])
    _idle(qtbot, panel)
    rows = panel.predictions
    good = [p for p in rows if p.error is None]
    assert len(rows) == 9 and len(good) == 8
    confidences = sorted(p.confidence for p in good)
    # A threshold between the lowest and the highest confidence splits the cards.
    percent = int(confidences[len(confidences) // 2] * 100) + 1
    assert confidences[0] < percent / 100
    panel.threshold_box.setValue(percent)
    assert unsure_threshold(window.settings) == percent, "remembered in the settings"
    expected = {p.path: p.confidence < percent / 100 for p in good}
    for card, (kind, text) in zip(_cards(panel), _verdicts(panel), strict=True):
        if card.prediction.error is not None:
            assert kind == "error" and text.startswith("Could not be read")
        elif expected[card.path]:
            label, prob = card.prediction.top[0]
            assert kind == "unsure" and text == f"Unsure: best guess {label} {prob:.0%}"
        else:
            assert kind == "sure" and "best guess" not in text
    assert f"{sum(expected.values())} unsure" in panel.counts_label.text()

    table = tmp_path / "out" / "predictions.csv"
    panel.write_csv(table)
    with table.open(newline="") as fh:
        lines = list(csv.DictReader(fh))
    assert list(lines[0])[-2:] == ["error", "unsure"]
    marks = {Path(r["path"]): r["unsure"] for r in lines}
    assert marks[tiny_dataset / "red" / "broken.jpg"] == ""
    assert {p: m for p, m in marks.items() if p in expected} == {
        p: "yes" if u else "no" for p, u in expected.items()}
    assert all(r["class"] for r in lines if r["unsure"] == "yes"), "the guess is kept"

    # Sorting refuses the input folder and the open dataset, before copying anything.
    before = sorted(p.name for p in (tiny_dataset / "red").iterdir())
    assert panel.sort_into(tiny_dataset / "red" / "sorted") is None
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorBox") is not None)
    window.findChild(QMessageBox, "errorBox").setObjectName("seen")
    other = tmp_path / "training_set"
    other.mkdir()
    panel.set_dataset_root(other)
    assert panel.sort_into(other / "sorted") is None
    assert not (other / "sorted").exists()

    dest = tmp_path / "sorted"
    job = panel.sort_into(dest)
    assert job is not None
    qtbot.waitUntil(lambda: not job.is_running(), timeout=WAIT)
    unsure = sorted(p.name for p, u in expected.items() if u)
    assert sorted(p.name for p in (dest / "_unsure").glob("*")) == unsure
    sure = {p.path.name: p.label for p in good if not expected[p.path]}
    copied = {p.name: p.parent.name for p in dest.rglob("*.jpg")
              if p.parent.name != "_unsure"}
    assert copied == sure
    assert sorted(p.name for p in (tiny_dataset / "red").iterdir()) == before, "never moved"
    assert window.statusBar().currentMessage().startswith(
        f"Copied {len(good)} images into {dest}")


def test_summary_texts_count_only_classified_files() -> None:
    from tlgui.core.prediction import Prediction
    from tlgui.gui.prediction_cards import summary_text

    ok = Prediction(Path("a.jpg"), (("cat", 0.9), ("dog", 0.1)))
    shaky = Prediction(Path("b.jpg"), (("dog", 0.4), ("cat", 0.35)))
    bad = Prediction(Path("c.jpg"), error="not an image")
    assert summary_text([ok], 0.5) == "Classified 1 image."
    assert summary_text([ok, shaky, bad], 0.5) == (
        "Classified 2 images (1 unsure, below 50%); 1 could not be read (see its card).")
    assert summary_text([bad, bad], 0.5) == "2 files could not be read (see their cards)."
    assert summary_text([], 0.5, [Path("/x/empty")]) == "No images in 'empty'."
    assert summary_text([], 0.5) == "Nothing to classify."
