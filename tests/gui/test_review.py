"""Audit, review and correct, apply to folders and undo, label new images, heat maps:
driven through the window like a user (keyboard in the review, buttons elsewhere)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPixmap

from tests.gui.conftest import drop_paths
from tests.imagegen import make_dataset, make_image
from tests.reliability.helpers import tree_digest
from tlgui.core.corrections import corrections_path
from tlgui.core.folder_moves import excluded_folder
from tlgui.core.heatmap import HeatMap
from tlgui.core.metrics import summarize
from tlgui.gui.folder_apply import APPLY_TEXT
from tlgui.gui.heatmaps import overlay_pixmap
from tlgui.gui.main_window import AUDIT, PREDICT

WAIT = 180_000
KEY = {1: Qt.Key.Key_1, 2: Qt.Key.Key_2, 3: Qt.Key.Key_3}


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Three classes of 8, an exact copy of one photo, and a blue photo filed as red."""
    root = make_dataset(tmp_path / "photos", per_class=8)
    shutil.copyfile(root / "green" / "img_001.jpg", root / "green" / "img_001 copy.jpg")
    make_image((40, 60, 200), (48, 40), 999, "checker").save(root / "red" / "stray.jpg")
    return root


def _open(qtbot, win, root: Path) -> None:  # type: ignore[no-untyped-def]
    s = win.session
    s.open_dataset(root)
    qtbot.waitUntil(lambda: s.dataset is not None and s.dataset.root == root
                    and s.model is not None and not s.busy, timeout=WAIT)


def _n(ds) -> int:  # type: ignore[no-untyped-def]
    return len(ds.train) + len(ds.validation) + len(ds.test)


@pytest.mark.gui
def test_audit_review_keys_store_corrections_that_training_uses(  # type: ignore[no-untyped-def]
        qtbot, window, photos: Path, tmp_path: Path) -> None:
    win, s = window, window.session
    _open(qtbot, win, photos)
    before = tree_digest(photos)
    raw_validation = [x.path for x in s.raw_dataset.validation]

    # Run the audit from its tab: the copy is found with its original.
    win.tabs.setCurrentIndex(AUDIT)
    panel = win.audit_panel
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert s.busy == "auditing" and not win.training_panel.start_button.isEnabled()
    qtbot.waitUntil(lambda: panel.audit is not None and not s.busy, timeout=WAIT)
    audit = panel.audit
    dups = [f for f in audit.findings if f.problem == "near_duplicate"]
    assert {"img_001 copy.jpg", "img_001.jpg"} in [{f.path.name, f.related_path.name}
                                                    for f in dups]
    assert panel.table.rowCount() == len(audit.findings) > 0
    assert len(audit.nearest) == len(audit.findings)
    assert all(n.paths for per in audit.nearest for n in per)
    qtbot.mouseClick(panel.filter_buttons["near_duplicate"], Qt.MouseButton.LeftButton)
    assert panel.table.rowCount() == len(dups)
    assert {panel.table.item(r, 0).text().split(" · ")[0]
            for r in range(len(dups))} == {"Near-duplicate"}
    assert panel.filter_buttons["near_duplicate"].text() == f"Near-duplicates ({len(dups)})"
    qtbot.mouseClick(panel.filter_buttons["all"], Qt.MouseButton.LeftButton)

    # CSV: the core's columns; never inside the dataset.
    out = panel.write_csv(tmp_path / "audit.csv")
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == len(audit.findings) and rows[0]["problem"] in (
        "likely_mislabeled", "near_duplicate", "outlier")
    with qtbot.waitSignal(win.review.error, timeout=2000) as refused:
        assert panel.write_csv(photos / "audit.csv") is None
    assert "tlgui never writes there" in str(refused.args[1])
    assert not (photos / "audit.csv").exists()

    # Review with the keyboard: 3 gives the third class, X excludes, Space keeps.
    review = panel.review
    review.setFocus()
    names = review.classes
    assert [review.class_list.item(i).text().split()[0] for i in range(3)] == ["1", "2", "3"]
    first = review.current
    qtbot.keyClick(review, Qt.Key.Key_3)
    want = names[2] if names[2] != first.given else None
    assert s.corrections.decision_text(first.path) == (
        f"relabelled → {want}" if want else "kept as it is")
    assert panel.table.item(0, 4).text() == (f"→ {want}" if want else "kept")
    assert review.index == 1
    qtbot.keyClick(review, Qt.Key.Key_Space)
    assert s.corrections.decision_text(review.items[1].path) == "kept as it is"
    # Exclude a validation image: the evaluation after training must miss it.
    target = next(i for i, it in enumerate(review.items) if it.path in raw_validation
                  and it.path != first.path and i > 1)
    qtbot.keyClick(review, Qt.Key.Key_Right)
    review.go_to(target)
    qtbot.keyClick(review, Qt.Key.Key_X)
    excluded = review.items[target].path
    assert s.corrections.decision_text(excluded) == "excluded"
    assert "✔ Decided: excluded" not in review.decision_label.text()  # it moved on
    qtbot.keyClick(review, Qt.Key.Key_K)
    assert review.current.path == excluded and "excluded" in review.decision_label.text()
    # Stored in tlgui's data folder; the Data tab counts follow; the folders do not.
    assert corrections_path(photos).is_file()
    assert _n(s.dataset) == _n(s.raw_dataset) - 1
    assert excluded not in {x.path for x in s.dataset.validation}
    assert "1 excluded" in panel.bar.label.text()
    assert "used by training; your folders are unchanged" in panel.bar.label.text()
    assert f"{_n(s.dataset)} usable images" in win.dataset_panel.summary_label.text()
    assert tree_digest(photos) == before

    # Training and evaluation use the corrected dataset.
    qtbot.waitUntil(lambda: not win.session.train_block_reason(), timeout=WAIT)
    with qtbot.waitSignal(s.evaluation_ready, timeout=WAIT):
        assert s.start_training()
    assert s.evaluation.total == len(raw_validation) - 1
    assert tree_digest(photos) == before

    # The review shows heat maps of the trained model when asked.
    qtbot.waitUntil(lambda: review.heat_box.isEnabled(), timeout=5000)
    review.heat_box.setChecked(True)
    qtbot.waitUntil(lambda: review.image.heat_map() is not None, timeout=WAIT)
    heat = review.image.heat_map()
    assert heat.error is None and heat.grid.ndim == 2 and heat.class_name in names


@pytest.mark.gui
def test_evaluate_mistakes_review_marks_the_gallery(  # type: ignore[no-untyped-def]
        qtbot, window, photos: Path) -> None:
    win, s = window, window.session
    _open(qtbot, win, photos)
    val = list(s.dataset.validation)
    names = s.dataset.class_names
    labels = np.array([x.label for x in val])
    probs = np.eye(len(names))[labels]
    probs[0] = np.roll(probs[0], 1)  # one mistake
    ev = summarize([x.path for x in val], labels, probs, names)
    s.evaluation = ev
    win.evaluate_panel.show_evaluation(ev)
    qtbot.mouseClick(win.evaluate_panel.review_button, Qt.MouseButton.LeftButton)
    dialog = win.review.dialog
    assert dialog is not None and dialog.isVisible()
    review = dialog.review
    item = review.current
    assert (item.given, item.suggested) == (names[labels[0]], names[(labels[0] + 1) % 3])
    # The nearest images of both classes come from the engine.
    qtbot.waitUntil(lambda: bool(review.current.nearest), timeout=WAIT)
    assert [n.class_name for n in review.current.nearest] == [item.given, item.suggested]
    assert all(review.strips[i].nearest.paths for i in range(2))
    qtbot.keyClick(review, KEY[names.index(item.suggested) + 1])
    tile = win.evaluate_panel.gallery.item(0)
    assert tile.text().endswith(f"✔ relabelled → {item.suggested}")
    # A closed review is deleted; what the window's caches announce later is harmless.
    dialog.close()
    qtbot.waitUntil(lambda: win.review.dialog is None, timeout=5000)
    s.corrections.keep(item.path)
    win.review.heat.ready.emit(str(item.path))
    win.review.large.ready.emit(str(item.path))
    win.thumbnails.ready.emit(str(item.path))
    qtbot.wait(50)
    assert tile.text().endswith("✔ kept as it is")


@pytest.mark.gui
def test_apply_shows_the_moves_and_undo_restores_the_tree(  # type: ignore[no-untyped-def]
        qtbot, window, photos: Path, tmp_path: Path) -> None:
    win, s = window, window.session
    _open(qtbot, win, photos)
    new = tmp_path / "new"
    new.mkdir()
    make_image((210, 40, 40), (48, 40), 77, "hstripes").save(new / "fresh.jpg")
    before, new_before = tree_digest(photos), tree_digest(new)
    store = s.corrections
    store.relabel(photos / "red" / "stray.jpg", "blue")
    store.exclude(photos / "green" / "img_001 copy.jpg")
    store.add(new / "fresh.jpg", "red")
    assert store.pending_text() == ("1 relabelled, 1 excluded, 1 new image added: used by "
                                    "training; your folders are unchanged.")
    bar = next(b for b in win.dataset_panel.findChildren(type(win.audit_panel.bar)))
    assert bar.apply_button.text() == APPLY_TEXT and bar.apply_button.isEnabled()
    assert tree_digest(photos) == before

    qtbot.mouseClick(bar.apply_button, Qt.MouseButton.LeftButton)
    dialog = win.review.folders.dialog
    assert dialog is not None and dialog.isVisible()
    lines = dialog.moves.toPlainText().splitlines()
    assert len(lines) == 3
    assert any(ln.startswith(f"move {photos / 'red' / 'stray.jpg'} -> "
                             f"{photos / 'blue' / 'stray.jpg'}") for ln in lines)
    assert any(ln.startswith(f"copy {new / 'fresh.jpg'}") for ln in lines)
    assert tree_digest(photos) == before  # nothing moves before Apply is pressed
    qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.review.folders.running() and s.raw_dataset is not None
                    and (photos / "blue" / "stray.jpg").is_file() and not s.busy,
                    timeout=WAIT)
    qtbot.waitUntil(lambda: any(x.path.name == "fresh.jpg" for x in s.raw_dataset.train),
                    timeout=WAIT)
    assert not (photos / "red" / "stray.jpg").exists()
    assert (excluded_folder(photos) / "green" / "img_001 copy.jpg").is_file()
    assert (photos / "red" / "fresh.jpg").is_file() and tree_digest(new) == new_before
    assert store.pending_moves() == 0 and bar.undo_button.isEnabled()

    qtbot.mouseClick(bar.undo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.review.folders.running() and not s.busy
                    and (photos / "red" / "stray.jpg").is_file(), timeout=WAIT)
    qtbot.waitUntil(lambda: not any(x.path.name == "fresh.jpg" for x in s.raw_dataset.train),
                    timeout=WAIT)
    assert tree_digest(photos) == before and tree_digest(new) == new_before
    assert not excluded_folder(photos).exists()
    assert store.pending_moves() == 3  # the decisions are pending again


@pytest.mark.gui
def test_label_new_images_and_heat_maps_on_cards(  # type: ignore[no-untyped-def]
        qtbot, window, tiny_dataset: Path, tiny_model_file: Path, tmp_path: Path) -> None:
    win, s = window, window.session
    _open(qtbot, win, tiny_dataset)
    new = tmp_path / "unlabelled"
    new.mkdir()
    for i, (colour, pattern) in enumerate((((200, 40, 40), "hstripes"),
                                           ((40, 180, 60), "vstripes"),
                                           ((40, 60, 200), "checker"))):
        make_image(colour, (48, 40), 500 + i, pattern).save(new / f"n{i}.jpg")
    new_before = tree_digest(new)
    panel = win.predict_panel
    win.tabs.setCurrentIndex(PREDICT)
    panel.load_model(tiny_model_file)
    assert drop_paths(panel, [new])
    qtbot.waitUntil(lambda: len(panel.predictions) == 3 and not panel._busy(), timeout=WAIT)

    # Heat maps over the cards when the box is ticked.
    panel.grid.resize(900, 400)
    qtbot.waitUntil(lambda: all(win.thumbnails.get(p.path) is not None
                                for p in panel.predictions), timeout=WAIT)
    panel.grid.viewport().repaint()
    plain = panel.grid.viewport().grab().toImage()
    panel.heat_box.setChecked(True)
    source = panel.grid.cards.heat_source
    qtbot.waitUntil(lambda: all(win.review.heat.get(source, p.path) is not None
                                for p in panel.predictions), timeout=WAIT)
    maps = [win.review.heat.get(source, p.path) for p in panel.predictions]
    assert all(m.error is None and m.grid.ndim == 2 for m in maps)
    # The tiny model's maps are one cell (32 px input), hot for its top class.
    assert all(m.grid.shape == (1, 1) and m.grid.max() == 1.0 for m in maps)
    panel.grid.viewport().repaint()
    assert panel.grid.viewport().grab().toImage() != plain
    panel.heat_box.setChecked(False)
    panel.grid.viewport().repaint()
    assert panel.grid.viewport().grab().toImage() == plain

    # Label these: least sure first; number keys and Space add them, X leaves one out.
    qtbot.mouseClick(panel.label_button, Qt.MouseButton.LeftButton)
    dialog = win.review.dialog
    review = dialog.review
    items = review.items
    assert [i.path for i in items] == [p.path for p in sorted(
        panel.predictions, key=lambda p: (p.confidence, str(p.path)))]
    n_train = len(s.dataset.train)
    names = review.classes
    qtbot.keyClick(review, Qt.Key.Key_2)
    qtbot.keyClick(review, Qt.Key.Key_Space)
    qtbot.keyClick(review, Qt.Key.Key_X)
    adds = s.corrections.corrections.additions
    assert adds == {items[0].path.absolute().as_posix(): names[1],
                    items[1].path.absolute().as_posix(): items[1].suggested}
    assert len(s.dataset.train) == n_train + 2
    assert "2 new images added" in win.audit_panel.bar.label.text()
    assert tree_digest(new) == new_before  # their folder is never written to
    dialog.close()


def test_an_overlay_is_hot_where_the_map_is() -> None:
    base = QPixmap(80, 40)
    base.fill(QColor(128, 128, 128))
    grid = np.zeros((2, 2), np.float32)
    grid[0, 0] = 1.0
    image = overlay_pixmap(base, HeatMap(Path("x.jpg"), grid)).toImage()
    hot, cold = image.pixelColor(2, 2), image.pixelColor(77, 37)
    assert hot.red() > 160 and hot.blue() < 110
    assert cold == QColor(128, 128, 128)
