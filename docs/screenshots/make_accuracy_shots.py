"""Screenshots of issue 15 in the window: the Model tab's size line, the Evaluate tab with its
interval, caveats and test figure, the mirror box, and the export dialog's mirror option.

Links a small split of a folder of class folders (``--per-class`` training photos, 10
validation and 10 test photos per class) under ``--work`` (the photos are not copied or
changed), trains it with the real weights at the defaults, ticks "Average with the mirror
image" and takes the pictures::

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_accuracy_shots.py \\
        --data ../shared/data/flower_photos --weights-dir ../shared/weights --work /tmp/shots
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from _window import ShotWindow

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def link_split(data: Path, root: Path, per_class: int, seed: int = 0) -> Path:
    """``root/{train,validation,test}/<class>/`` of links to ``data``'s photos."""
    if (root / "done").is_file():
        return root
    rng = random.Random(seed)
    for cdir in sorted(p for p in data.iterdir() if p.is_dir()):
        files = sorted(f for f in cdir.iterdir() if f.suffix.lower() in (".jpg", ".jpeg"))
        rng.shuffle(files)
        parts = {"validation": files[:10], "test": files[10:20],
                 "train": files[20:20 + per_class]}
        for part, chosen in parts.items():
            (root / part / cdir.name).mkdir(parents=True, exist_ok=True)
            for f in chosen:
                (root / part / cdir.name / f.name).symlink_to(f.resolve())
    (root / "done").write_text("links")
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--weights-dir", required=True)
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--out", default=Path(__file__).parent, type=Path)
    args = parser.parse_args()

    from tlgui.core.config import PhaseConfig, TrainConfig
    from tlgui.gui.export_dialog import ExportDialog
    from tlgui.gui.main_window import EVALUATE, MODEL

    root = link_split(args.data, args.work / "split", args.per_class)
    shots = ShotWindow(args.out)
    win, pump, shot = shots.win, shots.pump, shots.shot
    pump(180, lambda: win.compute_info is not None)
    s = win.session
    # The defaults with the weights folder, phase 2 shortened so the pictures come in a few
    # minutes on a CPU; set before the dataset, so the first model built is this one.
    win.model_panel.set_config(TrainConfig(weights_dir=args.weights_dir,
                                           phase2=PhaseConfig(epochs=4, learning_rate=1e-4)))
    s.open_dataset(root)
    pump(300, lambda: s.model is not None and not s.busy)
    win.tabs.setCurrentIndex(MODEL)
    shot("19-model-size-line")
    measured: list[object] = []
    s.test_ready.connect(measured.append)
    assert s.start_training()
    pump(1800, lambda: bool(measured) and not s.busy)
    win.tabs.setCurrentIndex(EVALUATE)
    win.evaluate_panel.mirror_box.setChecked(True)
    pump(600, lambda: s.evaluation is not None and s.evaluation.mirror and not s.busy)
    shot("20-evaluate-interval-mirror-test")
    assert s.model is not None
    dialog = ExportDialog(s.engine, s.model, args.work, name="flowers")
    dialog.mirror_box.setChecked(True)
    dialog.show()
    shot("21-export-mirror", dialog)
    dialog.close()
    shots.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
