"""The Data tab: the grid of one class's images, lazy for big datasets, and its fit at
1024x700."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices

from tests.gui.conftest import drop_paths
from tests.imagegen import make_image
from tlgui.core.dataset import Dataset, Sample
from tlgui.gui.class_grid import PATH_ROLE
from tlgui.gui.main_window import DATA, PREDICT

WAIT = 120_000


@pytest.mark.gui
def test_class_grid_shows_the_chosen_class_and_opens_a_file(  # type: ignore[no-untyped-def]
        qtbot, window, tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    assert drop_paths(window, [tiny_dataset])
    panel = window.dataset_panel
    qtbot.waitUntil(lambda: panel.class_model.rowCount() == 3, timeout=WAIT)
    grid = panel.class_grid
    assert grid.model.rowCount() == 8, "the first class shows at once"
    assert "blue" in grid.title.text()

    table = panel.class_view
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton,
                     pos=table.visualRect(table.model().index(1, 0)).center())
    assert grid.model.rowCount() == 8 and "<b>green</b>: 8 images" in grid.title.text()
    first = grid.model.index(0)
    path = first.data(PATH_ROLE)
    assert path.parent == tiny_dataset / "green"
    assert first.data() == path.name
    assert grid.model.index(0).data(Qt.ItemDataRole.ToolTipRole) == str(path)
    # The red class lists its readable files only (broken.jpg is a skipped file).
    table.selectRow(2)
    assert sorted(grid.model.index(r).data() for r in range(grid.model.rowCount())) == sorted(
        p.name for p in (tiny_dataset / "red").glob("img_*.jpg"))
    first = grid.model.index(0)
    qtbot.waitUntil(lambda: grid.view.visualRect(first).isValid())
    centre = grid.view.visualRect(first).center()
    # A user's double-click: Qt's test double-click is only its second half.
    qtbot.mouseClick(grid.view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert not opened, "one click only selects"
    qtbot.mouseDClick(grid.view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert [u.toLocalFile() for u in opened] == [str(first.data(PATH_ROLE))]
    qtbot.waitUntil(lambda: not window.session.busy, timeout=WAIT)


@pytest.mark.gui
def test_big_classes_and_many_classes_decode_only_what_shows(  # type: ignore[no-untyped-def]
        qtbot, window, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = (*(f"class_{i:03d}" for i in range(500)), "zz_big")
    big = len(names) - 1
    samples = [Sample(tmp_path / n / f"{j}.jpg", i, 1, 0) for i, n in enumerate(names[:-1])
               for j in range(4)]
    samples += [Sample(tmp_path / "zz_big" / f"{j:05d}.jpg", big, 1, 0) for j in range(20_000)]
    ds = Dataset(tmp_path, "class_folders", names, tuple(samples), ())
    asked: list[str] = []
    real_get = window.thumbnails.get
    monkeypatch.setattr(window.thumbnails, "get",
                        lambda p: asked.append(str(p)) or real_get(p))
    panel = window.dataset_panel
    window.resize(1280, 800)
    panel.show_dataset(ds)
    assert panel.class_model.rowCount() == 501
    panel.class_view.selectRow(big)
    assert panel.class_grid.model.rowCount() == 20_000
    qtbot.wait(300)
    shown = set(asked)
    in_big = {p for p in shown if "zz_big" in p}
    assert in_big, "the grid asked for the pictures it shows"
    assert len(in_big) < 200, "only the cells on screen are decoded"
    assert len(shown - in_big) < 200, "only the strips of the rows on screen"


@pytest.mark.gui
def test_data_tab_fits_1024x700_with_six_classes(  # type: ignore[no-untyped-def]
        qtbot, window, tmp_path: Path) -> None:
    colours = [(200, 40, 40), (40, 180, 60), (40, 60, 200), (220, 210, 40), (200, 60, 200),
               (60, 200, 200)]
    root = tmp_path / "six"
    for c, colour in enumerate(colours):
        folder = root / f"class_{c}"
        folder.mkdir(parents=True)
        for i in range(10):
            make_image(colour, (40, 36), c * 100 + i).save(folder / f"{i}.png")
    window.resize(1024, 700)
    window.session.open_dataset(root)
    panel = window.dataset_panel
    qtbot.waitUntil(lambda: panel.class_model.rowCount() == 6, timeout=WAIT)
    qtbot.wait(100)
    assert window.size().width() == 1024 and window.size().height() == 700
    table = panel.class_view
    assert table.verticalScrollBar().maximum() == 0, "all six classes show"
    assert table.horizontalScrollBar().maximum() == 0
    assert panel.class_grid.view.horizontalScrollBar().maximum() == 0
    for tab in (DATA, PREDICT):
        window.tabs.setCurrentIndex(tab)
        qtbot.wait(50)
        assert window.minimumSizeHint().width() <= 1024, tab
    qtbot.waitUntil(lambda: not window.session.busy, timeout=WAIT)

