"""Screenshots of the Audit tab, a review in progress and a heat map, from real photos.

Copies ``--per-class`` photos of each class of ``--data`` into a temporary folder, files
3 photos of each class under the next class and adds 3 re-encoded copies (JPEG 70, 90%
size), trains a quick head-only model (ImageNet MobileNetV2) so that heat maps exist,
runs the audit from its tab and reviews a few findings with the keyboard::

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_review_shots.py \\
        --data ../shared/data/flower_photos --weights-dir ../shared/weights
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _window import pump_events

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def make_subset(data: Path, dest: Path, per_class: int) -> Path:
    """A small copy of ``data`` with known label errors and copies."""
    from PIL import Image

    classes = sorted(p.name for p in data.iterdir() if p.is_dir())
    for name in classes:
        (dest / name).mkdir(parents=True)
        for src in sorted((data / name).glob("*.jpg"))[:per_class]:
            shutil.copy2(src, dest / name / src.name)
    for i, name in enumerate(classes):
        nxt = classes[(i + 1) % len(classes)]
        for src in sorted((dest / name).glob("*.jpg"))[5:8]:
            src.rename(dest / nxt / src.name)
    for name in classes[:3]:
        src = sorted((dest / name).glob("*.jpg"))[10]
        with Image.open(src) as img:
            small = img.convert("RGB").resize((img.width * 9 // 10, img.height * 9 // 10))
            small.save(src.with_name(f"{src.stem}_copy.jpg"), "JPEG", quality=70)
    return dest


def extra_shots(win: object, pump: Callable[..., None], shot: Callable[[str], None],
                out: Path) -> None:
    """The Data tab's banner, the apply dialog and the Evaluate review, to look at."""
    from tlgui.gui.main_window import DATA

    w = win  # type: ignore[assignment]
    w.tabs.setCurrentIndex(DATA)  # type: ignore[attr-defined]
    shot("x-data")
    dialog = w.review.folders.ask(w)  # type: ignore[attr-defined]
    pump(1.0)
    dialog.grab().save(str(out / "x-apply.png"))
    dialog.reject()
    review = w.review.review_misses(w.session.evaluation, 0, w)  # type: ignore[attr-defined]
    pump(300, lambda: bool(review.review.current.nearest))
    pump(3.0)
    review.grab().save(str(out / "x-evaluate-review.png"))
    review.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--weights-dir", default=None)
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--out", default=Path(__file__).parent, type=Path)
    parser.add_argument("--extra", action="store_true",
                        help="also x-*.png of the Data tab, the apply dialog and the "
                        "Evaluate tab's review, to look at")
    args = parser.parse_args()
    for var in ("TLGUI_SETTINGS_DIR", "TLGUI_DATA_DIR"):
        os.environ.setdefault(var, tempfile.mkdtemp(prefix="tlgui-shots-"))
    root = make_subset(args.data, Path(tempfile.mkdtemp(prefix="tlgui-review-")) / "flowers",
                       args.per_class)

    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from tlgui.app import create_window
    from tlgui.core.config import PhaseConfig, TrainConfig
    from tlgui.gui.main_window import AUDIT, MainWindow

    app, window = create_window([], restore_last=False)
    assert isinstance(window, MainWindow)
    win = window
    win.resize(1280, 820)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()

    def pump(seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        pump_events(app, seconds, until)

    def shot(name: str) -> None:
        pump(1.0)
        pump(20, lambda: not win.thumbnails._requested and not win.review.large._requested)
        pump(0.5)
        path = args.out / f"{name}.png"
        win.grab().save(str(path))
        print(f"[{time.monotonic() - t0:5.0f} s] {path}", flush=True)  # noqa: T201

    win.model_panel.set_config(TrainConfig(weights_dir=args.weights_dir,
                                           phase1=PhaseConfig(epochs=6),
                                           phase2=PhaseConfig(epochs=0)))
    pump(120, lambda: win.compute_info is not None)
    s = win.session
    s.open_dataset(root)
    pump(300, lambda: s.dataset is not None and s.model is not None and not s.busy)
    s.start_training()
    pump(1800, lambda: s.evaluation is not None and not s.busy)

    win.tabs.setCurrentIndex(AUDIT)
    panel = win.audit_panel
    panel.run_audit()
    pump(1800, lambda: panel.audit is not None and not s.busy)
    review = panel.review
    review.setFocus()
    first = next(i for i, item in enumerate(review.items)
                 if item.problem == "likely_mislabeled")
    review.go_to(first)
    shot("13-audit")

    # A review in progress: the suggested class for the first findings, one exclusion.
    panel.set_filter("likely_mislabeled")
    names = review.classes
    for _ in range(3):
        item = review.current
        if item is not None and item.suggested in names:
            QTest.keyClick(review, Qt.Key(Qt.Key.Key_1 + names.index(item.suggested)))
        pump(0.3)
    QTest.keyClick(review, Qt.Key.Key_X)
    pump(0.3)
    QTest.keyClick(review, Qt.Key.Key_Space)
    pump(1.0)
    shot("14-review")

    review.go_to(0)
    review.heat_box.setChecked(True)
    pump(300, lambda: review.image.heat_map() is not None)
    shot("15-heatmap")
    if args.extra:
        extra_shots(win, pump, shot, args.out)
    win.close()
    QApplication.processEvents()
    print(f"done in {time.monotonic() - t0:.0f} s; dataset copy {root}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
