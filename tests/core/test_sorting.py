"""Sorted copies and the CSV's unsure mark, as the window uses them (no Keras)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from tests.imagegen import make_image
from tlgui.core.errors import ConfigError
from tlgui.core.prediction import Prediction, write_csv
from tlgui.core.sorting import UNSURE_FOLDER, check_sort_destination, sort_into


@pytest.fixture
def rows(tmp_path: Path) -> list[Prediction]:
    folder = tmp_path / "in"
    folder.mkdir()
    out = []
    for i, p in enumerate((0.9, 0.4, 0.6)):
        path = folder / f"{i}.png"
        make_image((200, 40, 40), (16, 16), i).save(path)
        out.append(Prediction(path, (("cat", p), ("dog", 1 - p))))
    out.append(Prediction(folder / "bad.png", error="not an image"))
    return out


def test_sorting_needs_no_keras() -> None:
    code = ("import sys, tlgui.core.sorting, tlgui.core.folder_probe; "
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_unsure_files_go_to_their_folder(rows: list[Prediction], tmp_path: Path) -> None:
    counts = sort_into(rows, tmp_path / "dest", 0.5, [rows[0].path])
    assert counts == {"cat": 2, UNSURE_FOLDER: 1}
    assert sorted(p.name for p in (tmp_path / "dest" / "cat").iterdir()) == ["0.png", "2.png"]
    assert [p.name for p in (tmp_path / "dest" / UNSURE_FOLDER).iterdir()] == ["1.png"]
    assert rows[1].path.is_file(), "copied, never moved"


def test_a_file_input_protects_its_folder(rows: list[Prediction], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="overlaps the input folder"):
        check_sort_destination(tmp_path / "in" / "sorted", [rows[0].path])
    with pytest.raises(ConfigError, match="overlaps"):
        sort_into(rows, tmp_path / "in" / "sorted", 0.5)  # a classified file's folder
    (tmp_path / "data").mkdir()
    with pytest.raises(ConfigError, match="overlaps"):  # the open dataset, passed as input
        check_sort_destination(tmp_path / "data" / "x", [tmp_path / "data"])
    assert not (tmp_path / "in" / "sorted").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="not a folder"):
        check_sort_destination(tmp_path / "file", [])


def test_csv_marks_unsure_rows_and_keeps_the_guess(rows: list[Prediction],
                                                   tmp_path: Path) -> None:
    plain = write_csv(rows, tmp_path / "plain.csv")
    assert "unsure" not in plain.read_text().splitlines()[0]
    with write_csv(rows, tmp_path / "t.csv", min_confidence=0.5).open(newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0][-2:] == ["error", "unsure"]
    assert table[0][:3] == ["path", "class", "probability"], "other columns keep their place"
    assert [(r[1], r[-1]) for r in table[1:]] == [("cat", "no"), ("cat", "yes"),
                                                   ("cat", "no"), ("", "")]
