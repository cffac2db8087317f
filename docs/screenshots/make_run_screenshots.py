# ruff: noqa: T201
"""Trains a few real runs on part of a photo folder, then shoots the Runs tab and a comparison.

    python docs/screenshots/make_run_screenshots.py --data ../shared/data/flower_photos \\
        --weights-dir ../shared/weights --out docs/screenshots

The runs differ the way a user's do (image size, fine-tuning on or off, its learning
rate, one stopped early); each is evaluated and named, as in the window. The photos are
copied (``--per-class`` of each class) into a folder beside ``TLGUI_DATA_DIR``: nothing is
written into ``--data``. Runs go to a temporary ``TLGUI_DATA_DIR`` unless one is set.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from _window import pump_events

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

RUNS = (  # label, note, changes to the baseline, stop after this many epochs
    ("Baseline", "Defaults at 160 px.", {}, None),
    ("Small images", "96 px: faster, a little less accurate?", {"image_size": 96}, None),
    ("No fine-tuning", "Phase 2 off: the new classifier only.", {"phase2_epochs": 0}, None),
    ("Fast fine-tuning", "Phase 2 learning rate 1e-3 (ten times the default).",
     {"phase2_lr": 1e-3}, None),
    ("", "", {"image_size": 128}, 3),
)


def subset(data: Path, dest: Path, per_class: int) -> Path:
    """Copies the first ``per_class`` images of each class folder of ``data``."""
    for folder in sorted(p for p in data.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg",
                                                                          ".png"))
        (dest / folder.name).mkdir(parents=True, exist_ok=True)
        for f in files[:per_class]:
            shutil.copy2(f, dest / folder.name / f.name)
    return dest


def train_runs(data: Path, weights_dir: str | None, epochs: tuple[int, int]) -> None:
    """Trains, evaluates and names each run of ``RUNS``."""
    from tlgui.core.atomic import atomic_write_json
    from tlgui.core.config import PhaseConfig, TrainConfig
    from tlgui.core.dataset import scan
    from tlgui.core.evaluate import evaluate_model
    from tlgui.core.events import EpochEnded, Event
    from tlgui.core.metrics import evaluation_to_data
    from tlgui.core.run_catalog import set_label
    from tlgui.core.runs import EVALUATION_FILE

    base = TrainConfig(weights_dir=weights_dir, image_size=160, batch_size=32,
                       phase1=PhaseConfig(epochs=epochs[0], learning_rate=1e-3),
                       phase2=PhaseConfig(epochs=epochs[1], learning_rate=1e-4))
    for label, note, change, stop_after in RUNS:
        config = base.replace(
            image_size=change.get("image_size", base.image_size),
            phase2=PhaseConfig(epochs=int(change.get("phase2_epochs", epochs[1])),
                               learning_rate=float(change.get("phase2_lr", 1e-4))))
        ds = scan(data, config.split)
        cancel = threading.Event()
        done: list[int] = []

        def report(event: Event, done: list[int] = done, cancel: threading.Event = cancel,
                   stop_after: int | None = stop_after) -> None:
            if isinstance(event, EpochEnded):
                done.append(event.epoch)
                print(f"  epoch {event.epoch}: val_acc {event.val_accuracy:.3f}", flush=True)
                if stop_after is not None and len(done) >= stop_after:
                    cancel.set()

        from tlgui.core.training import run_training

        t0 = time.monotonic()
        print(f"{label or 'stopped run'}: {config.image_size} px", flush=True)
        result = run_training(ds, config, report, cancel)
        assert result.run is not None
        if not result.cancelled:
            ev = evaluate_model(result.model.model, result.model.image_size, ds)
            atomic_write_json(result.run.path / EVALUATION_FILE, evaluation_to_data(ev))
        if label:
            set_label(result.run.path, label, note)
        print(f"  {result.run.path.name} in {time.monotonic() - t0:.0f} s", flush=True)
        time.sleep(1.1)  # run folders are named by the second


def shoot(data: Path, out: Path, weights_dir: str | None) -> None:
    """Shoots the Runs tab and the comparison of four runs at 1280×820."""
    from PySide6.QtWidgets import QApplication

    from tlgui.app import create_window
    from tlgui.core.config import TrainConfig
    from tlgui.gui.main_window import RUNS as RUNS_TAB
    from tlgui.gui.main_window import MainWindow

    app, window = create_window([], restore_last=False)
    assert isinstance(window, MainWindow)
    win = window
    win.resize(1280, 820)
    win.model_panel.set_config(TrainConfig(weights_dir=weights_dir))

    def pump(seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        pump_events(app, seconds, until)

    def shot(name: str) -> None:
        pump(0.8)
        path = out / f"{name}.png"
        win.grab().save(str(path))
        print(path, flush=True)

    pump(120, lambda: win.compute_info is not None)
    s = win.session
    s.open_dataset(data)
    pump(300, lambda: s.dataset is not None and s.model is not None and not s.busy)
    win.tabs.setCurrentIndex(RUNS_TAB)
    panel = win.runs_panel
    panel.refresh()
    records = [panel.model.record(r) for r in range(panel.model.rowCount())]
    by_name = {r.name: r.path for r in records if r is not None}
    panel.select_paths([by_name["Baseline"]])
    shot("09-runs")
    panel.select_paths([by_name[n] for n in ("Baseline", "Small images", "No fine-tuning",
                                             "Fast fine-tuning")])
    panel.compare_selected()
    shot("10-compare")
    win.close()
    QApplication.processEvents()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--weights-dir", default=None)
    parser.add_argument("--out", default=Path(__file__).parent, type=Path)
    parser.add_argument("--per-class", type=int, default=80)
    parser.add_argument("--epochs", type=int, nargs=2, default=(5, 4),
                        metavar=("PHASE1", "PHASE2"))
    parser.add_argument("--skip-training", action="store_true",
                        help="shoot the runs already in TLGUI_DATA_DIR")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tlgui-run-shots-"))
    for var, sub in (("TLGUI_SETTINGS_DIR", "settings"), ("TLGUI_DATA_DIR", "data"),
                     ("TLGUI_CACHE_DIR", "cache")):
        os.environ.setdefault(var, str(work / sub))
    data = Path(os.environ["TLGUI_DATA_DIR"]).parent / args.data.name
    if not args.skip_training:
        subset(args.data, data, args.per_class)
        train_runs(data, args.weights_dir, tuple(args.epochs))  # type: ignore[arg-type]
    args.out.mkdir(parents=True, exist_ok=True)
    shoot(data, args.out, args.weights_dir)
    print(f"runs in {os.environ['TLGUI_DATA_DIR']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
