"""Screenshots of the Data tab (class grid) and the Predict tab (unsure cards) at two sizes.

Trains a quick head-only model (96 px, 2 epochs, ImageNet MobileNetV2) on ``--data``,
then classifies a few validation images per class, an unreadable file and an empty
folder, with the unsure threshold at ``--unsure`` percent::

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_predict_data_shots.py \\
        --data ../shared/data/flower_photos --weights-dir ../shared/weights
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from _window import pump_events

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
SIZES = {"1920": (1920, 1080), "1024": (1024, 700)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--weights-dir", default=None)
    parser.add_argument("--out", default=Path(__file__).parent, type=Path)
    parser.add_argument("--unsure", type=int, default=70, help="threshold in percent")
    args = parser.parse_args()
    for var in ("TLGUI_SETTINGS_DIR", "TLGUI_DATA_DIR"):
        os.environ.setdefault(var, tempfile.mkdtemp(prefix="tlgui-shots-"))

    from PySide6.QtWidgets import QApplication

    from tlgui.app import create_window
    from tlgui.core.config import PhaseConfig, TrainConfig
    from tlgui.gui.main_window import DATA, PREDICT, MainWindow

    app, window = create_window([], restore_last=False)
    assert isinstance(window, MainWindow)
    win = window
    args.out.mkdir(parents=True, exist_ok=True)

    def pump(seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        pump_events(app, seconds, until)

    def shots(name: str) -> None:
        for label, (w, h) in SIZES.items():
            win.resize(w, h)
            pump(1.5)
            pump(10, lambda: not win.thumbnails._requested)
            pump(0.5)
            path = args.out / f"{name}-{label}.png"
            win.grab().save(str(path))
            print(f"{path}", flush=True)  # noqa: T201

    win.move(0, 0)
    win.resize(*SIZES["1920"])
    win.model_panel.set_config(TrainConfig(
        weights_dir=args.weights_dir, image_size=96, batch_size=32,
        phase1=PhaseConfig(epochs=2, learning_rate=1e-3), phase2=PhaseConfig(epochs=0)))
    pump(120, lambda: win.compute_info is not None)
    s = win.session
    s.open_dataset(args.data)
    pump(300, lambda: s.dataset is not None)
    pump(600, lambda: s.model is not None and not s.busy)
    win.dataset_panel.class_view.selectRow(1)
    shots("11-data-class-grid")

    s.start_training()
    pump(3600, lambda: s.result is not None and s.busy != "training")
    pump(600, lambda: s.evaluation is not None and not s.busy)
    panel = win.predict_panel
    pump(600, lambda: panel.predictor is not None and not panel._busy())
    win.tabs.setCurrentIndex(PREDICT)
    panel.threshold_box.setValue(args.unsure)
    ds = s.dataset
    assert ds is not None
    picks = []
    for label in range(ds.num_classes):
        picks += [v.path for v in ds.validation if v.label == label][:4]
    broken = Path(tempfile.mkdtemp(prefix="tlgui-shots-drop-"))
    (broken / "scan_0042.jpg").write_bytes(b"not really a jpeg")
    (broken / "empty folder").mkdir()
    panel.handle_paths([*picks, broken / "scan_0042.jpg", broken / "empty folder"])
    pump(300, lambda: not panel._busy() and len(panel.predictions) >= len(picks) + 1)
    shots("12-predict-unsure")
    win.tabs.setCurrentIndex(DATA)
    win.close()
    QApplication.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
