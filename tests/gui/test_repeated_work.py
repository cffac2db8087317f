"""The window for repeated work: reopening a run after a restart, and the rough edges of
issue 13 that a new user tripped over (cancel before any epoch, progress labels, plot axes,
the plain layer view, layouts at 1024 x 700)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractScrollArea, QScrollArea

from tests.gui.conftest import TINY, drop_paths
from tests.imagegen import COLORS, PATTERNS, make_dataset
from tlgui.core.config import PhaseConfig
from tlgui.core.events import EpochEnded, PhaseStarted, StageProgress
from tlgui.core.layer_tree import block_state
from tlgui.gui.main_window import EVALUATE, MODEL, TRAIN, MainWindow

WAIT = 240_000
CHECK = Qt.ItemDataRole.CheckStateRole
SHORT = TINY.replace(phase1=PhaseConfig(epochs=2), phase2=PhaseConfig(epochs=1,
                                                                      learning_rate=1e-5))


def _ready(qtbot, win, dataset: Path) -> None:  # type: ignore[no-untyped-def]
    assert drop_paths(win, [dataset])
    qtbot.waitUntil(lambda: win.session.model is not None and not win.session.busy,
                    timeout=WAIT)


def _train(qtbot, win) -> tuple[object, str]:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(win.session.training_finished, timeout=WAIT) as done:
        qtbot.mouseClick(win.training_panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.session.busy and win.session.evaluation is not None,
                    timeout=WAIT)
    return done.args[0], done.args[1]


@pytest.mark.gui
def test_a_restart_reopens_the_last_run_as_it_was(qtbot, settings_dir: Path,  # type: ignore[no-untyped-def]
                                                  tiny_dataset: Path, engine) -> None:
    first = MainWindow(engine=engine)
    qtbot.addWidget(first)
    first.model_panel.set_config(SHORT.replace(fine_tune_at=None))
    first.show()
    first.start_background_setup()
    _ready(qtbot, first, tiny_dataset)
    # Untick the top block, recompile, train: all of that must come back.
    tree = first.session.model.tree
    top = len(tree.blocks) - 2
    first.model_panel.layers.blocks.setData(first.model_panel.layers.blocks.index(top, 0),
                                            Qt.CheckState.Unchecked.value, CHECK)
    assert block_state(tree, top) == "unchecked"
    first.session.recompile()
    qtbot.waitUntil(lambda: not first.session.busy
                    and not first.session.model.needs_recompile, timeout=WAIT)
    result, outcome = _train(qtbot, first)
    assert outcome == "succeeded"
    run = result.run
    points = list(first.training_panel.plot.points["val_accuracy"])
    accuracy = first.session.evaluation.accuracy
    first.close()

    second = MainWindow(engine=engine, restore_last=True)
    qtbot.addWidget(second)
    second.show()
    second.start_background_setup()
    s = second.session
    qtbot.waitUntil(lambda: s.model is not None and s.model.trained and not s.busy
                    and s.evaluation is not None, timeout=WAIT)
    assert s.model.run == run and s.dataset is not None and s.dataset.root == tiny_dataset
    assert second.training_panel.plot.points["val_accuracy"] == points
    assert second.training_panel.plot.best_epoch is not None
    assert s.evaluation.accuracy == pytest.approx(accuracy)
    assert second.evaluate_panel.confusion.model().rowCount() == 3
    assert second.model_panel.config().phase1.epochs == 2
    assert block_state(s.model.tree, top) == "unchecked", "the ticks came back"
    assert second.export_action.isEnabled(), "the reopened model can be exported"
    assert second.predict_panel.trained_model == run / "model.keras"
    assert "Opened run" in second.training_panel.progress_label.text()
    second.close()


@pytest.mark.gui
def test_cancel_before_any_epoch_leaves_nothing_to_export(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    win = window
    win.model_panel.set_config(SHORT)
    data = make_dataset(tmp_path / "many", per_class=60, size=(64, 64))
    _ready(qtbot, win, data)
    win.session.training_event.connect(
        lambda e: win.session.cancel_training() if isinstance(e, StageProgress)
        and e.stage in ("decode", "features") else None)
    with qtbot.waitSignal(win.session.training_finished, timeout=WAIT) as done:
        qtbot.mouseClick(win.training_panel.start_button, Qt.MouseButton.LeftButton)
    result, outcome = done.args
    assert outcome == "cancelled"
    assert result is None or not result.trained
    qtbot.waitUntil(lambda: not win.session.busy, timeout=WAIT)
    text = win.training_panel.progress_label.text()
    assert "nothing was trained" in text and "no model" in text
    assert not win.export_action.isEnabled()
    assert not win.training_panel.open_run_button.isEnabled()
    assert "keeps" not in win.training_panel.summary_label.text()


@pytest.mark.gui
def test_progress_names_stage_phase_and_time_left(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    panel = window.training_panel
    panel.training_started(TINY.replace(phase1=PhaseConfig(epochs=3),
                                        phase2=PhaseConfig(epochs=4)))
    assert panel.progress_label.text().startswith("Preparing")
    panel.handle_event(StageProgress("features", 1, 10, "Computing frozen features"))
    assert panel.progress_label.text().startswith("Phase 1 of 2 · computing the frozen")
    assert "estimating the time left" in panel.progress_label.text()
    panel.stage_t0 -= 5  # as if the first step took 5 s
    panel.handle_event(StageProgress("features", 5, 10, "Computing frozen features"))
    assert "left in this step" in panel.progress_label.text()
    panel.handle_event(PhaseStarted(2, 4, 4, 1e-4, 1000))
    text = panel.progress_label.text()
    assert text.startswith("Phase 2 of 2 (fine-tuning) · epoch 1 of 4"), text
    assert "epoch 3 of 3" not in text


@pytest.mark.gui
def test_plot_axes_say_what_they_show(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    panel = window.training_panel
    plot = panel.plot
    panel.training_started(TINY)
    assert not panel.save_button.isEnabled(), "nothing to save yet"
    ticks = plot.loss_plot.getAxis("bottom").tickValues(*plot.acc_plot.viewRange()[0], 600)
    assert all(float(v).is_integer() for _, values in ticks for v in values)
    panel.handle_event(EpochEnded(1, 1, 0.0004, 0.5, 0.0007, 0.6, 1.0))
    assert panel.save_button.isEnabled()
    axis = plot.loss_plot.getAxis("left")
    assert axis.labelText == "Loss" and axis.autoSIPrefixScale == 1.0
    assert "x0.001" not in axis.labelString()


@pytest.mark.gui
def test_plain_layer_view_blocks_and_fine_tune_from_here(qtbot, window,  # type: ignore[no-untyped-def]
                                                         tiny_dataset: Path) -> None:
    win = window
    win.model_panel.set_config(SHORT.replace(fine_tune_at=None))
    _ready(qtbot, win, tiny_dataset)
    win.tabs.setCurrentIndex(MODEL)
    layers = win.model_panel.layers
    assert layers.plain and layers.views.currentWidget() is layers.block_view
    tree = win.session.model.tree
    states = [block_state(tree, b) for b in range(len(tree.blocks))]
    assert "partial" not in states, "the default start is a block's first layer"
    assert states[0] == "unchecked" and states[-1] == "checked"
    assert not layers.custom_label.isVisible()
    # Fine-tune from the 4th block: it and every block above train, those below do not.
    layers.fine_tune_from_block(4)
    assert [block_state(tree, b) for b in range(len(tree.blocks))][3:6] == \
        ["unchecked", "checked", "checked"]
    qtbot.waitUntil(layers.banner.isVisible, timeout=1000)  # an edit needs a recompile
    assert "Block" in layers.fine_tune_box.currentText()
    # Unticking one block in the middle is "your own ticks".
    layers.blocks.setData(layers.blocks.index(6, 0), Qt.CheckState.Unchecked.value, CHECK)
    assert block_state(tree, 6) == "unchecked"
    qtbot.waitUntil(layers.custom_label.isVisible, timeout=1000)
    # The advanced view shows the same ticks, and its columns fit at 1024 px.
    win.resize(1024, 700)
    layers.view_box.setCurrentIndex(1)
    qtbot.wait(50)
    header = layers.view.header()
    assert sum(header.sectionSize(c) for c in range(4)) <= layers.view.viewport().width() + 1


@pytest.mark.gui
def test_layouts_fit_1024_by_700(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    COLORS.update({"purple": (140, 40, 160), "orange": (230, 130, 30)})
    PATTERNS.update({"purple": "hstripes", "orange": "checker"})
    data = make_dataset(tmp_path / "six", classes=("red", "green", "blue", "yellow", "purple",
                                                   "orange"), per_class=6)
    win = window
    win.resize(1024, 700)
    win.model_panel.set_config(SHORT.replace(phase1=PhaseConfig(epochs=1),
                                             phase2=PhaseConfig(epochs=0)))
    _ready(qtbot, win, data)
    win.tabs.setCurrentIndex(MODEL)
    qtbot.wait(100)
    scroll = win.model_panel.findChild(QScrollArea)
    assert not scroll.verticalScrollBar().isVisible(), "the settings fit without scrolling"
    assert scroll.widget().minimumSizeHint().width() <= scroll.viewport().width()
    _train(qtbot, win)
    win.tabs.setCurrentIndex(EVALUATE)
    qtbot.wait(100)
    table: QAbstractScrollArea = win.evaluate_panel.metrics
    assert win.evaluate_panel.metrics.model().rowCount() == 6
    assert not table.verticalScrollBar().isVisible(), "6 classes need no scrolling"
    win.tabs.setCurrentIndex(TRAIN)
