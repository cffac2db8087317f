"""500 classes in the window: the Data and Evaluate tabs sort, filter and stay light.

Synthetic datasets and evaluations (no training): what is asserted is what a user sees,
and that nothing is built per class or per matrix cell (a count of widgets and of model
rows, not a time that a loaded machine could miss).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QTableWidget, QWidget

from tlgui.core.confusions import top_confusions
from tlgui.core.corrections import relative_key
from tlgui.core.dataset import Dataset, Problem, Sample
from tlgui.core.metrics import Evaluation, Miss, per_class_metrics
from tlgui.gui.class_table import ClassTableModel, ProblemTableModel
from tlgui.gui.corrections_store import fast_relative_key
from tlgui.gui.dataset_panel import DatasetPanel
from tlgui.gui.evaluate_panel import MATRIX_MAX, MAX_GALLERY, EvaluatePanel
from tlgui.gui.evaluation_models import ClassMetricsModel, ConfusionModel, TopConfusionsModel
from tlgui.gui.thumbnails import ThumbnailCache

N = 500
NAMES = tuple(f"class_{i:03d}" for i in range(N))
WORST, INTO = 123, 7  # the most frequent confusion: class_123 taken for class_007


@pytest.fixture
def thumbnails(qapp) -> Iterator[ThumbnailCache]:  # type: ignore[no-untyped-def]
    cache = ThumbnailCache()
    yield cache
    cache.stop()


def evaluation(tmp_path: Path) -> Evaluation:
    """10 right per class; class i taken for i+1 (i % 5 times); 40 of class_123 for 007,
    3 of class_004 for class_009."""
    confusion = np.zeros((N, N), dtype=np.int64)
    np.fill_diagonal(confusion, 10)
    for i in range(N):
        confusion[i, (i + 1) % N] += i % 5
    confusion[WORST, INTO] = 40
    confusion[4, 9] = 3  # both among the worst: in the matrix
    misses = [Miss(tmp_path / f"m{k}.jpg", WORST, INTO, 0.9, 0.05) for k in range(40)]
    misses += [Miss(tmp_path / f"n{i}.jpg", i, (i + 1) % N, 0.6, 0.2)
               for i in range(N) if i % 5]
    return Evaluation(NAMES, "validation", confusion, per_class_metrics(confusion, NAMES),
                      float(np.trace(confusion) / confusion.sum()), tuple(misses))


def column(view: object, col: int) -> list[object]:
    model = view.model()  # type: ignore[attr-defined]
    return [model.index(r, col).data() for r in range(model.rowCount())]


@pytest.mark.gui
def test_evaluate_tab_sorts_filters_and_lists_top_confusions(  # type: ignore[no-untyped-def]
        qtbot, thumbnails: ThumbnailCache, tmp_path: Path) -> None:
    panel = EvaluatePanel(thumbnails)
    qtbot.addWidget(panel)
    panel.resize(1280, 800)
    panel.show()
    widgets = len(panel.findChildren(QWidget))
    ev = evaluation(tmp_path)
    panel.show_evaluation(ev)
    qtbot.wait(50)
    # Nothing per class or per cell: the same widgets, no table items, a bounded matrix.
    assert len(panel.findChildren(QWidget)) <= widgets + 5
    assert not panel.findChildren(QTableWidget)
    matrix = panel.confusion_model
    assert matrix.rowCount() == MATRIX_MAX and matrix.columnCount() == MATRIX_MAX + 1

    # Many classes: the worst first; the matrix follows the per-class table's order.
    names = column(panel.metrics, ClassMetricsModel.CLASS)
    assert len(names) == N and names[0] == NAMES[WORST]
    assert [NAMES[i] for i in matrix.labels] == names[:MATRIX_MAX]
    # Each matrix row adds up to its class's images ("Other" counts the rest).
    for r in range(matrix.rowCount()):
        total = sum(int(matrix.index(r, c).data() or 0) for c in range(matrix.columnCount()))
        assert total == ev.confusion[matrix.labels[r]].sum()
    assert matrix.headerData(1, Qt.Orientation.Horizontal) == "2"
    assert matrix.headerData(1, Qt.Orientation.Vertical) == f"2  {names[1]}"
    assert matrix.index(0, 5).data() == "", "no image: a blank, not a 0"
    assert matrix.headerData(MATRIX_MAX, Qt.Orientation.Horizontal) == "Other"

    # Top confusions: most images first, with the share of the true class.
    top = panel.top
    assert column(top, 0)[:1] == [NAMES[WORST]] and column(top, 1)[:1] == [NAMES[INTO]]
    assert column(top, 2)[0] == "40"
    assert column(top, 3)[0] == f"{40 / (10 + 40 + WORST % 5):.1%}"
    assert top.model().rowCount() == N + 2 - N // 5  # i % 5 == 0 rows have none

    # Sorting by name, then by recall.
    header = panel.metrics.horizontalHeader()
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(header.sectionViewportPosition(0) + 10, header.height() // 2))
    names = column(panel.metrics, ClassMetricsModel.CLASS)
    assert names in (sorted(NAMES), sorted(NAMES, reverse=True))
    assert [NAMES[i] for i in matrix.labels] == names[:MATRIX_MAX], "the matrix follows"
    panel.metrics.sortByColumn(ClassMetricsModel.RECALL, Qt.SortOrder.AscendingOrder)
    assert column(panel.metrics, 0)[0] == NAMES[WORST]

    # The filter keeps matching classes in every table; a confusion shows if either
    # class matches.
    panel.filter_edit.setText("class_12")
    kept = column(panel.metrics, 0)
    assert sorted(kept) == [f"class_12{i}" for i in range(10)]
    assert sorted(NAMES[i] for i in matrix.labels) == sorted(kept)
    assert matrix.columnCount() == len(kept) + 1
    pairs = list(zip(column(top, 0), column(top, 1), strict=True))
    assert pairs and all("class_12" in a or "class_12" in b for a, b in pairs)
    assert (NAMES[WORST], NAMES[INTO]) in pairs
    assert "the 10 classes that match the filter (of 500)" in panel.matrix_note.text()
    panel.filter_edit.setText("")
    assert panel.metrics.model().rowCount() == N

    # A confusion chosen in the list shows its images; "Show all" brings back the rest.
    first = top.model().index(0, 0)
    top.doubleClicked.emit(first)
    assert panel.gallery.count() == 40
    assert NAMES[WORST] in panel.gallery_title.text()
    assert panel.show_all_button.isVisibleTo(panel)
    assert not panel.confusion.currentIndex().isValid(), "class_007 is not in the matrix"
    reviewed: list[int] = []
    panel.review_requested.connect(reviewed.append)
    panel.gallery.setCurrentRow(3)
    panel.review_button.click()
    assert reviewed == [3], "the review starts at that image among all mistakes"
    # A confusion whose classes are both in the matrix: its cell is chosen there too.
    row = list(zip(column(top, 0), column(top, 1), strict=True)).index((NAMES[4], NAMES[9]))
    top.doubleClicked.emit(top.model().index(row, 0))
    assert matrix.pair(panel.confusion.currentIndex()) == (4, 9) == panel.pair
    panel.show_all_button.click()
    assert panel.gallery.count() == MAX_GALLERY < len(ev.misses)
    assert f"{len(ev.misses)}, the first {MAX_GALLERY} shown" in panel.gallery_title.text()
    # A cell of the matrix does the same ("Other": the classes not in the matrix);
    # the diagonal shows them all.
    panel.filter_edit.setText("class_099")
    assert matrix.labels == [99] and matrix.columnCount() == 2
    panel.confusion.clicked.emit(matrix.index(0, 1))
    assert panel.pair == (99, None)
    assert [panel.gallery.item(0).text().split("\n")[0]] == ["class_099 → class_100"]
    assert panel.gallery.count() == 1
    panel.confusion.clicked.emit(matrix.index(0, 0))
    assert panel.pair is None and panel.gallery.count() == MAX_GALLERY


@pytest.mark.gui
def test_few_classes_keep_the_plain_matrix(  # type: ignore[no-untyped-def]
        qtbot, thumbnails: ThumbnailCache, tmp_path: Path) -> None:
    names = ("blue", "green", "red")
    confusion = np.array([[5, 1, 0], [0, 6, 0], [2, 0, 4]])
    ev = Evaluation(names, "validation", confusion, per_class_metrics(confusion, names),
                    15 / 18, (Miss(tmp_path / "r.jpg", 2, 0, 0.8, 0.1),))
    panel = EvaluatePanel(thumbnails)
    qtbot.addWidget(panel)
    panel.show_evaluation(ev)
    matrix = panel.confusion_model
    assert (matrix.rowCount(), matrix.columnCount()) == (3, 3), "no Other column"
    assert matrix.headerData(2, Qt.Orientation.Horizontal) == "red"
    assert column(panel.metrics, 0) == list(names), "the folders' order"
    assert not panel.filter_edit.isVisibleTo(panel)
    assert column(panel.top, 0) == ["red", "blue"]


def many_classes_dataset(root: Path) -> Dataset:
    sizes = [1 + (i % 3 == 0) for i in range(N)]
    sizes[WORST] = 7
    samples = [Sample(root / n / f"{j}.jpg", i, 1, 0) for i, n in enumerate(NAMES)
               for j in range(sizes[i])]
    return Dataset(root, "class_folders", NAMES, tuple(samples), ())


@pytest.mark.gui
def test_data_tab_sorts_and_filters_500_classes(  # type: ignore[no-untyped-def]
        qtbot, thumbnails: ThumbnailCache, tmp_path: Path) -> None:
    panel = DatasetPanel(thumbnails)
    qtbot.addWidget(panel)
    panel.resize(1280, 800)
    panel.show()
    panel.show_dataset(many_classes_dataset(tmp_path))
    widgets = len(panel.findChildren(QWidget))
    view = panel.class_view
    assert view.model().rowCount() == N and panel.class_filter.isVisibleTo(panel)
    view.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    assert column(view, 0)[0] == NAMES[WORST] and column(view, 1)[0] == "7"
    view.selectRow(0)
    assert panel.class_grid.model.rowCount() == 7
    assert f"<b>{NAMES[WORST]}</b>" in panel.class_grid.title.text()
    panel.class_filter.setText("class_49")
    assert column(view, 0) == [f"class_49{i}" for i in range(10)] or \
        sorted(column(view, 0)) == [f"class_49{i}" for i in range(10)]
    view.selectRow(2)
    assert column(view, 0)[2] in panel.class_grid.title.text()
    # A correction keeps the chosen class chosen, filtered and sorted as it was.
    chosen = column(view, 0)[2]
    panel.show_corrected(many_classes_dataset(tmp_path))
    assert view.currentIndex().siblingAtColumn(0).data() == chosen
    assert panel.class_filter.text() == "class_49"
    assert len(panel.findChildren(QWidget)) == widgets, "no widget per class"
    # A newly opened dataset starts unfiltered, in folder order.
    panel.show_dataset(many_classes_dataset(tmp_path))
    assert panel.class_filter.text() == "" and column(view, 0)[:2] == list(NAMES[:2])


@pytest.mark.gui
def test_500_class_folders_show_soon_after_the_scan(  # type: ignore[no-untyped-def]
        qtbot, window, tmp_path: Path) -> None:
    root = tmp_path / "many"
    for i, name in enumerate(NAMES):
        folder = root / name
        folder.mkdir(parents=True)
        for j in range(1 + (i % 2)):  # plain squares, each its own colour: quick to make
            Image.new("RGB", (32, 32), (i % 250, i // 250 * 100 + j, 7)).save(
                folder / f"{j}.png")
    session = window.session
    scanned: list[float] = []
    on_scanned = session._on_scanned

    def scan_ended(*args: object) -> None:  # the scan's result reaches the window
        scanned.append(time.monotonic())
        on_scanned(*args)

    session._on_scanned = scan_ended
    messages: list[str] = []
    window.statusBar().messageChanged.connect(messages.append)
    done: list[bool] = []
    # No model to build for 500 classes afterwards: the test is about the scan.
    session.open_dataset(root, then=lambda: done.append(True))
    qtbot.waitUntil(lambda: bool(scanned), timeout=120_000)
    panel = window.dataset_panel
    qtbot.waitUntil(lambda: panel.class_model.rowCount() == N, timeout=5000)
    qtbot.wait(1)  # one turn of the event loop: the table is painted
    shown = time.monotonic() - scanned[0]
    assert shown < 5, f"the dataset showed {shown:.1f} s after the scan"
    assert panel.class_model.index(1, ClassTableModel.HEADERS.index("Images")).data() == "2"
    assert done
    # The scan said how far it was while it ran.
    assert any(m.startswith("Scanning") and "so far)" in m for m in messages), messages


def test_fast_relative_key_agrees_with_relative_key(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for path in (root / "a" / "b.jpg", root / "a b" / "ü.png", tmp_path / "dataset" / "x.jpg",
                 Path("a/b.jpg"), root, tmp_path / "other.jpg"):
        assert fast_relative_key(path, root) == relative_key(path, root), path


@pytest.mark.gui
def test_models_pass_qt_model_tester(qtmodeltester, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ev = evaluation(tmp_path)
    metrics = ClassMetricsModel()
    metrics.set_evaluation(ev)
    metrics.sort(ClassMetricsModel.RECALL, Qt.SortOrder.AscendingOrder)
    top = TopConfusionsModel()
    top.set_confusions(ev.class_names, top_confusions(ev.confusion))
    matrix = ConfusionModel()
    matrix.set_classes(ev, [WORST, 1, 2], numbered=True)
    table = ClassTableModel()
    table.set_dataset(many_classes_dataset(tmp_path))
    problems = ProblemTableModel()
    problems.set_problems(tmp_path, (Problem(tmp_path / "a" / "x.txt", "not an image"),))
    for model in (metrics, top, matrix, table, problems):
        qtmodeltester.check(model)
    assert problems.index(0, 0).data() == str(Path("a", "x.txt"))
