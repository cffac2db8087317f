"""How the window copes with many classes: 500 class folders, up to 100,000 files.

Makes (once) a synthetic folder of tiny JPEGs under ``--data``, opens it in the real
window (offscreen) and measures, with a 10 ms QTimer ticking in the GUI thread:
  - scan: the engine's scan, from ``open_dataset`` to its result reaching the window;
  - shown: from the scan's result reaching the window to the class table's first paint;
  - the longest GUI-thread gap from the scan's end to 3 s later;
  - choosing another class (row 250) in the class table: time and longest gap;
  - the Evaluate tab filled with a synthetic 500-class evaluation (~3,500 mistakes):
    time to ``show_evaluation`` returning, to its first paint, and the longest gap;
  - typing a filter and sorting the per-class table by name (versions that have them);
  - the number of widgets in the window after each step (a widget per row or cell shows
    here).

Usage::

    QT_QPA_PLATFORM=offscreen python bench/many_classes.py --data /tmp/many-500 \\
        --classes 500 --min-per-class 20 --max-per-class 200
    QT_QPA_PLATFORM=offscreen python bench/many_classes.py --data /tmp/many-100k \\
        --classes 500 --min-per-class 200 --max-per-class 200

Runs against any tlgui checkout with ``tlgui.app.create_window``, so two versions can be
compared side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ADJECTIVES = ("amber", "ashy", "black", "blue", "brown", "buff", "chestnut", "cinnamon",
              "dusky", "golden", "green", "grey", "hooded", "lesser", "olive", "pale",
              "pied", "red", "rufous", "scaly", "slaty", "spotted", "streaked", "white",
              "yellow")
NOUNS = ("bunting", "finch", "flycatcher", "grebe", "heron", "ibis", "kingfisher", "lark",
         "martin", "owl", "parakeet", "pipit", "plover", "robin", "sandpiper", "shrike",
         "sparrow", "tern", "thrush", "warbler")


def class_names(count: int) -> list[str]:
    """Readable, distinct class names (bird-like: "golden warbler"), numbered past 500."""
    names = [f"{a} {n}" for n in NOUNS for a in ADJECTIVES]
    return [names[i] if i < len(names) else f"class {i:04d}" for i in range(count)]


def make_data(root: Path, classes: int, lo: int, hi: int, size: int = 32) -> int:
    """Writes ``classes`` folders of ``lo``..``hi`` distinct tiny JPEGs; returns the count."""
    from PIL import Image

    marker = root / ".complete"
    if marker.is_file():
        return int(marker.read_text())
    rng = np.random.default_rng(0)
    total = 0
    yy, xx = np.mgrid[0:size, 0:size]
    for name in class_names(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        color = rng.integers(30, 226, 3)
        period = int(rng.integers(4, 12))
        for i in range(int(rng.integers(lo, hi + 1))):
            # A class colour and stripe width, noisy: thumbnails a person can tell apart.
            stripes = ((xx + yy * int(rng.integers(-1, 2)) + i) // period) % 2
            noise = rng.integers(-20, 21, (size, size, 3))
            arr = np.clip(color * (0.6 + 0.4 * stripes[..., None]) + noise, 0, 255)
            Image.fromarray(arr.astype(np.uint8), "RGB").save(folder / f"img_{i:04d}.jpg",
                                                              quality=85)
            total += 1
    marker.write_text(str(total))
    return total


def synthetic_evaluation(names: tuple[str, ...], samples: list[tuple[Path, int]]) -> object:
    """An evaluation of these classes: a strong diagonal and up to 3 confusions per class,
    whose mistakes are images of the true class (``samples``: path and label)."""
    from tlgui.core.metrics import Evaluation, Miss, per_class_metrics

    n = len(names)
    rng = np.random.default_rng(1)
    by_class: list[list[Path]] = [[] for _ in range(n)]
    for path, label in samples:
        by_class[label].append(path)
    confusion = np.zeros((n, n), dtype=np.int64)
    misses = []
    for i in range(n):
        confusion[i, i] = int(rng.integers(10, 40))
        own = by_class[i] or [samples[0][0]]
        for j in rng.choice(n, size=3, replace=False):
            if j == i:
                continue
            count = int(rng.integers(0, 6))
            confusion[i, j] += count
            misses += [Miss(own[k % len(own)], i, int(j), float(rng.uniform(0.3, 0.99)),
                            float(rng.uniform(0.0, 0.3))) for k in range(count)]
    misses.sort(key=lambda m: (m.true_probability, -m.confidence))
    correct = int(np.trace(confusion))
    return Evaluation(names, "validation", confusion, per_class_metrics(confusion, names),
                      correct / int(confusion.sum()), tuple(misses))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--classes", type=int, default=500)
    parser.add_argument("--min-per-class", type=int, default=20)
    parser.add_argument("--max-per-class", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()
    t_make = time.monotonic()
    files = make_data(args.data, args.classes, args.min_per_class, args.max_per_class)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    home = Path(tempfile.mkdtemp(prefix="tlgui-bench-home-"))
    for var, sub in (("TLGUI_SETTINGS_DIR", "s"), ("TLGUI_DATA_DIR", "d"),
                     ("TLGUI_CACHE_DIR", "c"), ("TLGUI_LOG_DIR", "l")):
        os.environ[var] = str(home / sub)

    from PySide6.QtCore import QElapsedTimer, QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication, QTableWidget, QWidget

    from tlgui.app import create_window

    figures: dict[str, object] = {"files": files,
                                  "make_s": round(time.monotonic() - t_make, 1)}
    app, win = create_window([], restore_last=False)
    win.resize(1280, 800)
    s = win.session  # type: ignore[attr-defined]

    def pump(seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not until():
            app.processEvents()
            time.sleep(0.002)

    def widgets() -> int:
        return len(win.findChildren(QWidget))  # type: ignore[attr-defined]

    class Ticks:
        """Gaps of a 10 ms timer: the longest one since ``mark``."""

        def __init__(self) -> None:
            self.clock = QElapsedTimer()
            self.clock.start()
            self.longest = 0
            self.timer = QTimer()
            self.timer.setInterval(10)
            self.timer.timeout.connect(self.tick)
            self.timer.start()

        def tick(self) -> None:
            self.longest = max(self.longest, self.clock.restart())

        def mark(self) -> None:
            self.clock.restart()
            self.longest = 0

    class FirstPaint(QObject):
        def __init__(self, widget: QWidget) -> None:
            super().__init__()
            self.at: float | None = None
            widget.installEventFilter(self)

        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and self.at is None:
                self.at = time.perf_counter()
            return False

    pump(180, lambda: win.compute_info is not None)  # type: ignore[attr-defined]
    win.show()  # type: ignore[attr-defined]
    pump(1)
    figures["widgets_start"] = widgets()
    ticks = Ticks()
    scanned: list[float] = []
    original = s._on_scanned

    def on_scanned(*a: object) -> None:
        scanned.append(time.perf_counter())
        ticks.mark()
        original(*a)

    s._on_scanned = on_scanned
    view = win.dataset_panel.class_view  # type: ignore[attr-defined]
    painted = FirstPaint(view.viewport())
    t_open = time.perf_counter()
    s.open_dataset(args.data)
    pump(1800, lambda: bool(scanned))
    ticks_after_scan = None
    pump(30, lambda: painted.at is not None and painted.at > scanned[0])
    figures["scan_s"] = round(scanned[0] - t_open, 2)
    figures["scan_end_to_shown_ms"] = round(((painted.at or 0) - scanned[0]) * 1000)
    pump(3)
    ticks_after_scan = ticks.longest
    figures["longest_gap_after_scan_ms"] = ticks_after_scan
    figures["widgets_data"] = widgets()

    ticks.mark()
    t0 = time.perf_counter()
    view.selectRow(250)
    app.processEvents()
    figures["choose_class_ms"] = round((time.perf_counter() - t0) * 1000)
    pump(1)
    figures["longest_gap_choose_class_ms"] = ticks.longest

    ds = s.dataset
    ev = synthetic_evaluation(ds.class_names, [(x.path, x.label) for x in ds.validation])
    from tlgui.gui.main_window import EVALUATE

    panel = win.evaluate_panel  # type: ignore[attr-defined]
    win.tabs.setCurrentIndex(EVALUATE)  # type: ignore[attr-defined]
    pump(1)
    ev_paint = FirstPaint(panel)
    ticks.mark()
    t0 = time.perf_counter()
    panel.show_evaluation(ev)
    figures["show_evaluation_ms"] = round((time.perf_counter() - t0) * 1000)
    pump(30, lambda: ev_paint.at is not None and ev_paint.at > t0)
    figures["evaluation_first_paint_ms"] = round(((ev_paint.at or 0) - t0) * 1000)
    pump(3)
    figures["longest_gap_evaluation_ms"] = ticks.longest
    figures["widgets_evaluation"] = widgets()
    if hasattr(panel, "filter_edit"):  # versions with the filter box and sorting
        from PySide6.QtCore import Qt

        ticks.mark()
        t0 = time.perf_counter()
        panel.filter_edit.setText(ds.class_names[1][:-2])
        app.processEvents()
        figures["filter_ms"] = round((time.perf_counter() - t0) * 1000)
        panel.filter_edit.setText("")
        t0 = time.perf_counter()
        panel.metrics.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        app.processEvents()
        figures["sort_by_name_ms"] = round((time.perf_counter() - t0) * 1000)
        pump(1)
        figures["longest_gap_filter_sort_ms"] = ticks.longest
    figures["table_widget_items_evaluate"] = sum(
        t.rowCount() * t.columnCount() for t in panel.findChildren(QTableWidget))
    win.close()  # type: ignore[attr-defined]
    QApplication.processEvents()
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
