"""Screenshots of the Data and Evaluate tabs with 500 classes (no training needed).

Makes (once) a folder of 500 classes of small synthetic images under ``--data``, opens
it, and fills the Evaluate tab with a synthetic evaluation of those classes (the
``bench/many_classes.py`` one: a strong diagonal and a few confusions per class)::

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_many_classes_shots.py \\
        --data /tmp/birds-500
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _window import ShotWindow

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--out", default=Path(__file__).parent, type=Path)
    args = parser.parse_args()

    from many_classes import make_data, synthetic_evaluation
    from PySide6.QtCore import Qt

    from tlgui.gui.main_window import EVALUATE

    make_data(args.data, 500, 6, 40, size=64)
    shots = ShotWindow(args.out)
    win, pump, shot = shots.win, shots.pump, shots.shot
    pump(180, lambda: win.compute_info is not None)
    s = win.session
    s.open_dataset(args.data, then=lambda: None)  # no model: only the tabs are shown
    pump(900, lambda: s.dataset is not None)
    panel = win.dataset_panel
    panel.class_view.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    panel.class_filter.setText("warbler")
    panel.class_view.selectRow(2)
    shot("16-data-500-classes")
    panel.class_filter.setText("")

    ds = s.dataset
    assert ds is not None
    ev = synthetic_evaluation(ds.class_names, [(x.path, x.label) for x in ds.validation])
    win.tabs.setCurrentIndex(EVALUATE)
    win.evaluate_panel.show_evaluation(ev)
    top = win.evaluate_panel.top
    top.selectRow(0)
    top.doubleClicked.emit(top.model().index(0, 0))
    shot("17-evaluate-500-classes")
    shots.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
