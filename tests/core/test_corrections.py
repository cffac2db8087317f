"""Corrections: stored outside the dataset, applied for training, carried out on request, undone."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.imagegen import make_dataset
from tests.reliability.helpers import temp_litter, tree_digest
from tlgui.core.corrections import (
    Corrections,
    apply_corrections,
    corrections_path,
    load_corrections,
    save_corrections,
)
from tlgui.core.dataset import Sample, scan
from tlgui.core.errors import TlguiError
from tlgui.core.folder_moves import (
    ApplyPlan,
    apply_plan,
    excluded_folder,
    plan_apply,
    undo_last,
    undo_path,
)
from tlgui.core.pixel_cache import PixelCache


@pytest.fixture
def data(tmp_path: Path, isolated_dirs: Path) -> Path:
    root = make_dataset(tmp_path / "photos", per_class=6, size=(40, 40))
    # A sub-folder inside a class folder, kept through moves.
    sub = root / "red" / "day2"
    sub.mkdir()
    Image.new("RGB", (40, 40), (210, 30, 30)).save(sub / "x.jpg")
    return root


def _external(tmp_path: Path, n: int = 2) -> list[Path]:
    folder = tmp_path / "new"
    folder.mkdir(exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"new_{i}.jpg"
        Image.new("RGB", (40, 40), (30, 30, 200 - i)).save(p)
        out.append(p)
    return out


def test_corrections_are_stored_in_the_data_folder_and_round_trip(data: Path,
                                                                  isolated_dirs: Path) -> None:
    before = tree_digest(data)
    c = load_corrections(data)
    assert c.empty
    c.relabel(data / "red" / "img_000.jpg", "green")
    c.exclude("blue/img_001.jpg")  # relative to the dataset
    c.keep(data / "green" / "img_002.jpg")
    c.add_images([isolated_dirs / "elsewhere.jpg"], "blue")
    path = save_corrections(c)
    assert path.is_relative_to(isolated_dirs / "data") and path == corrections_path(data)
    again = load_corrections(data)
    assert again.decisions == c.decisions and again.additions == c.additions
    assert tree_digest(data) == before  # nothing inside the dataset was written
    with pytest.raises(TlguiError, match="not inside the dataset"):
        c.relabel(isolated_dirs / "outside.jpg", "red")


def test_a_damaged_list_skips_bad_entries_and_a_foreign_file_is_refused(data: Path) -> None:
    path = corrections_path(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": "tlgui-corrections", "version": 1, "decisions": {
        "red/img_000.jpg": {"action": "relabel", "class": "green"},
        "red/img_001.jpg": {"action": "burn"}, "red/img_002.jpg": "x"},
        "additions": [{"path": 3}]}))
    c = load_corrections(data)
    assert list(c.decisions) == ["red/img_000.jpg"] and not c.additions
    path.write_text("[1, 2]")
    with pytest.raises(TlguiError, match="not a tlgui correction list"):
        load_corrections(data)


def test_apply_corrections_relabels_excludes_and_adds_without_touching_files(
        data: Path, tmp_path: Path) -> None:
    ds = scan(data)
    before = tree_digest(data)
    new = _external(tmp_path)
    c = Corrections(data.absolute())
    c.relabel(data / "red" / "img_000.jpg", "green")
    c.relabel(data / "red" / "img_001.jpg", "purple")  # a class only the corrections name
    c.exclude(data / "blue" / "img_003.jpg")
    c.keep(data / "green" / "img_004.jpg")
    c.relabel(data / "red" / "gone.jpg", "blue")  # stale: not in the dataset
    c.add_images(new, "blue")
    c.add_images([tmp_path / "missing.jpg"], "blue")
    fixed = apply_corrections(ds, c)
    assert fixed.class_names == (*ds.class_names, "purple")
    label = {s.path: fixed.class_names[s.label]
             for s in (*fixed.train, *fixed.validation, *fixed.test)}
    assert label[data / "red" / "img_000.jpg"] == "green"
    assert label[data / "red" / "img_001.jpg"] == "purple"
    assert label[data / "green" / "img_004.jpg"] == "green"
    assert data / "blue" / "img_003.jpg" not in label
    assert all(label[p] == "blue" for p in new) and all(p in {s.path for s in fixed.train}
                                                        for p in new)
    assert sum(len(x) for x in (fixed.train, fixed.validation, fixed.test)) == \
        sum(len(x) for x in (ds.train, ds.validation, ds.test)) - 1 + len(new)
    # A relabelled image stays on its side of the split.
    was_val = {s.path for s in ds.validation}
    assert {s.path for s in fixed.validation} == was_val - {data / "blue" / "img_003.jpg"}
    assert any("no longer in the dataset" in w for w in fixed.warnings)
    assert [p.path for p in fixed.problems] == [tmp_path / "missing.jpg"]
    assert tree_digest(data) == before
    assert apply_corrections(ds, Corrections(data.absolute())) is ds


def test_apply_to_folders_moves_exactly_the_plan_and_undo_restores_the_tree(
        data: Path, tmp_path: Path) -> None:
    ds = scan(data)
    new = _external(tmp_path)
    # A name clash: green already holds img_000.jpg.
    c = load_corrections(data)
    c.relabel(data / "red" / "img_000.jpg", "green")
    c.relabel(data / "red" / "day2" / "x.jpg", "fresh class")
    c.exclude(data / "blue" / "img_003.jpg")
    c.keep(data / "green" / "img_004.jpg")
    c.add_images(new, "blue")
    save_corrections(c)
    before = tree_digest(data)
    outside_before = sorted(p.name for p in data.parent.iterdir())
    plan = plan_apply(ds, c)
    moves = plan.moves
    assert tree_digest(data) == before  # planning changes nothing
    assert len(plan.lines()) == len(moves)
    by_source = {m.source: m for m in moves}
    assert by_source[data / "red" / "img_000.jpg"].destination == \
        data / "green" / "img_000 (2).jpg"
    assert by_source[data / "red" / "day2" / "x.jpg"].destination == \
        data / "fresh class" / "day2" / "x.jpg"
    assert by_source[data / "blue" / "img_003.jpg"].destination == \
        excluded_folder(data) / "blue" / "img_003.jpg"
    assert {by_source[p].destination for p in new} == {data / "blue" / p.name for p in new}
    assert all(by_source[p].copy for p in new) and len(moves) == 5

    contents = {m.source: m.source.read_bytes() for m in moves}
    record = apply_plan(plan)
    assert record.moves == moves and data / "fresh class" in record.created
    for m in moves:
        assert m.destination.read_bytes() == contents[m.source]
        assert m.source.exists() == m.copy  # moved, or copied from outside
    assert all(p.exists() for p in new)  # the user's other folder is never changed
    again = scan(data)
    assert "fresh class" in again.class_names
    # The applied decisions left the correction list; "keep" stays.
    assert list(load_corrections(data).decisions) == ["green/img_004.jpg"]
    assert not temp_litter(data)

    assert undo_last(data) == []
    assert tree_digest(data) == before
    assert sorted(p.name for p in data.parent.iterdir()) == outside_before
    assert set(load_corrections(data).decisions) == set(c.decisions)
    assert undo_last(data) is None  # nothing left to undo


def test_a_failing_move_rolls_back_everything(data: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _relabel_plan(data, "new class", *(f"img_{i:03d}.jpg" for i in range(4)))
    before = tree_digest(data)
    real_link, real_rename = os.link, os.rename
    calls = []

    def flaky(real: object) -> object:
        def op(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
            if Path(dst).parent.name == "new class":
                calls.append(dst)
                if len(calls) >= 3:  # the third move fails, whether linked or renamed
                    raise OSError(5, "Input/output error")
            real(src, dst)  # type: ignore[operator]
        return op

    monkeypatch.setattr(os, "link", flaky(real_link))
    monkeypatch.setattr(os, "rename", flaky(real_rename))
    with pytest.raises(TlguiError, match="every move was undone"):
        apply_plan(plan)
    monkeypatch.undo()
    assert tree_digest(data) == before
    assert undo_last(data) is None  # the failed apply left no undo entry


def _relabel_plan(data: Path, class_name: str, *names: str) -> ApplyPlan:
    c = Corrections(data.absolute())
    for name in names:
        c.relabel(data / "red" / name, class_name)
    return plan_apply(scan(data), c)


def test_a_file_changed_since_the_plan_stops_the_apply_before_any_move(data: Path) -> None:
    plan = _relabel_plan(data, "green", "img_000.jpg", "img_001.jpg")
    victim = data / "red" / "img_001.jpg"
    os.utime(victim, ns=(0, victim.stat().st_mtime_ns + 10**9))
    before = tree_digest(data)
    with pytest.raises(TlguiError, match="changed since the plan"):
        apply_plan(plan)
    assert tree_digest(data) == before


def test_an_apply_killed_midway_is_undone_from_its_list(data: Path) -> None:
    plan = _relabel_plan(data, "new class", "img_000.jpg", "img_001.jpg")
    before = tree_digest(data)
    apply_plan(plan)
    # As if killed after the first move: the second is put back by hand, the list stays.
    record = json.loads(undo_path(data).read_text())
    second = plan.moves[1]
    os.rename(second.destination, second.source)
    record[-1]["state"] = "applying"
    undo_path(data).write_text(json.dumps(record))
    assert undo_last(data) == []
    assert tree_digest(data) == before


def test_moved_files_keep_their_decoded_pixels(data: Path, tmp_path: Path) -> None:
    ds = scan(data)
    cache = PixelCache(tmp_path / "cache")
    src = data / "red" / "img_000.jpg"
    sample = next(s for s in ds.train + ds.validation if s.path == src)
    first = cache.get(sample, 32)
    c = Corrections(data.absolute())
    c.relabel(src, "green")
    plan = plan_apply(ds, c)
    apply_plan(plan, cache=cache)
    dst = plan.moves[0].destination
    st = dst.stat()
    moved = Sample(dst, 1, st.st_size, st.st_mtime_ns)
    decoded = cache.stats.decoded
    assert np.array_equal(cache.get(moved, 32), first)
    assert cache.stats.decoded == decoded  # a cache hit, not a second decode


def test_the_quick_relative_key_agrees_with_the_lexical_one(tmp_path: Path) -> None:
    """The string-prefix shortcut gives what relative_to gives, and None outside."""
    from tlgui.core.corrections import relative_key

    root = tmp_path / "data"
    for path in (root / "a" / "b.jpg", root / "a b" / "ü.png", tmp_path / "dataset" / "x.jpg",
                 Path("a/b.jpg"), root, tmp_path / "other.jpg", root / "." / "c.jpg"):
        p = path if path.is_absolute() else root / path
        try:
            lexical: str | None = p.absolute().relative_to(root.absolute()).as_posix()
        except ValueError:
            lexical = None
        assert relative_key(path, root) == lexical, path
