"""The Runs tab through its widgets: listing, naming, deleting, comparing, opening runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLineEdit

from tests.gui.conftest import TINY
from tests.runfolders import make_run
from tlgui.core.config import PhaseConfig, TrainConfig
from tlgui.core.run_catalog import list_run_records, read_record
from tlgui.gui import dialogs
from tlgui.gui.main_window import MODEL, RUNS, TRAIN
from tlgui.gui.run_table_model import NAME, PHASE1, PHASE2, SIZE, STATE, RunTableModel
from tlgui.gui.runs_panel import COMPARE, LIST, RunsPanel

T0 = time.mktime((2026, 11, 30, 10, 0, 0, 0, 0, -1))
WAIT = 180_000
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def two_datasets(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A runs folder with two runs of ``flowers`` and two of ``cells``."""
    root, flowers, cells = tmp_path / "runs", tmp_path / "flowers", tmp_path / "cells"
    for d in (flowers, cells):
        (d / "a").mkdir(parents=True)
        (d / "a" / "img.png").write_bytes(b"an image")
    make_run(root, "r1-flowers", flowers, started_unix=T0, recalls=(1.0, 0.8, 0.6))
    make_run(root, "r2-cells", cells, started_unix=T0 + 100, state="cancelled",
             phases=((0.4, 0.5),))
    make_run(root, "r3-flowers", flowers, started_unix=T0 + 200, phases=((0.6, 0.7),),
             config=TrainConfig(weights="none", image_size=64,
                                phase2=PhaseConfig(epochs=0, learning_rate=1e-4)))
    make_run(root, "r4-cells", cells, started_unix=T0 + 300, state="failed", phases=(),
             model=False)
    return root, flowers, cells


@pytest.fixture
def panel(qtbot, two_datasets: tuple[Path, Path, Path]) -> RunsPanel:  # type: ignore[no-untyped-def]
    p = RunsPanel(root=two_datasets[0])
    qtbot.addWidget(p)
    p.resize(1000, 560)
    p.show()
    qtbot.waitExposed(p)
    return p


def names(p: RunsPanel) -> list[str]:
    return [p.model.index(r, NAME).data() for r in range(p.model.rowCount())]


def test_table_model_passes_qt_model_tester(qtmodeltester,  # type: ignore[no-untyped-def]
                                            two_datasets: tuple[Path, Path, Path]) -> None:
    model = RunTableModel()
    model.set_records(list_run_records(two_datasets[0]))
    qtmodeltester.check(model, force_py=True)
    model.sort(PHASE1, Qt.SortOrder.DescendingOrder)
    qtmodeltester.check(model, force_py=True)
    assert [model.index(r, PHASE1).data() for r in range(4)] == ["76.0%", "70.0%", "50.0%", "–"]


def test_this_dataset_first_and_the_toggle(qtbot, panel: RunsPanel,  # type: ignore[no-untyped-def]
                                           two_datasets: tuple[Path, Path, Path]) -> None:
    _, flowers, cells = two_datasets
    assert names(panel) == ["r4-cells", "r3-flowers", "r2-cells", "r1-flowers"]
    assert not panel.this_button.isEnabled() and panel.all_button.text() == "All runs (4)"
    panel.set_dataset(flowers)
    assert panel.this_button.isChecked() and panel.this_button.text() == "This dataset (2)"
    assert names(panel) == ["r3-flowers", "r1-flowers"]
    row = panel.model.row_of(two_datasets[0] / "r1-flowers")
    assert [panel.model.index(row, c).data() for c in (SIZE, PHASE1, PHASE2, STATE)] == [
        "32 px", "76.0%", "88.0%", "complete"]
    qtbot.mouseClick(panel.all_button, LEFT)
    assert names(panel) == ["r3-flowers", "r1-flowers", "r4-cells", "r2-cells"]
    failed = panel.model.index(panel.model.row_of(two_datasets[0] / "r4-cells"), STATE)
    assert failed.data() == "failed, no model" and "Out of memory" in failed.data(
        Qt.ItemDataRole.ToolTipRole)
    # One selected run is previewed: its curves and its scores per class.
    panel.select_paths([two_datasets[0] / "r1-flowers"])
    preview = panel.preview
    assert [e for e, _ in preview.plot.points["r1-flowers"]["val_accuracy"]] == [1, 2, 3, 4, 5]
    assert [preview.classes.model().index(r, 2).data() for r in range(3)] == [
        "100.0%", "80.0%", "60.0%"]
    assert "Evaluation: 80.0% of 30 validation images" in preview.summary.text()
    # A failed run has no model: Open is off; two selected runs can be compared.
    panel.select_paths([two_datasets[0] / "r4-cells"])
    assert not panel.open_button.isEnabled() and panel.again_button.isEnabled()
    assert not panel.compare_button.isEnabled()
    panel.select_paths([two_datasets[0] / "r4-cells", two_datasets[0] / "r2-cells"])
    assert panel.compare_button.isEnabled() and not panel.open_button.isEnabled()
    # Another dataset's runs are dimmed in the list of all runs.
    cell_row = panel.model.row_of(two_datasets[0] / "r2-cells")
    flower_row = panel.model.row_of(two_datasets[0] / "r1-flowers")
    fg = Qt.ItemDataRole.ForegroundRole
    assert panel.model.index(cell_row, NAME).data(fg) is not None
    assert panel.model.index(flower_row, NAME).data(fg) is None
    panel.set_dataset(cells)  # another dataset: the choice of scope stays
    assert names(panel)[:2] == ["r4-cells", "r2-cells"] and panel.model.rowCount() == 4
    panel.set_dataset(None)
    assert not panel.this_button.isEnabled() and panel.all_button.isChecked()


def test_rename_inline_and_with_the_dialog_persists(qtbot, panel: RunsPanel,  # type: ignore[no-untyped-def]
                                                    two_datasets: tuple[Path, Path, Path]) -> None:
    root = two_datasets[0]
    index = panel.model.index(panel.model.row_of(root / "r1-flowers"), NAME)
    panel.view.setFocus()
    panel.view.setCurrentIndex(index)
    panel.view.edit(index)
    editor = QApplication.focusWidget()
    assert isinstance(editor, QLineEdit) and editor.text() == "r1-flowers"
    editor.selectAll()
    qtbot.keyClicks(editor, "Baseline 32 px")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: (root / "r1-flowers" / "notes.json").is_file())  # Qt commits later
    assert json.loads((root / "r1-flowers" / "notes.json").read_text())["name"] == \
        "Baseline 32 px"
    assert index.data() == "Baseline 32 px"

    panel.select_paths([root / "r3-flowers"])
    qtbot.mouseClick(panel.rename_button, LEFT)
    dialog = panel.label_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.name.setText("No fine-tuning")
    dialog.note.setPlainText("Phase 2 off, 64 px.")
    dialog.accept()
    record = read_record(root / "r3-flowers")
    assert (record.label, record.note) == ("No fine-tuning", "Phase 2 off, 64 px.")
    # A new panel (as after a restart) shows both names.
    again = RunsPanel(root=root)
    qtbot.addWidget(again)
    again.refresh()
    assert {"Baseline 32 px", "No fine-tuning ✎"} <= set(names(again))


def test_delete_asks_first_and_removes_only_the_run(qtbot, panel: RunsPanel,  # type: ignore[no-untyped-def]
                                                    two_datasets: tuple[Path, Path, Path],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root, flowers, _ = two_datasets
    questions: list[str] = []
    answer = [False]

    def ask(parent: object, title: str, text: str) -> bool:
        questions.append(text)
        return answer[0]

    monkeypatch.setattr(dialogs, "ask", ask)
    panel.select_paths([root / "r1-flowers"])
    qtbot.mouseClick(panel.delete_button, LEFT)
    assert str(root / "r1-flowers") in questions[0] and "dataset is not touched" in questions[0]
    assert (root / "r1-flowers").is_dir() and panel.model.rowCount() == 4  # said no
    answer[0] = True
    qtbot.mouseClick(panel.delete_button, LEFT)
    assert not (root / "r1-flowers").exists()
    assert names(panel) == ["r4-cells", "r3-flowers", "r2-cells"]
    assert (flowers / "a" / "img.png").read_bytes() == b"an image"
    assert sorted(p.name for p in root.iterdir()) == ["r2-cells", "r3-flowers", "r4-cells"]


def test_compare_two_runs_shows_curves_scores_and_settings(
        qtbot, panel: RunsPanel, two_datasets: tuple[Path, Path, Path]) -> None:  # type: ignore[no-untyped-def]
    root = two_datasets[0]
    panel.select_paths([root / "r3-flowers", root / "r1-flowers"])
    qtbot.mouseClick(panel.compare_button, LEFT)
    assert panel.pages.currentIndex() == COMPARE
    view = panel.compare_view
    plot = view.plot
    assert [e for e, _ in plot.points["r3-flowers"]["val_accuracy"]] == [1, 2]
    assert [e for e, _ in plot.points["r1-flowers"]["val_accuracy"]] == [1, 2, 3, 4, 5]
    assert plot.boundaries == {"r1-flowers": 3.5}
    assert "r3-flowers" in view.legend.text() and "r1-flowers" in view.legend.text()
    scores = view.scores
    rows = {scores.verticalHeaderItem(r).text(): [scores.item(r, c).text() for c in range(2)]
            for r in range(scores.rowCount())}
    # Columns in the order the runs started: the older run is 1.
    assert rows["Phase 1 best"] == ["76.0%", "70.0%"]
    assert rows["Phase 2 best"] == ["88.0%", "–"]
    assert rows["Recall: red"] == ["60.0%", "–"] and rows["Recall: blue"] == ["100.0%", "–"]
    head = scores.horizontalHeaderItem(0)
    assert head.text() == "1" and head.toolTip().startswith("r1-flowers")
    settings = view.settings
    diffs = {settings.verticalHeaderItem(r).text(): [settings.item(r, c).text()
                                                       for c in range(2)]
             for r in range(settings.rowCount())}
    assert diffs == {"Image size": ["32", "64"], "Phase 2 epochs": ["10", "0"]}
    qtbot.mouseClick(view.back_button, LEFT)
    assert panel.pages.currentIndex() == LIST


@pytest.mark.gui
def test_runs_tab_compares_opens_and_trains_again_real_runs(  # type: ignore[no-untyped-def]
        qtbot, window, tiny_dataset: Path) -> None:
    win, s = window, window.session
    s.open_dataset(tiny_dataset)
    qtbot.waitUntil(lambda: s.model is not None and not s.busy, timeout=WAIT)
    for lr in (1e-3, 3e-3):
        win.model_panel.set_config(TINY.replace(phase1=PhaseConfig(epochs=2, learning_rate=lr)))
        with qtbot.waitSignal(s.evaluation_ready, timeout=WAIT):
            assert s.start_training()
        qtbot.waitUntil(lambda: not s.busy, timeout=WAIT)
    win.tabs.setCurrentIndex(RUNS)
    panel = win.runs_panel
    assert panel.this_button.isChecked() and panel.model.rowCount() == 2
    runs = [panel.model.record(r).path for r in range(2)]
    assert all(panel.model.record(r).has_evaluation for r in range(2))
    panel.select_paths(runs)
    qtbot.mouseClick(panel.compare_button, LEFT)
    view = panel.compare_view
    assert sorted(len(p["val_accuracy"]) for p in view.plot.points.values()) == [3, 3]
    scores = view.scores
    recall_rows = [r for r in range(scores.rowCount())
                   if scores.verticalHeaderItem(r).text().startswith("Recall: ")]
    assert len(recall_rows) == 3
    assert all(scores.item(r, c).text().endswith("%") for r in recall_rows for c in range(2))
    settings = view.settings
    assert [settings.verticalHeaderItem(r).text() for r in range(settings.rowCount())] == [
        "Phase 1 learning rate"]
    assert {settings.item(0, c).text() for c in range(2)} == {"0.001", "0.003"}
    qtbot.mouseClick(view.back_button, LEFT)

    # Open the older run: the engine loads its model.
    older = runs[1]
    panel.select_paths([older])
    with qtbot.waitSignal(s.run_opened, timeout=WAIT) as opened:
        qtbot.mouseClick(panel.open_button, LEFT)
    assert opened.args[0].run == older
    assert s.model is not None and s.model.run == older and s.model.trained
    assert win.tabs.currentIndex() == TRAIN, "its curves show"
    qtbot.waitUntil(lambda: not s.busy, timeout=WAIT)
    assert panel.current_run == older

    # Train again from it: its settings come back into the Model tab.
    win.model_panel.set_config(TINY)
    qtbot.mouseClick(panel.again_button, LEFT)
    assert win.tabs.currentIndex() == MODEL
    assert win.model_panel.config().phase1.learning_rate == 1e-3
    qtbot.waitUntil(lambda: not s.busy and s.model is not None, timeout=WAIT)
    assert s.train_block_reason() == ""


def test_the_preview_gives_the_curves_half_the_width(  # type: ignore[no-untyped-def]
        qtbot, two_datasets: tuple[Path, Path, Path]) -> None:
    # As in the window: the tab is built hidden, and the plot is made on first use.
    p = RunsPanel(root=two_datasets[0])
    qtbot.addWidget(p)
    p.resize(1200, 700)
    p.select_paths([two_datasets[0] / "r1-flowers"])
    p.show()
    qtbot.waitExposed(p)
    preview = p.preview
    qtbot.waitUntil(lambda: preview.plot.width() >= 0.35 * preview.width(), timeout=2000)


def test_the_newest_run_is_shown_without_a_click(  # type: ignore[no-untyped-def]
        panel: RunsPanel, two_datasets: tuple[Path, Path, Path]) -> None:
    assert [r.path.name for r in panel.selected()] == ["r4-cells"]
    assert panel.preview.details is not None and panel.rename_button.isEnabled()
