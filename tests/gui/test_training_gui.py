"""Training from the window: cancel mid-phase, a responsive event loop, closing while training."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import QElapsedTimer, Qt, QTimer

from tests.gui.conftest import TINY, drop_paths
from tlgui.core.atomic import TEMP_PREFIX
from tlgui.core.config import PhaseConfig
from tlgui.core.events import EpochEnded
from tlgui.core.runs import RunFolder
from tlgui.gui import dialogs
from tlgui.gui.workers import running_jobs

WAIT = 120_000
LONG = TINY.replace(phase1=PhaseConfig(epochs=400, early_stopping_patience=None),
                    phase2=PhaseConfig(epochs=400, learning_rate=1e-5,
                                       early_stopping_patience=None))


def _ready(qtbot, win, dataset: Path) -> None:  # type: ignore[no-untyped-def]
    assert drop_paths(win, [dataset])
    qtbot.waitUntil(lambda: win.session.model is not None and not win.session.busy,
                    timeout=WAIT)


def _first_epoch(qtbot, win) -> None:  # type: ignore[no-untyped-def]
    epochs: list[object] = []
    win.session.training_event.connect(
        lambda e: epochs.append(e) if isinstance(e, EpochEnded) else None)
    qtbot.mouseClick(win.training_panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(epochs) >= 2, timeout=WAIT)


@pytest.mark.gui
def test_cancel_mid_phase_leaves_the_window_usable(qtbot, window, tiny_dataset: Path) -> None:  # type: ignore[no-untyped-def]
    win = window
    win.model_panel.set_config(LONG)
    _ready(qtbot, win, tiny_dataset)
    _first_epoch(qtbot, win)
    assert win.training_panel.cancel_button.isEnabled()
    assert not win.training_panel.start_button.isEnabled()
    assert not win.model_panel.backbones.isEnabled(), "settings locked while training"
    with qtbot.waitSignal(win.session.training_finished, timeout=WAIT) as finished:
        qtbot.mouseClick(win.training_panel.cancel_button, Qt.MouseButton.LeftButton)
    result, outcome = finished.args
    assert outcome == "cancelled" and result.cancelled
    assert 2 <= len(result.history) < 400
    assert RunFolder(result.run).read_status()["state"] == "cancelled"
    # The cancelled run's model is evaluated next; the layer views follow the session on
    # the next turn of the event loop, so wait for what the user sees, not for the flag.
    qtbot.waitUntil(lambda: not win.session.busy and win.model_panel.layers.model.editable,
                    timeout=WAIT)
    assert not [j for j in running_jobs() if j.name == "train"]
    # Usable: Train is enabled, layers can be edited, and a short run completes.
    assert win.training_panel.start_button.isEnabled()
    assert "Cancelled" in win.training_panel.progress_label.text()
    win.model_panel.phase1.epochs.setValue(1)
    win.model_panel.phase2.epochs.setValue(1)
    with qtbot.waitSignal(win.session.training_finished, timeout=WAIT) as again:
        qtbot.mouseClick(win.training_panel.start_button, Qt.MouseButton.LeftButton)
    assert again.args[1] == "succeeded"
    assert [e for e, _ in win.training_panel.plot.points["accuracy"]] == [1, 2]


@pytest.mark.gui
def test_event_loop_stays_responsive_during_training(qtbot, window, tiny_dataset: Path,  # type: ignore[no-untyped-def]
                                                     record_property) -> None:
    win = window
    win.model_panel.set_config(TINY.replace(
        phase1=PhaseConfig(epochs=6, early_stopping_patience=None),
        phase2=PhaseConfig(epochs=4, learning_rate=1e-5, early_stopping_patience=None)))
    _ready(qtbot, win, tiny_dataset)
    clock = QElapsedTimer()
    gaps: list[int] = []

    def tick() -> None:
        if clock.isValid():
            gaps.append(clock.restart())
        else:
            clock.start()

    probe = QTimer()
    probe.setInterval(5)
    probe.timeout.connect(tick)
    probe.start()
    t0 = time.monotonic()
    with qtbot.waitSignal(win.session.training_finished, timeout=WAIT) as finished:
        qtbot.mouseClick(win.training_panel.start_button, Qt.MouseButton.LeftButton)
    probe.stop()
    assert finished.args[1] == "succeeded"
    longest = max(gaps)
    gaps.sort()
    p99 = gaps[int(len(gaps) * 0.99)]
    print(f"\nevent loop during {time.monotonic() - t0:.1f} s of training: longest gap "
          f"{longest} ms, 99th percentile {p99} ms, {len(gaps)} ticks (goal: under 50 ms)")
    record_property("event_loop_longest_gap_ms", longest)
    record_property("event_loop_p99_gap_ms", p99)
    assert len(gaps) > 20
    # Goal 50 ms; TensorFlow holds the GIL while it instantiates a new graph (once per
    # phase), and this machine is shared, so the bound is generous.
    assert p99 < 250, f"the event loop lagged {p99} ms at the 99th percentile"
    assert longest < 2500, f"the GUI froze for {longest} ms"


@pytest.mark.gui
def test_closing_during_training_asks_cancels_and_waits(qtbot, window, tiny_dataset: Path,  # type: ignore[no-untyped-def]
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    win = window
    win.model_panel.set_config(LONG)
    _ready(qtbot, win, tiny_dataset)
    _first_epoch(qtbot, win)
    questions: list[str] = []
    monkeypatch.setattr(dialogs, "ask", lambda parent, title, text: questions.append(title)
                        or False)
    assert not win.close(), "answering No keeps the window open"
    assert win.session.busy == "training" and win.isVisible()
    monkeypatch.setattr(dialogs, "ask", lambda parent, title, text: questions.append(title)
                        or True)
    run = None

    def remember(result: object, outcome: str) -> None:
        nonlocal run
        run = getattr(result, "run", None)

    win.session.training_finished.connect(remember)
    assert win.close()
    assert questions == ["Training is running", "Training is running"]
    assert not running_jobs(), "close waits for every worker"
    assert run is not None
    assert RunFolder(run).read_status()["state"] == "cancelled"
    assert not [p for p in run.iterdir() if p.name.startswith(TEMP_PREFIX)], \
        "no half-written file is left"
