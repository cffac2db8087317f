"""One hostile entry at a time in an ordinary dataset: each is listed with its reason, and
none stops, hangs or leads a scan or a prediction out of the dataset.

``test_hostile.py`` runs all of them together through the whole pipeline; here each case
stands alone, so that one failing case cannot hide another.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.corpus.hostile import UNDECODABLE, _overlong, build_hostile
from tests.imagegen import make_dataset, make_image
from tests.reliability.helpers import deny_entering, tiny_model_file, tree_digest
from tlgui.cli import main
from tlgui.core.dataset import scan
from tlgui.core.predict import Predictor

pytestmark = pytest.mark.timeout(60, method="signal")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "data", classes=("red", "green"), per_class=3)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    return Predictor.load(tiny_model_file(tmp_path_factory.mktemp("m") / "m.keras",
                                          ("red", "green")))


def _reasons(root: Path) -> dict[str, str]:
    return {os.path.relpath(p.path, root): p.reason for p in scan(root).problems}


def _pipe(path: Path) -> None:
    os.mkfifo(path)


def _zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _socket(path: Path) -> None:
    os.mknod(path, 0o600 | 0o140000)


@pytest.mark.parametrize(("make", "reason"), [
    (_pipe, "not a regular file (a named pipe)"),
    (_zero, "not a regular file (a character device)"),
    (_socket, "not a regular file (a socket)"),
])
def test_a_special_file_named_like_an_image_is_listed_with_what_it_is(
        data: Path, predictor: Predictor, make: Callable[[Path], None], reason: str) -> None:
    make(data / "red" / "x.jpg")
    assert _reasons(data)["red/x.jpg"] == reason
    rows = predictor.predict_paths([data])
    assert [r.error for r in rows if r.path.name == "x.jpg"] == [reason]
    assert sum(r.error is None for r in rows) == 6


def test_a_class_folder_linked_outside_or_to_the_dataset_is_not_followed(
        data: Path, tmp_path: Path, predictor: Predictor) -> None:
    outside = make_dataset(tmp_path / "elsewhere", classes=("blue",), per_class=3) / "blue"
    (data / "blue").symlink_to(outside, target_is_directory=True)
    (data / "again").symlink_to(data, target_is_directory=True)
    ds = scan(data)
    reasons = {p.path.name: p.reason for p in ds.problems}
    assert reasons["blue"].startswith("link to a folder, not followed")
    assert reasons["again"].startswith("link to a folder, not followed")
    assert ds.class_names == ("green", "red")
    assert all(s.path.is_relative_to(data) for s in (*ds.train, *ds.validation))
    rows = predictor.predict_paths([data])
    assert all(r.path.is_relative_to(data) for r in rows)
    assert len([r for r in rows if r.error is None]) == 6


def test_a_class_folder_whose_name_is_not_utf8_is_listed_and_named(
        data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = data / (UNDECODABLE + "_class")
    bad.mkdir()
    for i in range(3):
        make_image((40, 40, 200), (48, 40), i).save(bad / f"{i}.jpg")
    reasons = _reasons(data)
    assert reasons[bad.name].startswith("folder name is not valid UTF-8")
    assert main(["scan", str(data)]) == 0
    out = capsys.readouterr().out
    assert "caf\\xe9_class: folder name is not valid UTF-8" in out


def test_paths_longer_than_the_system_allows_are_listed(data: Path) -> None:
    from tests.corpus.hostile import Hostile

    h = Hostile(root=data, outside=data)
    _overlong(h, data / "red")
    reasons = _reasons(data)
    for rel, exp in h.expected.items():
        assert reasons[rel].startswith(exp.reason), (exp.case, reasons.get(rel))
    assert len(scan(data).train) + len(scan(data).validation) == 6


def test_a_link_into_a_place_that_cannot_be_read_is_listed(
        data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    make_image((200, 40, 40), (48, 40), 9).save(locked / "pic.jpg")
    (data / "red" / "into.jpg").symlink_to(locked / "pic.jpg")
    deny_entering(monkeypatch, locked)
    assert _reasons(data)["red/into.jpg"].startswith(
        "symbolic link into a place that cannot be read (permission denied)")


def test_the_whole_hostile_corpus_through_the_scan_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    h = build_hostile(tmp_path)
    before = tree_digest(h.root)
    deny_entering(monkeypatch, *h.locked)
    assert main(["scan", str(h.root)]) == 0
    out = capsys.readouterr().out
    assert "Traceback" not in out and "not a regular file (a named pipe)" in out
    monkeypatch.undo()
    assert tree_digest(h.root) == before


def test_prediction_never_opens_a_pipe(data: Path, predictor: Predictor) -> None:
    os.mkfifo(data / "green" / "waiting.png")  # opening it would wait for a writer forever
    rows = predictor.predict_paths([data / "green"])
    assert [r.error for r in rows if r.path.name == "waiting.png"] == \
        ["not a regular file (a named pipe)"]


def test_a_class_folder_linked_to_the_root_of_the_disk_is_not_walked(data: Path) -> None:
    (data / "everything").symlink_to("/", target_is_directory=True)
    ds = scan(data)  # walking / would take minutes and use files from anywhere
    assert {p.path.name: p.reason for p in ds.problems}["everything"].startswith(
        "link to a folder, not followed")
    assert ds.class_names == ("green", "red")
