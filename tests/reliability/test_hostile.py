"""The hostile corpus through scan, training, prediction, CSV and sorting.

Every entry (``tests/corpus/hostile.py``) is used or listed with its reason; nothing
hangs (each test has a hard timeout: on a pipe, the code before this work blocked
forever), nothing walks out of the dataset, and the dataset and the folder beside it
stay byte-identical.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import pytest

from tests.corpus.hostile import FORMULA_NAMES, UNDECODABLE, Hostile, build_hostile
from tests.reliability.helpers import TINY_P1, deny_entering, tree_digest
from tlgui.core.dataset import Dataset, scan
from tlgui.core.events import Event, Notice
from tlgui.core.pixel_cache import PixelCache
from tlgui.core.predict import Predictor, sort_into, write_csv
from tlgui.core.training import run_training

pytestmark = pytest.mark.timeout(240, method="signal")


def _problems(ds: Dataset, h: Hostile) -> dict[str, str]:
    return {h.rel(p.path): p.reason for p in ds.problems}


def _used(ds: Dataset, h: Hostile) -> set[str]:
    return {h.rel(s.path) for s in (*ds.train, *ds.validation, *ds.test)}


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Scan, swap a file for a pipe, train, predict, write the CSV and sort copies."""
    base = tmp_path_factory.mktemp("hostile")
    h = build_hostile(base)
    before = {"data": tree_digest(h.root), "outside": tree_digest(h.outside)}
    events: list[Event] = []
    notices: list[Event] = []
    with pytest.MonkeyPatch.context() as mp:
        deny_entering(mp, *h.locked)
        scanned = scan(h.root)
        h.after_scan()
        swapped_digest = tree_digest(h.root)
        result = run_training(scanned, TINY_P1, report=events.append,
                              cache=PixelCache(base / "cache"), run_root=base / "runs")
        assert result.run is not None
        predictor = Predictor.load(result.run.model_path)
        rows = predictor.predict_paths([h.root])
        csv_path = write_csv(rows, base / "predictions.csv", report=notices.append)
        copied = sort_into(rows, base / "sorted", inputs=[h.root])
    return {"h": h, "scanned": scanned, "result": result, "rows": rows, "csv": csv_path,
            "copied": copied, "before": before, "swapped_digest": swapped_digest,
            "events": events, "notices": notices, "base": base}


def test_scan_uses_or_lists_every_hostile_entry(flow: dict[str, Any]) -> None:
    h: Hostile = flow["h"]
    ds: Dataset = flow["scanned"]
    problems, used = _problems(ds, h), _used(ds, h)
    for rel, exp in h.expected.items():
        if exp.outcome == "skipped":
            assert rel in problems, f"{exp.case}: not listed"
            assert problems[rel].startswith(exp.reason), (exp.case, problems[rel])
            assert rel not in used, exp.case
        else:
            assert rel in used, f"{exp.case}: not used ({problems.get(rel)})"
    assert set(problems) == set(h.by_outcome("skipped")), "unexpected problems"
    # Nothing from outside the dataset, nor from the unreadable folders, got in.
    assert all(s.path.is_relative_to(h.root) for s in (*ds.train, *ds.validation))
    assert ds.class_names == ("alpha", "beta")


def test_training_drops_the_file_swapped_for_a_pipe(flow: dict[str, Any]) -> None:
    h: Hostile = flow["h"]
    result = flow["result"]
    assert not result.cancelled and len(result.history) == 1
    problems = _problems(result.dataset, h)
    for rel, exp in h.by_outcome("dropped").items():
        assert problems[rel].startswith(exp.reason), (exp.case, problems[rel])
    assert _used(result.dataset, h) == set(h.by_outcome("used"))
    warned = [e.message for e in flow["events"]
              if isinstance(e, Notice) and e.level == "warning"]
    assert any(h.swapped.name in m for m in warned)


def test_prediction_gives_every_entry_a_result_or_a_reason(flow: dict[str, Any]) -> None:
    h: Hostile = flow["h"]
    by_rel = {h.rel(r.path): r for r in flow["rows"]}
    for rel, exp in h.expected.items():
        if exp.outcome == "used":
            assert by_rel[rel].error is None, (exp.case, by_rel[rel].error)
        elif rel in by_rel:  # collected by its name: a reason, never a hang or a crash
            assert by_rel[rel].error, exp.case
    assert by_rel["alpha/pipe.jpg"].error == "not a regular file (a named pipe)"
    assert by_rel["alpha/zero.jpg"].error == "not a regular file (a character device)"
    assert by_rel["beta/swapped.jpg"].error == "not a regular file (a named pipe)"
    assert by_rel["root_link"].error.startswith("link to a folder, not followed")
    assert by_rel["alpha/locked_sub"].error.startswith("folder cannot be opened")
    assert by_rel["alpha/into_locked.jpg"].error.startswith("symbolic link into a place")
    long_file = next(k for k, e in h.expected.items() if e.reason.startswith("path too"))
    assert by_rel[long_file].error.startswith("path too long for the system")
    # The class folder with an undecodable name is an ordinary folder to predict: its
    # three images and the undecodable file name in alpha are classified.
    assert sum(UNDECODABLE in k and r.error is None for k, r in by_rel.items()) == 4
    # Nothing outside the input was classified: the links were not followed.
    assert all(r.path.is_relative_to(h.root) for r in flow["rows"])


def test_csv_keeps_every_row_escapes_names_and_neutralises_formulas(
        flow: dict[str, Any]) -> None:
    with open(flow["csv"], newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == len(flow["rows"])
    paths = [row["path"] for row in table]
    assert sum("caf\\xe9" in p for p in paths) == 4  # the file and the folder's three
    notices = [e.message for e in flow["notices"] if isinstance(e, Notice)]
    assert any("4 file name(s)" in m and "\\xNN" in m for m in notices)
    # File names are full paths here; a formula first character only matters in a
    # cell of its own, which the class columns are (see test_destinations for names).
    assert all(not p.startswith(("=", "+", "-", "@")) for p in paths)
    for name in FORMULA_NAMES:
        assert any(p.endswith("/" + name) for p in paths), name


def test_sorting_copies_only_usable_files_outside_the_input(flow: dict[str, Any]) -> None:
    base: Path = flow["base"]
    good = [r for r in flow["rows"] if r.error is None]
    assert sum(flow["copied"].values()) == len(good)
    copies = [p for p in (base / "sorted").rglob("*") if p.is_file()]
    assert len(copies) == len(good)
    assert all(os.path.isfile(p) and not p.is_symlink() for p in copies)


def test_dataset_and_its_surroundings_are_byte_identical(flow: dict[str, Any]) -> None:
    h: Hostile = flow["h"]
    assert tree_digest(h.outside) == flow["before"]["outside"]
    # After the swap (the test's own change), nothing changed in the dataset.
    assert tree_digest(h.root) == flow["swapped_digest"]
    assert set(flow["before"]["data"]) == set(flow["swapped_digest"])


def test_split_layout_lists_what_is_beside_the_class_folders(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.imagegen import make_dataset

    root = tmp_path / "d"
    for split in ("train", "validation"):
        make_dataset(root / split, classes=("red", "green"), per_class=3)
    (root / "train" / "stray.jpg").write_bytes((root / "train" / "red" / "img_000.jpg")
                                               .read_bytes())
    os.mkfifo(root / "train" / "pipe.jpg")
    (root / "notes").mkdir()
    (root / "validation" / "green_link").symlink_to(root / "train" / "green")
    locked = root / "train" / "red"
    with pytest.MonkeyPatch.context() as mp:
        deny_entering(mp, locked)
        ds = scan(root)
    reasons = {p.path.relative_to(root).as_posix(): p.reason for p in ds.problems}
    assert reasons["train/stray.jpg"] == "file outside any class folder"
    assert reasons["train/pipe.jpg"] == "not a regular file (a named pipe)"
    assert reasons["notes"].startswith("folder beside the train/validation/test folders")
    assert reasons["validation/green_link"].startswith("link to a folder, not followed")
    assert reasons["train/red"].startswith("folder cannot be opened (permission denied)")
    assert ds.counts("train") == {"green": 3, "red": 0}
    assert ds.counts("validation") == {"green": 3, "red": 3}


def test_runs_list_survives_damaged_run_folders(isolated_dirs: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from tlgui.cli import main

    runs = isolated_dirs / "data" / "runs"
    for name, status, history in (("a", '{"state": "running", "pid": "abc"}', "{}"),
                                  ("b", "[1, 2]", '[{"val_accuracy": "high"}, 3]'),
                                  ("c", "not json", "not json")):
        (runs / name).mkdir(parents=True)
        (runs / name / "status.json").write_text(status)
        (runs / name / "history.json").write_text(history)
    (runs / "stray_file").write_text("x")
    (runs / "d").mkdir()
    os.mkfifo(runs / "d" / "status.json")  # reading it would wait for a writer forever
    os.mkfifo(runs / "d" / "history.json")
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    # Every run folder is listed, damaged or not: an unreadable status is "unknown".
    rows = out.splitlines()[1:]
    assert sorted(r.split()[0] for r in rows) == ["a", "b", "c", "d"], out
    assert all(r.split()[2] in ("incomplete", "unknown") for r in rows), out
