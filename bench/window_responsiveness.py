"""How the window behaves while the engine works: stalls, start-up, closing, crashes, memory.

Drives the real window (offscreen) through a whole default training run with evaluation
and measures, in the window's own process:
  - the gaps of a 5 ms QTimer in the GUI thread (longest, 99th percentile);
  - the window process's memory before and after the run;
  - how long closing takes while a training runs, and whether a process stays behind;
  - how long the window takes to say so when the engine is killed mid-run;
  - window on screen after launch (a fresh interpreter each time, several times).

Usage (add ``--limit-per-class N`` for a shorter run)::

    QT_QPA_PLATFORM=offscreen python bench/window_responsiveness.py \\
        --data ../shared/data/flower_photos --weights-dir ../shared/weights

Runs against any tlgui checkout that has ``tlgui.gui.main_window`` (the in-process engine
of older versions too), so two versions can be compared side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STARTUP = """
import time
t0 = time.perf_counter()
from PySide6.QtTest import QTest
from tlgui.app import create_window
app, win = create_window([], restore_last=False)
QTest.qWaitForWindowExposed(win, 10000)
print((time.perf_counter() - t0) * 1000, flush=True)
win.close()
"""


def startup_ms(runs: int) -> list[float]:
    """Launch to window exposed, interpreter start excluded (import and build included)."""
    out = []
    for _ in range(runs):
        env = dict(os.environ, TLGUI_SETTINGS_DIR=tempfile.mkdtemp())
        done = subprocess.run([sys.executable, "-c", STARTUP], capture_output=True, text=True,
                              env=env, timeout=120, check=True)
        out.append(float(done.stdout.strip().splitlines()[-1]))
    return out


def subset(data: Path, per_class: int | None) -> Path:
    """The data set, or a copy of its first ``per_class`` images of each class."""
    if not per_class:
        return data
    out = Path(tempfile.mkdtemp(prefix="tlgui-bench-")) / data.name
    for cls in sorted(p for p in data.iterdir() if p.is_dir()):
        (out / cls.name).mkdir(parents=True)
        for f in sorted(cls.iterdir())[:per_class]:
            os.symlink(f.resolve(), out / cls.name / f.name)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--weights-dir", default=None)
    parser.add_argument("--limit-per-class", type=int, default=None)
    parser.add_argument("--startup-runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    home = Path(tempfile.mkdtemp(prefix="tlgui-bench-home-"))
    for var, sub in (("TLGUI_SETTINGS_DIR", "s"), ("TLGUI_DATA_DIR", "d"),
                     ("TLGUI_CACHE_DIR", "c"), ("TLGUI_LOG_DIR", "l")):
        os.environ[var] = str(home / sub)

    import psutil
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from tlgui.app import create_window
    from tlgui.core.config import PhaseConfig, TrainConfig
    from tlgui.core.events import EpochEnded

    figures: dict[str, object] = {}
    figures["startup_ms"] = startup_ms(args.startup_runs)
    app, win = create_window([], restore_last=False)
    s = win.session  # type: ignore[attr-defined]

    def pump(seconds: float, until: object = lambda: False) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not until():  # type: ignore[operator]
            app.processEvents()
            time.sleep(0.002)

    def model_ready() -> bool:
        model = getattr(s, "model", None) or getattr(s, "built", None)
        return model is not None and not s.busy

    config = TrainConfig(weights_dir=args.weights_dir)
    win.model_panel.set_config(config)  # type: ignore[attr-defined]
    pump(120, lambda: win.compute_info is not None)  # type: ignore[attr-defined]
    s.open_dataset(subset(args.data, args.limit_per_class))
    pump(900, model_ready)

    # 1. A whole default run with evaluation, a 5 ms timer ticking in the GUI thread.
    clock, gaps = QElapsedTimer(), []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: gaps.append(clock.restart()) if clock.isValid()
                          else clock.start())
    rss_before = psutil.Process().memory_info().rss
    done: list[str] = []
    s.training_finished.connect(lambda _r, outcome: done.append(outcome))
    timer.start()
    t0 = time.monotonic()
    s.start_training()
    pump(7200, lambda: bool(done))
    pump(1800, lambda: s.evaluation is not None and not s.busy)
    run_s = time.monotonic() - t0
    timer.stop()
    pump(2)
    gaps.sort()
    figures.update(
        run_outcome=done[0] if done else "timeout", run_seconds=round(run_s, 1),
        longest_gap_ms=gaps[-1], p99_gap_ms=gaps[int(len(gaps) * 0.99)], ticks=len(gaps),
        window_rss_growth_mb=round((psutil.Process().memory_info().rss - rss_before)
                                   / 2**20, 1))

    # 2. The engine killed mid-run: how long until the window says so.
    engine = getattr(win, "engine", None)
    if engine is not None:
        win.model_panel.set_config(config.replace(  # type: ignore[attr-defined]
            phase1=PhaseConfig(epochs=200, early_stopping_patience=None)))
        epochs: list[object] = []
        s.training_event.connect(lambda e: epochs.append(e) if isinstance(e, EpochEnded)
                                 else None)
        done.clear()
        s.start_training()
        pump(900, lambda: bool(epochs))
        t_kill = time.monotonic()
        os.kill(engine.client.pid, signal.SIGKILL)
        pump(30, lambda: bool(done))
        figures["kill_shown_ms"] = round((time.monotonic() - t_kill) * 1000)
        pump(5)

    # 3. Closing while training.
    from tlgui.gui import dialogs

    dialogs.ask = lambda *a, **k: True  # type: ignore[assignment]
    epochs_2: list[object] = []
    s.training_event.connect(lambda e: epochs_2.append(e) if isinstance(e, EpochEnded)
                             else None)
    win.model_panel.set_config(config.replace(  # type: ignore[attr-defined]
        phase1=PhaseConfig(epochs=200, early_stopping_patience=None)))
    pump(900, model_ready)
    s.start_training()
    pump(900, lambda: bool(epochs_2))
    children = psutil.Process().children(recursive=True)
    t_close = time.monotonic()
    win.close()
    figures["close_ms"] = round((time.monotonic() - t_close) * 1000)
    time.sleep(0.5)
    figures["processes_left"] = sum(1 for c in children if c.is_running()
                                    and c.status() != psutil.STATUS_ZOMBIE)
    QApplication.processEvents()
    print(json.dumps(figures, indent=2))  # noqa: T201
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))
    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
