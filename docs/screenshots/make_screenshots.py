"""Drives the window through a whole run and saves a screenshot of each panel.

Run under a display (or ``xvfb-run -s "-screen 0 1400x900x24"``)::

    python docs/screenshots/make_screenshots.py --data ../shared/data/flower_photos \\
        --weights-dir ../shared/weights --out docs/screenshots

The settings are the defaults of ``TrainConfig`` (weights from ``--weights-dir``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _window import pump_events

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--weights-dir", default=None)
    parser.add_argument("--out", default=Path(__file__).parent, type=Path)
    parser.add_argument("--tiny", action="store_true", help="tiny settings, to try the script")
    args = parser.parse_args()
    os.environ.setdefault("TLGUI_SETTINGS_DIR", tempfile.mkdtemp(prefix="tlgui-shots-"))
    os.environ.setdefault("TLGUI_DATA_DIR", tempfile.mkdtemp(prefix="tlgui-shots-data-"))

    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QApplication

    from tlgui.app import create_window
    from tlgui.core.config import PhaseConfig, TrainConfig
    from tlgui.core.events import EpochEnded
    from tlgui.gui.main_window import DATA, EVALUATE, MODEL, PREDICT, RUNS, TRAIN, MainWindow

    app, window = create_window([], restore_last=False)
    assert isinstance(window, MainWindow)
    win = window
    win.resize(1280, 820)
    win.move(0, 0)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()

    def pump(seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        pump_events(app, seconds, until)

    def shot(name: str, widget: object = None) -> None:
        pump(0.8)
        target = widget or win
        pix = target.grab()  # type: ignore[attr-defined]
        path = args.out / f"{name}.png"
        pix.save(str(path))
        print(f"[{time.monotonic() - t0:6.0f} s] {path}", flush=True)  # noqa: T201

    config = TrainConfig(weights_dir=args.weights_dir)
    if args.tiny:
        config = config.replace(image_size=96, batch_size=8, phase1=PhaseConfig(epochs=3),
                                phase2=PhaseConfig(epochs=2, learning_rate=1e-5))
    win.model_panel.set_config(config)
    pump(120, lambda: win.compute_info is not None)
    shot("01-start")

    s = win.session
    s.open_dataset(args.data)
    pump(300, lambda: s.dataset is not None)
    pump(600, lambda: s.model is not None and not s.busy)
    pump(5, lambda: len(win.thumbnails._pixmaps) >= 30)
    shot("02-dataset")

    win.tabs.setCurrentIndex(MODEL)
    shot("03-model")

    epochs: list[int] = []
    s.training_event.connect(lambda e: epochs.append(e.phase) if isinstance(e, EpochEnded)
                             else None)
    finished: list[str] = []
    s.training_finished.connect(lambda _r, how: finished.append(how))
    s.start_training()
    pump(3600, lambda: epochs.count(2) >= 2 or bool(finished))
    shot("04-training-live")
    pump(7200, lambda: bool(finished))
    win.tabs.setCurrentIndex(TRAIN)
    shot("05-training-done")
    first_run = s.result.run if s.result else None

    pump(600, lambda: s.evaluation is not None and not s.busy)
    win.tabs.setCurrentIndex(EVALUATE)
    pump(10, lambda: len(win.thumbnails._pixmaps) >= 60)
    shot("06-evaluate")

    out_dir = Path(tempfile.mkdtemp(prefix="tlgui-export-"))
    win.open_export_dialog()
    dialog = win.export_dialog
    dialog.move(win.mapToGlobal(QPoint(300, 250)))
    dialog.dest.setText(str(out_dir / "flowers.keras"))
    dialog.start()
    pump(600, lambda: dialog.result is not None)
    shot("07-export", dialog)
    exported = out_dir / "flowers.keras"
    dialog.accept()

    win.tabs.setCurrentIndex(PREDICT)
    panel = win.predict_panel
    pump(300, lambda: not panel._busy())
    panel.load_model(exported)
    pump(300, lambda: panel.model_path == exported and not panel._busy())
    names = s.dataset.class_names  # type: ignore[union-attr]
    picks = []
    for label in range(len(names)):
        picks += [v.path for v in s.dataset.validation if v.label == label][:3]  # type: ignore[union-attr]
    panel.handle_paths(picks)
    pump(300, lambda: len(panel.predictions) >= len(picks))
    pump(5, lambda: all(win.thumbnails._pixmaps.get(str(p)) for p in picks))
    shot("08-predict")

    # A second run, as a user tries one change: no fine-tuning. Then both in the Runs tab.
    win.tabs.setCurrentIndex(MODEL)
    win.model_panel.phase2.epochs.setValue(0)
    finished.clear()
    s.start_training()
    pump(7200, lambda: bool(finished))
    pump(600, lambda: s.evaluation is not None and not s.busy)
    second_run = s.result.run if s.result else None
    if first_run is not None and second_run is not None:
        from tlgui.core.run_catalog import set_label

        set_label(first_run, "Defaults", "Both phases, 160 px.")
        set_label(second_run, "No fine-tuning", "Phase 2 off: the new classifier only.")
        win.tabs.setCurrentIndex(RUNS)
        runs = win.runs_panel
        runs.refresh()
        runs.select_paths([first_run])
        shot("09-runs")
        runs.select_paths([first_run, second_run])
        runs.compare_selected()
        shot("10-compare")
    win.tabs.setCurrentIndex(DATA)
    win.close()
    print(f"done in {time.monotonic() - t0:.0f} s; runs {first_run}, {second_run}")  # noqa: T201
    QApplication.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
