"""Listing, labelling, deleting and comparing run folders, from folders written by hand."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.runfolders import make_run
from tlgui.core import runs
from tlgui.core.config import PhaseConfig, TrainConfig
from tlgui.core.run_catalog import (
    NOTES_FILE,
    RunError,
    format_duration,
    list_run_records,
    read_record,
    resolve_run,
    set_label,
)
from tlgui.core.run_catalog import delete_run as delete
from tlgui.core.run_compare import MISSING, compare_runs, flatten, format_value, load_details

T0 = time.mktime((2026, 11, 30, 10, 0, 0, 0, 0, -1))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "runs"


def test_record_reads_what_the_folder_holds(root: Path, tmp_path: Path) -> None:
    config = TrainConfig(weights="none", image_size=None, backbone="MobileNetV2")
    path = make_run(root, "20261130-100000-flowers", tmp_path / "flowers", config=config,
                    started_unix=T0, recalls=(0.9, 0.8, 1.0))
    r = read_record(path)
    assert r.name == "20261130-100000-flowers" and r.label == ""
    assert r.state == "complete" and r.reason == ""
    assert r.dataset == tmp_path / "flowers"
    assert r.backbone == "MobileNetV2"
    # The config left it open: such runs predate ADR 013 and ran at its old default.
    assert r.image_size == 160
    assert r.started == "2026-11-30 10:00:00" and r.started_unix == pytest.approx(T0)
    assert r.duration_s == pytest.approx(19.5)
    assert r.phase_accuracy == {1: 0.76, 2: 0.88}
    assert r.best_val_accuracy == pytest.approx(0.88)
    assert r.epochs == 5
    assert r.has_model and r.has_evaluation


def test_older_runs_get_duration_and_phase_accuracy_from_history(root: Path,
                                                                 tmp_path: Path) -> None:
    path = make_run(root, "old", tmp_path / "d", phases=((0.5, 0.6), (0.65,)), legacy=True,
                    model=False)
    r = read_record(path)
    assert r.duration_s == pytest.approx(9.0)  # three epochs of 3 s each
    assert r.phase_accuracy == {1: 0.6, 2: 0.65}
    assert not r.has_model and not r.has_evaluation


def test_phase_accuracy_is_the_best_epoch_of_each_phase(root: Path, tmp_path: Path) -> None:
    # Fine-tuning that never beat phase 1: training records phase 1's figure for phase 2
    # (the model keeps phase 1's weights); the list shows what phase 2's epochs reached.
    path = make_run(root, "r", tmp_path / "d", phases=((0.5, 0.7), (0.2, 0.25)))
    status = json.loads((path / "status.json").read_text())
    status["phase_accuracy"] = {"1": 0.7, "2": 0.7, "3": 0.1}
    (path / "status.json").write_text(json.dumps(status))
    r = read_record(path)
    assert r.phase_accuracy == {1: 0.7, 2: 0.25, 3: 0.1}
    assert r.best_val_accuracy == pytest.approx(0.7)


def test_states_as_runs_read_run_decides(root: Path, tmp_path: Path) -> None:
    d = tmp_path / "d"
    dead = make_run(root, "dead", d, state="running", pid=0)
    alive = make_run(root, "alive", d, state="running", pid=os.getpid())
    failed = make_run(root, "failed", d, state="failed")
    cancelled = make_run(root, "cancelled", d, state="cancelled")
    assert read_record(dead).state == "incomplete" == runs.read_run(dead).state
    assert read_record(alive).state == "running" and read_record(alive).duration_s is None
    assert read_record(failed).state == "failed" and "Out of memory" in read_record(failed).reason
    assert read_record(cancelled).state == "cancelled"
    assert read_record(cancelled).phase_accuracy == {1: 0.76, 2: 0.88}  # from the history


def test_this_dataset_first_then_the_others_newest_first(root: Path, tmp_path: Path) -> None:
    flowers, cells = tmp_path / "flowers", tmp_path / "cells"
    flowers.mkdir()
    make_run(root, "a-old-flowers", flowers, started_unix=T0)
    make_run(root, "b-new-cells", cells, started_unix=T0 + 300)
    make_run(root, "c-new-flowers", flowers, started_unix=T0 + 200)
    make_run(root, "d-oldest-cells", cells, started_unix=T0 - 100)
    # The same folder written another way (a link to it) still counts as this dataset.
    link = tmp_path / "flowers-link"
    link.symlink_to(flowers)
    names = [r.path.name for r in list_run_records(root, dataset=link)]
    assert names == ["c-new-flowers", "a-old-flowers", "b-new-cells", "d-oldest-cells"]
    assert [r.path.name for r in list_run_records(root)] == [
        "b-new-cells", "c-new-flowers", "a-old-flowers", "d-oldest-cells"]


def test_damaged_and_foreign_folders_never_raise(root: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "d"
    good = make_run(root, "good", d, started_unix=T0)
    broken = make_run(root, "broken", d, started_unix=T0 - 10)
    (broken / "status.json").write_text("{not json")
    (broken / "history.json").write_text('[1, "x", {"epoch": 1, "phase": "?", '
                                         '"val_accuracy": "high"}]')
    wrong_type = make_run(root, "wrong-type", d)
    (wrong_type / "status.json").write_text("[1, 2]")
    huge = make_run(root, "huge", d)
    (huge / "history.json").write_text("[" + ",".join(["{}"] * 5000) + "]")
    monkeypatch.setattr(runs, "MAX_JSON_BYTES", 4000)
    (root / "holiday photos").mkdir()
    (root / "holiday photos" / "a.jpg").write_bytes(b"x")
    (root / "stray.txt").write_text("hello")
    (root / "linked-run").symlink_to(good)
    (root / ".tlgui-deleting-x-old").mkdir()
    (root / ".tlgui-deleting-x-old" / "status.json").write_text("{}")
    records = {r.path.name: r for r in list_run_records(root)}
    assert set(records) == {"good", "broken", "wrong-type", "huge"}
    assert records["broken"].state == "unknown"
    assert "status.json is not readable" in records["broken"].reason
    assert records["broken"].epochs == 1  # the one entry that is an object
    assert records["broken"].best_val_accuracy is None and records["broken"].phase_accuracy == {}
    assert records["wrong-type"].state == "unknown"
    assert "does not hold an object" in records["wrong-type"].reason
    assert records["huge"].epochs == 0 and records["huge"].state == "complete"
    assert records["good"].state == "complete"
    assert list_run_records(tmp_path / "nowhere") == []


def test_set_label_persists_in_the_run_folder(root: Path, tmp_path: Path) -> None:
    path = make_run(root, "20261130-100000-d", tmp_path / "d")
    record = set_label(path, "  Baseline\n  run ", "More blur.\nSecond line.")
    assert record.name == "Baseline run" and record.note == "More blur.\nSecond line."
    assert json.loads((path / NOTES_FILE).read_text()) == {"name": "Baseline run",
                                                           "note": "More blur.\nSecond line."}
    assert not list(path.glob(".tlgui-tmp-*"))
    assert list_run_records(root)[0].name == "Baseline run"
    assert set_label(path, "", "").name == "20261130-100000-d"
    with pytest.raises(RunError, match="longer than"):
        set_label(path, "x" * 500)
    dataset = tmp_path / "my photos"
    dataset.mkdir()
    with pytest.raises(RunError, match="not a run folder"):
        set_label(dataset, "oops")
    assert not (dataset / NOTES_FILE).exists()


def test_delete_removes_the_run_and_follows_no_link(root: Path, tmp_path: Path) -> None:
    keep = make_run(root, "keep", tmp_path / "d")
    doomed = make_run(root, "doomed", tmp_path / "d")
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "photo.jpg").write_bytes(b"irreplaceable")
    (doomed / "exported").mkdir()
    (doomed / "exported" / "labels.txt").write_text("a\n")
    (doomed / "link-to-precious").symlink_to(outside)
    (doomed / "link-to-photo.jpg").symlink_to(outside / "photo.jpg")
    delete(doomed, root)
    assert not doomed.exists()
    assert (outside / "photo.jpg").read_bytes() == b"irreplaceable"
    assert keep.is_dir()
    assert sorted(p.name for p in root.iterdir()) == ["keep"]
    assert [r.path.name for r in list_run_records(root)] == ["keep"]


def test_delete_refuses_anything_but_a_run_folder_in_the_root(root: Path,
                                                              tmp_path: Path) -> None:
    run = make_run(root, "run", tmp_path / "d")
    dataset = tmp_path / "dataset"
    (dataset / "cats").mkdir(parents=True)
    (dataset / "config.json").write_text("{}")  # even one that looks like a run
    elsewhere = make_run(tmp_path / "elsewhere", "run2", tmp_path / "d")
    (root / "linked").symlink_to(elsewhere)
    nested = make_run(run, "nested", tmp_path / "d")
    (root / "not-a-run").mkdir()
    live = make_run(root, "live", tmp_path / "d", state="running", pid=os.getpid())
    cases = {root: "not a run folder inside", dataset: "not a run folder inside",
             root / "linked": "is a link", nested: "not a run folder inside",
             root / "not-a-run": "does not look like a run folder",
             live: "still training", root / "gone": "does not exist"}
    for target, words in cases.items():
        with pytest.raises(RunError, match=words) as exc:
            delete(target, root)
        assert target.name in str(exc.value)
    for target in (run, dataset / "cats", elsewhere, nested, root / "not-a-run", live):
        assert target.is_dir()


def test_compare_two_runs(root: Path, tmp_path: Path) -> None:
    a = make_run(root, "a", tmp_path / "d", recalls=(1.0, 0.8, 0.6),
                 config=TrainConfig(weights="none", image_size=32))
    b = make_run(root, "b", tmp_path / "d", phases=((0.5, 0.6),),
                 config=TrainConfig(weights="none", image_size=64,
                                    phase1=PhaseConfig(epochs=2, learning_rate=3e-4),
                                    phase2=PhaseConfig(epochs=0, learning_rate=1e-4)))
    set_label(b, "Bigger images")
    c = compare_runs([a, b])
    assert [d.record.name for d in c.runs] == ["a", "Bigger images"]
    assert c.phases == (1, 2)
    assert c.class_names == ("blue", "green", "red")
    assert c.runs[0].recall == pytest.approx({"blue": 1.0, "green": 0.8, "red": 0.6})
    assert c.runs[1].recall is None
    assert c.runs[1].record.phase_accuracy == {1: 0.6}
    assert len(c.runs[0].history) == 5 and len(c.runs[1].history) == 2
    diffs = {d.key: d.values for d in c.differences}
    assert diffs == {"image_size": (32, 64), "phase1.epochs": (10, 2),
                     "phase1.learning_rate": (0.001, 3e-4), "phase2.epochs": (10, 0)}


def test_compare_lists_dataset_classes_and_missing_settings(root: Path, tmp_path: Path) -> None:
    a = make_run(root, "a", tmp_path / "one", classes=("x", "y"))
    b = make_run(root, "b", tmp_path / "two", classes=("y", "z"), recalls=(0.5, 1.0))
    data = json.loads((b / "config.json").read_text())
    del data["seed"]
    data["augment"]["views"] = 4
    (b / "config.json").write_text(json.dumps(data))
    c = compare_runs([a, b])
    keys = [d.key for d in c.differences]
    assert keys[:2] == ["dataset", "classes"]
    assert c.class_names == ("x", "y", "z")
    diffs = {d.key: d.values for d in c.differences}
    assert diffs["seed"] == (0, MISSING) and diffs["augment.views"] == (2, 4)
    assert format_value(MISSING) == "–" and format_value(diffs["classes"][1]) == "y, z"
    with pytest.raises(RunError, match="nowhere"):
        compare_runs([a, tmp_path / "nowhere"])


def test_details_of_a_run_with_a_damaged_evaluation(root: Path, tmp_path: Path) -> None:
    path = make_run(root, "r", tmp_path / "d", recalls=(1.0, 1.0, 1.0))
    (path / "evaluation.json").write_text('{"class_names": ["a"]}')
    d = load_details(path)
    assert d.evaluation is None and "evaluation.json cannot be used" in d.evaluation_problem
    assert ("model.keras", len(b"not really a model")) in d.files


def test_resolve_run_by_folder_name_or_path(root: Path, tmp_path: Path) -> None:
    path = make_run(root, "20261130-100000-d", tmp_path / "d")
    assert resolve_run("20261130-100000-d", root) == root / "20261130-100000-d"
    assert resolve_run(path, root) == path
    with pytest.raises(RunError, match="No run 'nope'"):
        resolve_run("nope", root)
    with pytest.raises(RunError, match="is not a run folder"):
        resolve_run(tmp_path, root)


def test_flatten_and_formats() -> None:
    assert flatten({"a": 1, "b": {"c": 2, "d": {"e": None}}, "f": {}}) == {
        "a": 1, "b.c": 2, "b.d.e": None, "f": {}}
    assert [format_value(v) for v in (None, True, 0.0001, [1, 2], "adam")] == [
        "none", "yes", "0.0001", "1, 2", "adam"]
    assert [format_duration(s) for s in (None, 5, 75, 3725)] == ["–", "0:05", "1:15", "1:02:05"]


def test_a_run_without_its_size_opens_at_the_size_it_trained_at(root: Path,
                                                                tmp_path: Path) -> None:
    # Written before ADR 013: no size in the config, trained at MobileNetV2's old 160 px.
    old = make_run(root, "20261120-100000-old", tmp_path / "d",
                   config=TrainConfig(weights="none", image_size=None, backbone="MobileNetV2"))
    assert runs.load_config(old).image_size == 160
    sized = make_run(root, "20261130-100000-new", tmp_path / "d",
                     config=TrainConfig(weights="none", image_size=96, backbone="MobileNetV2"))
    assert runs.load_config(sized).image_size == 96
    other = make_run(root, "20261130-110000-b0", tmp_path / "d",
                     config=TrainConfig(weights="none", image_size=None,
                                        backbone="EfficientNetV2B0"))
    assert runs.load_config(other).image_size is None  # its default never changed
